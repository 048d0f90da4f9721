"""Liveness, readiness and startup probes: the three handlers and the per-probe loop.

Handlers are plain coroutines returning a ``ProbeResult``; ``Prober`` runs one
probe on its schedule, applies the success/failure thresholds and reports
*transitions* through a callback, which is all the kubelet needs (restart on
liveness failure, flip Ready, unblock after startup). ``ProbeGate`` holds
liveness and readiness back until the startup probe succeeded, as Kubernetes does.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from kcore.kubelet.tasks import stop_tasks
from kcore.log import get_logger

log = get_logger("kubelet.probes")

_OUTPUT_LIMIT = 10 * 1024


@dataclass(frozen=True)
class ProbeResult:
    """One probe attempt: healthy or not, and why (shown in events)."""

    success: bool
    message: str = ""


@dataclass(frozen=True)
class ExecTarget:
    """Where an exec probe runs: the container's environment, cwd and network namespace."""

    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    netns: str | None = None


def netns_argv(netns: str | None, argv: Sequence[str]) -> list[str]:
    """Prefix ``argv`` to run inside a network namespace.

    A name (under /run/netns) runs through ``ip netns exec``, which also bind-mounts
    the pod's ``/etc/netns/<name>/resolv.conf`` and ``hosts`` over ``/etc``; a path
    runs through ``nsenter --net`` (network only).
    """
    if not netns:
        return list(argv)
    if "/" not in netns:
        return ["ip", "netns", "exec", netns, *argv]
    return ["nsenter", f"--net={netns}", "--", *argv]


async def exec_probe(command: Sequence[str], target: ExecTarget, timeout: float) -> ProbeResult:
    """Run ``command`` like the container would; exit code 0 is success."""
    if not command:
        return ProbeResult(False, "exec probe has no command")
    try:
        proc = await asyncio.create_subprocess_exec(
            *netns_argv(target.netns, command),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env=dict(target.env), cwd=target.cwd, start_new_session=True,
        )
    except OSError as err:
        return ProbeResult(False, f"exec {command[0]!r} failed: {err.strerror or err}")
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        return ProbeResult(False, f"command {list(command)!r} timed out after {timeout:g}s")
    finally:
        _kill_group(proc.pid)  # whatever it forked goes with it
    text = out[:_OUTPUT_LIMIT].decode("utf-8", "replace").strip()
    if proc.returncode == 0:
        return ProbeResult(True, text)
    return ProbeResult(False, f"command {list(command)!r} exited with {proc.returncode}: {text}".rstrip(": "))


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, 9)
    except (ProcessLookupError, PermissionError):
        pass


def resolve_port(port: int | str, container_ports: Mapping[str, int]) -> int:
    """A probe port: a number, a numeric string, or a container port's name."""
    if isinstance(port, int):
        return port
    if port.isdigit():
        return int(port)
    if port in container_ports:
        return container_ports[port]
    raise ValueError(f"port {port!r} is not a number nor a named port of the container")


_NO_VERIFY = ssl.create_default_context()
_NO_VERIFY.check_hostname = False
_NO_VERIFY.verify_mode = ssl.CERT_NONE


async def http_probe(
    host: str, port: int, path: str = "/", scheme: str = "HTTP",
    headers: Mapping[str, str] | None = None, timeout: float = 1.0,
) -> ProbeResult:
    """GET the URL; a status from 200 to 399 is success. HTTPS is not verified (as Kubernetes)."""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = f"{scheme.lower()}://{netloc}{path if path.startswith('/') else '/' + path}"
    hdrs = {"User-Agent": "kube-probe/1.30", "Accept": "*/*", **(headers or {})}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(url, headers=hdrs, ssl=_NO_VERIFY if scheme.upper() == "HTTPS" else None,
                                   allow_redirects=True) as resp:
                body = (await resp.content.read(_OUTPUT_LIMIT)).decode("utf-8", "replace")
                if 200 <= resp.status < 400:
                    return ProbeResult(True, body)
                return ProbeResult(False, f"HTTP probe failed with statuscode: {resp.status}")
    except TimeoutError:
        return ProbeResult(False, f'Get "{url}": context deadline exceeded (timeout {timeout:g}s)')
    except (aiohttp.ClientError, OSError) as err:
        return ProbeResult(False, f'Get "{url}": {err}')


