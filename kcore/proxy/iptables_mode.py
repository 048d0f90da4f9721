"""The ``iptables`` proxy mode: kube-proxy's nat rules, installed in the kernel.

The rules come from ``kcore.proxy.iptables`` (pure rendering); this module only
installs them, so the kernel forwards every byte and Python stays out of the
data path.

How it applies (as kube-proxy's iptables proxier does):

* One ``iptables-restore --noflush`` per sync, atomic: a chain declared in the
  input (``:KUBE-SVC-... - [0:0]``) is flushed and rewritten, chains not named
  are left alone, and ``-X`` deletes a chain in the same transaction. A sync
  of more than ``max_restore_rules`` rules (a full one of thousands of
  services) is split into calls in dependency order (``restore_batches``),
  because iptables-nft-restore slows down with the square of a transaction.
* Incremental: the mode remembers the chains it applied. A sync of the same
  services as the last one is not even rendered, and one whose rules are
  unchanged runs no command at all; otherwise only the chains that changed
  or appeared are written, plus ``-X`` for those that disappeared
  (``restore_input``, a pure function). The first sync, every
  ``full_sync_every``-th sync and the sync after a failure are full: every
  chain is written and stale ``KUBE-*`` chains found by ``iptables-save`` (a
  previous run's) are deleted.
* The jumps from the built-in chains into ``KUBE-*`` (``JUMPS``) are not part
  of the restore input: they are inserted once, after ``iptables -C`` says they
  are missing, and checked again on every full sync.
* ``net.ipv4.ip_forward=1``, and ``net.ipv4.conf.all.route_localnet=1`` when a
  node port is served on a loopback node address, are written to ``/proc/sys``
  of the namespace the mode runs in.

Privilege: without root, without the iptables tools, or when ``iptables-save``
fails, the mode logs one warning naming the cause and keeps rendering (``kcore
proxy rules`` shows what it would install); syncs then succeed doing nothing.

Settings (``[proxy.iptables]``): ``netns`` - run every iptables and sysctl
command inside that named network namespace (``ip netns exec``; tests use it);
``full_sync_every`` (60) - a full sync every that many syncs;
``max_restore_rules`` (2000; 0: never split) - rules per ``iptables-restore`` call.

``kcore_proxy_cleanup`` deletes the jumps and every chain the renderer owns
(``owned_chain``), found by ``iptables-save``, so it also works in a process
that never synced (the runner cleans up a previous mode that way); it is
idempotent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import shutil
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kcore.errors import UserFacingError
from kcore.hookspecs import hookimpl
from kcore.log import get_logger
from kcore.proxy.iptables import Chains, owned_chain, parse_chains, render_chains, render_iptables
from kcore.proxy.state import ProxyState

log = get_logger("proxy.iptables")

TABLES = ("filter", "nat")
WAIT = ("-w", "5")  # wait for the xtables lock instead of failing

Jump = tuple[str, str, tuple[str, ...]]  # (table, built-in chain, rule spec)


def _jump(table: str, chain: str, comment: str, target: str, *, new_only: bool = False) -> Jump:
    state = ("-m", "conntrack", "--ctstate", "NEW") if new_only else ()
    return (table, chain, (*state, "-m", "comment", "--comment", comment, "-j", target))


JUMPS: tuple[Jump, ...] = (
    _jump("nat", "PREROUTING", "kubernetes service portals", "KUBE-SERVICES"),
    _jump("nat", "OUTPUT", "kubernetes service portals", "KUBE-SERVICES"),
    _jump("nat", "POSTROUTING", "kubernetes postrouting rules", "KUBE-POSTROUTING"),
    _jump("filter", "INPUT", "kubernetes externally-visible service portals", "KUBE-EXTERNAL-SERVICES",
          new_only=True),
    _jump("filter", "FORWARD", "kubernetes forwarding rules", "KUBE-FORWARD"),
    _jump("filter", "FORWARD", "kubernetes service portals", "KUBE-SERVICES", new_only=True),
    _jump("filter", "FORWARD", "kubernetes externally-visible service portals", "KUBE-EXTERNAL-SERVICES",
          new_only=True),
    _jump("filter", "OUTPUT", "kubernetes service portals", "KUBE-SERVICES", new_only=True),
)
"""The jumps kube-proxy installs from the built-in chains, outside the restore input."""


# ---------------------------------------------------------------------------
# The minimal restore input (pure)
# ---------------------------------------------------------------------------


def _plan(desired: Chains, applied: Chains | None,
          existing: Iterable[tuple[str, str]]) -> tuple[list[tuple[str, str]], set[tuple[str, str]]]:
    """(chains to write, in desired order; chains to delete)."""
    if applied is None:
        return list(desired), {k for k in existing if owned_chain(*k)} - desired.keys()
    return [k for k, rules in desired.items() if applied.get(k) != rules], set(applied.keys() - desired.keys())


def _input(desired: Chains, write: Iterable[tuple[str, str]], stale: Iterable[tuple[str, str]]) -> str:
    write, stale = list(write), set(stale)
    lines: list[str] = []
    for table in TABLES:
        chains = [chain for t, chain in write if t == table]
        removed = sorted(chain for t, chain in stale if t == table)
        if not chains and not removed:
            continue
        lines.append(f"*{table}")
        lines += [f":{chain} - [0:0]" for chain in [*chains, *removed]]  # declaring flushes
        for chain in chains:
            lines += desired[(table, chain)]
        lines += [f"-X {chain}" for chain in removed]
        lines.append("COMMIT")
    return "\n".join(lines) + "\n" if lines else ""


def restore_input(desired: Chains, applied: Chains | None, existing: Iterable[tuple[str, str]] = ()) -> str:
    """``iptables-restore --noflush`` input that turns what is installed into ``desired``.

    ``applied`` is what the last successful sync installed: only chains whose
    rules differ (or are new) are written, and chains it had that ``desired``
    lacks are flushed and deleted. ``applied=None`` is a full sync: every
    desired chain is written and the owned chains in ``existing`` (from
    ``iptables-save``) that are not desired are deleted. Returns ``""`` when
    there is nothing to do.
    """
    return _input(desired, *_plan(desired, applied, existing))


TOP_CHAINS = frozenset({("nat", "KUBE-SERVICES"), ("nat", "KUBE-NODEPORTS"),
                        ("filter", "KUBE-SERVICES"), ("filter", "KUBE-EXTERNAL-SERVICES")})
"""The chains traffic enters by: rewritten last, so they only ever jump to chains already in place."""


def _stage(key: tuple[str, str]) -> int:
    if key in TOP_CHAINS:
        return 3
    if key[1].startswith("KUBE-SVC-"):
        return 2
    return 1 if key[1].startswith("KUBE-SEP-") else 0  # 0: KUBE-MARK-MASQ and the like, jumped to by all


def restore_batches(desired: Chains, applied: Chains | None, existing: Iterable[tuple[str, str]] = (),
                    max_rules: int = 0) -> list[str]:
    """``restore_input`` split into calls of about ``max_rules`` rules (0: one call).

    ``iptables-nft-restore --noflush`` slows down with the square of the rules
    in one transaction (10,000 services: 90 s in one call), so a big sync is
    applied in dependency order - helper chains, then endpoint chains, then
    service chains, each in batches, and last, in one call, the entry chains
    (``TOP_CHAINS``) with the deletions. Every intermediate state is valid: a
    chain is in place before any rule jumps to it, and a chain is deleted only
    once nothing jumps to it. A sync within ``max_rules`` is one atomic call.
    """
    write, stale = _plan(desired, applied, existing)
    if not write and not stale:
        return []
    if not max_rules or sum(len(desired[k]) for k in write) <= max_rules:
        return [_input(desired, write, stale)]
    batches: list[str] = []
    for stage in (0, 1, 2):
        batch: list[tuple[str, str]] = []
        rules = 0
        for key in (k for k in write if _stage(k) == stage):
            batch.append(key)
            rules += len(desired[key])
            if rules >= max_rules:
                batches.append(_input(desired, batch, ()))
                batch, rules = [], 0
        if batch:
            batches.append(_input(desired, batch, ()))
    last = _input(desired, [k for k in write if _stage(k) == 3], stale)
    return [*batches, last] if last else batches


def removal_batches(existing: Iterable[tuple[str, str]], max_chains: int = 0) -> list[str]:
    """Restore input that flushes and deletes every owned chain in ``existing`` (cleanup).

    In calls of at most ``max_chains`` chains (0: one call) when there are more:
    entry chains first, then service, endpoint and helper chains, so a chain
    is deleted only after whatever jumps to it.
    """
    owned = {k for k in existing if owned_chain(*k)}
    if not owned:
        return []
    if not max_chains or len(owned) <= max_chains:
        return [_input({}, (), owned)]
    batches = []
    for stage in (3, 2, 1, 0):
        keys = sorted(k for k in owned if _stage(k) == stage)
        step = len(keys) if stage == 3 else max_chains  # KUBE-SERVICES jumps to KUBE-NODEPORTS: together
        batches += [_input({}, (), keys[i:i + step]) for i in range(0, len(keys), step)]
    return batches


def needs_route_localnet(state: ProxyState) -> bool:
    """Node ports answered on 127.0.0.1 need the kernel to route 127/8 off ``lo``."""
    loopback = any(ipaddress.ip_address(ip).is_loopback for ip in state.node_ips)
    return loopback and any(svc.node_port for svc in state.services)


# ---------------------------------------------------------------------------
# Settings and commands
# ---------------------------------------------------------------------------

_NETNS_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")


class IptablesSettingsError(UserFacingError, ValueError):
    """A bad ``[proxy.iptables]`` setting; the message names the key."""


@dataclass(frozen=True, slots=True)
class Settings:
    netns: str | None = None
    full_sync_every: int = 60
    max_restore_rules: int = 2000

    @classmethod
    def parse(cls, raw: dict[str, Any] | None, *, netns: str | None = None) -> Settings:
        """``[proxy.iptables]``; ``netns`` is the default when the table has none."""
        raw = dict(raw or {})
        values: dict[str, Any] = {"netns": netns}
        if "netns" in raw:
            value = raw.pop("netns")
            if not isinstance(value, str) or not _NETNS_NAME.match(value) or value in (".", ".."):
                raise IptablesSettingsError(f"proxy.iptables.netns: not a network namespace name (value: {value!r})")
            values["netns"] = value
        if "full_sync_every" in raw:
            value = raw.pop("full_sync_every")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise IptablesSettingsError(
                    f"proxy.iptables.full_sync_every: must be a positive integer (value: {value!r})")
            values["full_sync_every"] = value
        if "max_restore_rules" in raw:
            value = raw.pop("max_restore_rules")
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise IptablesSettingsError(
                    f"proxy.iptables.max_restore_rules: must be a non-negative integer (value: {value!r})")
            values["max_restore_rules"] = value
        if raw:
            key = sorted(raw)[0]
            raise IptablesSettingsError(f"proxy.iptables.{key}: unknown setting (value: {raw[key]!r})")
        return cls(**values)


@dataclass(frozen=True, slots=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


CommandRunner = Callable[[Sequence[str], str | None], Awaitable[CommandResult]]


async def run_command(argv: Sequence[str], stdin: str | None = None) -> CommandResult:
    """Run one command to completion (asyncio subprocess), feeding it ``stdin``."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(None if stdin is None else stdin.encode())
    assert proc.returncode is not None
    return CommandResult(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


class IptablesError(RuntimeError):
    """An iptables command failed; the message names the command and its error."""


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "no error output")


