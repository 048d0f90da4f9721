"""Make service addresses bindable: put non-local ClusterIPs on ``lo``.

A socket can only listen on an address of the host. With pod networking the
service range (10.96.0.0/12) is nobody's, so the userspace proxy (and the ipvs
mode's userspace data path) adds each such address as a host route, ``/32``
(``/128``) on ``lo`` - what kube-proxy's IPVS mode does with its dummy
``kube-ipvs0`` device, which not every kernel offers. Loopback addresses
(127.0.0.0/8, where kcore puts services without root) and addresses that are
already on the host need nothing and are never touched.

Only addresses added here are ever removed: the set is persisted to a JSON
file (under the proxy's data directory), so a proxy that restarts after a
crash removes its leftovers at the first sync, and ``cleanup()`` removes them
all. ``netns`` runs every ``ip`` command in that network namespace (tests).
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from kcore.log import get_logger

log = get_logger("proxy.addresses")

Runner = Callable[[Sequence[str], str | None], str]


def _run(cmd: Sequence[str], stdin: str | None = None) -> str:
    done = subprocess.run(list(cmd), input=stdin, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise OSError(f"{' '.join(cmd)}: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout


def needs_setup(ip: str) -> bool:
    """Whether ``ip`` could need adding at all (loopback and odd values never do)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not (addr.is_loopback or addr.is_unspecified or addr.is_multicast)


class LocalAddresses:
    """The service addresses this proxy put on ``device``, kept in step with the services."""

    def __init__(
        self,
        state_file: Path | None = None,
        *,
        netns: str | None = None,
        device: str = "lo",
        runner: Runner = _run,
    ) -> None:
        self.state_file = state_file
        self.netns = netns
        self.device = device
        self._runner = runner
        self.owned: set[str] = self._load()
        """Addresses added by this proxy (or a previous run of it) and not yet removed."""

    # -- persistence ----------------------------------------------------------

    def _load(self) -> set[str]:
        if self.state_file is None:
            return set()
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return set()
        except (OSError, ValueError) as exc:
            log.warning("cannot read the list of added addresses", file=str(self.state_file), error=str(exc))
            return set()
        return {ip for ip in data.get("addresses", []) if isinstance(ip, str) and needs_setup(ip)}

    def _save(self) -> None:
        if self.state_file is None:
            return
        if not self.owned:
            self.state_file.unlink(missing_ok=True)
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"device": self.device, "addresses": sorted(self.owned)}) + "\n",
                       encoding="utf-8")
        tmp.replace(self.state_file)

    # -- ip -------------------------------------------------------------------

    def _ip(self, *args: str, stdin: str | None = None) -> str:
        prefix = ["ip", "-n", self.netns] if self.netns else ["ip"]
        return self._runner([*prefix, *args], stdin)

    def host_addresses(self) -> set[str]:
        """Every address on every interface (of the namespace)."""
        out = self._ip("-o", "addr", "show")
        found = set()
        for line in out.splitlines():
            fields = line.split()
            for i, field in enumerate(fields[:-1]):
                if field in ("inet", "inet6"):
                    found.add(str(ipaddress.ip_interface(fields[i + 1]).ip))
        return found

    @staticmethod
    def _prefix(ip: str) -> str:
        return f"{ip}/{ipaddress.ip_address(ip).max_prefixlen}"

    def _batch(self, verb: str, ips: list[str]) -> None:
        """``ip addr <verb>`` for many addresses in one process (``-batch``): a sync of
        thousands of services is one command, not thousands. ``-force`` goes on past a
        failing line; the caller reads the addresses back to see what took."""
        lines = "".join(f"addr {verb} {self._prefix(ip)} dev {self.device}\n" for ip in ips)
        try:
            self._ip("-force", "-batch", "-", stdin=lines)
        except OSError as exc:
            log.warning("some service address changes failed", verb=verb, error=str(exc))

    # -- the two operations ---------------------------------------------------

    def ensure(self, wanted: Iterable[str]) -> dict[str, str]:
        """Make every address in ``wanted`` local; remove the ones added earlier and
        no longer wanted. Returns the addresses that failed, with the reason."""
        want = {ip for ip in wanted if needs_setup(ip)}
        errors: dict[str, str] = {}
        if not want and not self.owned:
            return errors
        present = self.host_addresses()
        # Present already: ours, or someone else's (usable as it is, never ours to remove).
        adds = sorted(want - present)
        removes = sorted((self.owned - want) & present)
        self.owned -= (self.owned - want) - present  # gone meanwhile: nothing to remove
        if adds:
            self._batch("add", adds)
        if removes:
            self._batch("del", removes)
        if adds or removes:
            now = self.host_addresses()
            for ip in adds:
                if ip in now:
                    self.owned.add(ip)
                else:
                    errors[ip] = f"could not add {ip} to {self.device}"
            for ip in removes:
                if ip in now:
                    errors[ip] = f"could not remove {ip} from {self.device}"
                else:
                    self.owned.discard(ip)
            for ip, reason in errors.items():
                log.error("service address change failed", address=ip, reason=reason)
            log.info("service addresses synced", added=len(adds) - sum(ip in errors for ip in adds),
                     removed=len(removes) - sum(ip in errors for ip in removes), device=self.device,
                     netns=self.netns)
        self._save()
        return errors

    def cleanup(self) -> dict[str, str]:
        """Remove every address this proxy added (also those of a previous run)."""
        return self.ensure(())