async def tcp_probe(host: str, port: int, timeout: float = 1.0) -> ProbeResult:
    """Open (and close) a TCP connection."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except TimeoutError:
        return ProbeResult(False, f"dial tcp {host}:{port}: i/o timeout")
    except OSError as err:
        return ProbeResult(False, f"dial tcp {host}:{port}: {err.strerror or err}")
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return ProbeResult(True)


@dataclass(frozen=True)
class ProbeTarget:
    """What a probe needs to know about its container and pod."""

    pod_ip: str = "127.0.0.1"
    container_ports: Mapping[str, int] = field(default_factory=dict)
    exec_target: ExecTarget = field(default_factory=ExecTarget)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
    return default if value is None else value


async def run_probe(probe: Any, target: ProbeTarget) -> ProbeResult:
    """One attempt of a ``Probe`` (model or dict), whichever handler it declares."""
    timeout = float(_get(probe, "timeoutSeconds", 1))
    try:
        if (action := _get(probe, "exec")) is not None:
            return await exec_probe(_get(action, "command", []), target.exec_target, timeout)
        if (action := _get(probe, "httpGet")) is not None:
            port = resolve_port(_get(action, "port"), target.container_ports)
            headers = {_get(h, "name"): _get(h, "value", "") for h in _get(action, "httpHeaders", [])}
            return await http_probe(_get(action, "host", target.pod_ip), port, _get(action, "path", "/"),
                                    _get(action, "scheme", "HTTP"), headers, timeout)
        if (action := _get(probe, "tcpSocket")) is not None:
            port = resolve_port(_get(action, "port"), target.container_ports)
            return await tcp_probe(_get(action, "host", target.pod_ip), port, timeout)
        if _get(probe, "grpc") is not None:
            return ProbeResult(False, "grpc probes are not supported by kcore yet")
    except ValueError as err:
        return ProbeResult(False, str(err))
    return ProbeResult(False, "probe has no handler (exec, httpGet, tcpSocket)")


ProbeKind = str  # "liveness" | "readiness" | "startup"
ResultCallback = Callable[[ProbeKind, ProbeResult], Awaitable[None] | None]


@dataclass
class ProbeState:
    """Threshold bookkeeping for one probe; pure, so the rules are tested without time."""

    success_threshold: int = 1
    failure_threshold: int = 3
    healthy: bool | None = None  # None until a threshold is first crossed
    successes: int = 0
    failures: int = 0

    def observe(self, result: ProbeResult) -> bool:
        """Count one attempt; True when the probe's verdict changed."""
        if result.success:
            self.successes, self.failures = self.successes + 1, 0
            if self.healthy is not True and self.successes >= self.success_threshold:
                self.healthy = True
                return True
        else:
            self.failures, self.successes = self.failures + 1, 0
            if self.healthy is not False and self.failures >= self.failure_threshold:
                self.healthy = False
                return True
        return False


class ProbeGate:
    """Startup gating: liveness and readiness wait until the startup probe succeeded."""

    def __init__(self, has_startup_probe: bool) -> None:
        self._started = asyncio.Event()
        if not has_startup_probe:
            self._started.set()

    @property
    def started(self) -> bool:
        return self._started.is_set()

    def mark_started(self) -> None:
        self._started.set()

    async def wait(self) -> None:
        await self._started.wait()


class Prober:
    """Runs one probe of one container until stopped, reporting verdict changes.

    ``on_result(kind, result)`` is called when the verdict flips. The verdict
    starts unknown (``state.healthy is None``: not ready, not failed). After a
    liveness failure the count starts over, since the kubelet restarts the
    container, so ``failureThreshold`` more failures report again.
    """

    def __init__(
        self,
        kind: ProbeKind,
        probe: Any,
        target: ProbeTarget,
        on_result: ResultCallback,
        gate: ProbeGate | None = None,
        *,
        period_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        runner: Callable[[Any, ProbeTarget], Awaitable[ProbeResult]] = run_probe,
    ) -> None:
        self.kind = kind
        self.probe = probe
        self.target = target
        self.on_result = on_result
        self.gate = gate
        self.period_scale = period_scale  # tests shrink seconds to fractions
        self.clock = clock
        self.runner = runner
        self.state = ProbeState(
            success_threshold=int(_get(probe, "successThreshold", 1)),
            failure_threshold=int(_get(probe, "failureThreshold", 3)),
        )
        self._task: asyncio.Task[None] | None = None
        self.last_result: ProbeResult | None = None

    @property
    def period(self) -> float:
        return float(_get(self.probe, "periodSeconds", 10)) * self.period_scale

    @property
    def initial_delay(self) -> float:
        return float(_get(self.probe, "initialDelaySeconds", 0)) * self.period_scale

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name=f"probe-{self.kind}")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_tasks([self._task])
            self._task = None

    async def run(self) -> None:
        if self.gate is not None and self.kind != "startup":
            await self.gate.wait()
        await asyncio.sleep(self.initial_delay)
        while True:
            started = self.clock()
            result = await self.runner(self.probe, self.target)
            self.last_result = result
            changed = self.state.observe(result)
            if self.kind == "startup" and changed and self.state.healthy and self.gate is not None:
                self.gate.mark_started()
            if changed:
                outcome = self.on_result(self.kind, result)
                if asyncio.iscoroutine(outcome):
                    await outcome
                if self.kind == "liveness" and self.state.healthy is False:
                    # The kubelet restarts the container: judge the new one afresh.
                    self.state.failures, self.state.healthy = 0, None
            if self.kind == "startup" and self.state.healthy:
                return  # Kubernetes stops the startup probe once it succeeded
            await asyncio.sleep(max(0.0, self.period - (self.clock() - started)))