# ---------------------------------------------------------------------------
# The mode
# ---------------------------------------------------------------------------


class IptablesProxy:
    """kube-proxy's iptables mode (entry point ``kcore.proxy:iptables``)."""

    def __init__(self, *, netns: str | None = None, run: CommandRunner = run_command,
                 geteuid: Callable[[], int] = os.geteuid) -> None:
        self.settings = Settings(netns=netns)
        self._default_netns = netns
        self._run = run
        self._geteuid = geteuid
        self._lock: asyncio.Lock | None = None  # made on first use, inside the running loop
        self._applied: Chains | None = None  # None: the next sync is full
        self._inputs: tuple[Any, ...] | None = None  # the state fields the applied rules were rendered from
        self._since_full = 0  # syncs since the last full one, that one included
        self._sysctls: dict[str, str] = {}
        self._cause: str | None = None  # why rules cannot be installed
        self._probed = False
        self.last_restore = ""
        """The last ``iptables-restore`` input sent (for tests and debugging)."""
        self.restores = 0
        """How many ``iptables-restore`` calls the syncs made."""

    # -- hooks -------------------------------------------------------------

    @hookimpl
    async def kcore_proxy_start(self, settings: dict[str, Any] | None, context: Any) -> None:
        self.settings = Settings.parse(settings, netns=self._default_netns)
        self._probed = False
        self._applied = self._inputs = None

    @hookimpl
    async def kcore_proxy_sync(self, state: ProxyState) -> None:
        async with self._locked():
            await self._sync(state)

    @hookimpl
    def kcore_proxy_render_rules(self, state: ProxyState) -> str:
        return render_iptables(state)

    @hookimpl
    async def kcore_proxy_cleanup(self) -> None:
        async with self._locked():
            await self._cleanup()

    def _locked(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    # -- introspection -----------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Whether rules are installed, why not, and how much is applied."""
        return {
            "installing": self._probed and self._cause is None,
            "cause": self._cause,
            "netns": self.settings.netns,
            "chains": len(self._applied or {}),
            "restores": self.restores,
        }

    # -- commands ----------------------------------------------------------

    def _argv(self, *command: str) -> list[str]:
        prefix = ["ip", "netns", "exec", self.settings.netns] if self.settings.netns else []
        return [*prefix, *command]

    async def _cmd(self, *command: str, stdin: str | None = None, check: bool = True) -> CommandResult:
        argv = self._argv(*command)
        result = await self._run(argv, stdin)
        if check and result.returncode != 0:
            what = " ".join(w for w in command[:6] if w not in WAIT) if command[0] == "iptables" else command[0]
            where = f" in network namespace {self.settings.netns}" if self.settings.netns else ""
            raise IptablesError(f"{what} failed{where} (exit {result.returncode}): {_first_line(result.stderr)}")
        return result

    async def _privilege_problem(self) -> str | None:
        """Why this process cannot install rules, or None when it can."""
        euid = self._geteuid()
        if euid != 0:
            return f"not running as root (euid {euid})"
        tools = ["iptables", "iptables-save", "iptables-restore"] + (["ip"] if self.settings.netns else [])
        missing = [tool for tool in tools if shutil.which(tool) is None]
        if missing:
            return f"{', '.join(missing)} not found on PATH"
        try:
            result = await self._run(self._argv("iptables-save", "-t", "nat"), None)
        except OSError as exc:
            return f"cannot run iptables-save: {exc}"
        if result.returncode != 0:
            return f"iptables-save failed: {_first_line(result.stderr)}"
        return None

    async def _probe(self, *, quiet: bool = False) -> bool:
        """True when rules can be installed; logs the cause once when not."""
        if not self._probed:
            self._cause = await self._privilege_problem()
            self._probed = True
            if self._cause is not None and not quiet:
                log.warning(f"iptables mode cannot install rules: {self._cause}; "
                            "`kcore proxy rules` shows what it would install",
                            cause=self._cause, netns=self.settings.netns)
        return self._cause is None

    async def _existing_chains(self) -> list[tuple[str, str]]:
        saved = await self._cmd("iptables-save")
        return [key for key in parse_chains(saved.stdout) if key[0] in TABLES]

    async def _restore(self, text: str) -> None:
        await self._cmd("iptables-restore", *WAIT, "--noflush", stdin=text)
        self.restores += 1
        self.last_restore = text

    async def _ensure_jumps(self) -> None:
        for table, chain, spec in JUMPS:
            present = await self._cmd("iptables", *WAIT, "-t", table, "-C", chain, *spec, check=False)
            if present.returncode != 0:
                await self._cmd("iptables", *WAIT, "-t", table, "-I", chain, "1", *spec)
                log.info("inserted jump", table=table, chain=chain, target=spec[-1])

    async def _ensure_sysctls(self, state: ProxyState) -> None:
        wanted = {"net/ipv4/ip_forward": "1"}
        if needs_route_localnet(state):
            wanted["net/ipv4/conf/all/route_localnet"] = "1"
        for key, value in wanted.items():
            if self._sysctls.get(key) == value:
                continue
            result = await self._cmd("sh", "-c", 'printf %s "$2" > "/proc/sys/$1"', "sh", key, value, check=False)
            if result.returncode != 0:
                log.warning("cannot set sysctl", key=key.replace("/", "."), value=value,
                            error=_first_line(result.stderr), netns=self.settings.netns)
                continue
            self._sysctls[key] = value
            log.info("set sysctl", key=key.replace("/", "."), value=value, netns=self.settings.netns)

    # -- sync and cleanup --------------------------------------------------

    async def _sync(self, state: ProxyState) -> None:
        full = self._applied is None or self._since_full >= self.settings.full_sync_every
        inputs = (state.services, state.node_ips, state.cluster_cidr)  # all the rules depend on
        if not full and inputs == self._inputs:
            self._since_full += 1
            return  # the same services as last time: not even a render (10,000 services: 0.6 s)
        desired = render_chains(state)
        if not await self._probe():
            return  # warned once; `kcore proxy rules` still renders
        try:
            existing = await self._existing_chains() if full else ()
            batches = restore_batches(desired, None if full else self._applied, existing,
                                      self.settings.max_restore_rules)
            for text in batches:
                await self._restore(text)
            self._applied = desired
            self._inputs = inputs
            if full:
                self._since_full = 1
                await self._ensure_jumps()
            else:
                self._since_full += 1
        except Exception:
            self._applied = self._inputs = None  # the next sync is full
            raise
        if batches:
            log.debug("rules applied", full=full, calls=len(batches), lines=sum(t.count("\n") for t in batches),
                      chains=len(desired))
        await self._ensure_sysctls(state)

    async def _cleanup(self) -> None:
        self._applied = self._inputs = None
        self._sysctls.clear()
        if not await self._probe(quiet=True):
            return  # nothing can have been installed by this process
        for table, chain, spec in JUMPS:
            for _ in range(16):  # duplicates, if someone inserted the jump twice
                present = await self._cmd("iptables", *WAIT, "-t", table, "-C", chain, *spec, check=False)
                if present.returncode != 0:
                    break
                await self._cmd("iptables", *WAIT, "-t", table, "-D", chain, *spec)
        batches = removal_batches(await self._existing_chains(), self.settings.max_restore_rules)
        for text in batches:
            await self._cmd("iptables-restore", *WAIT, "--noflush", stdin=text)
        if batches:
            removed = sum(line.startswith("-X ") for text in batches for line in text.splitlines())
            log.info("removed iptables rules", chains=removed, netns=self.settings.netns)
