"""Probes against a real HTTP server container, and the Prober's threshold logic."""

from __future__ import annotations

import asyncio
import socket

import pytest
from kubelet.helpers import make_pod, py_container, wait_until

from kcore.api.core_v1 import Probe
from kcore.kubelet.probes import (
    ExecTarget,
    ProbeGate,
    Prober,
    ProbeResult,
    ProbeState,
    ProbeTarget,
    exec_probe,
    resolve_port,
    run_probe,
    tcp_probe,
)
from kcore.kubelet.runtime_process import ProcessRuntime

SERVER = """
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if self.path == '/healthz' else 500 if self.path == '/sick' else 302 if self.path == '/moved' else 404
        self.send_response(code)
        if code == 302: self.send_header('Location', '/healthz')
        body = ('ok ' + self.headers.get('X-Probe', '-')).encode()
        self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_probes_against_a_real_server(runtime: ProcessRuntime) -> None:
    port = free_port()
    sb = await runtime.kcore_runtime_run_sandbox(pod=make_pod(), context=None)
    container = py_container("web", SERVER, args=[str(port)], ports=[{"name": "http", "containerPort": port}])
    cid = await runtime.kcore_runtime_start_container(sb, container, {"env": {"MARK": "in-container"}})
    target = ProbeTarget("127.0.0.1", {"http": port}, runtime.exec_target(cid))

    async def up() -> bool:
        return (await tcp_probe("127.0.0.1", port, 1)).success
    await wait_until(up)

    def probe(**kw: object) -> Probe:
        return Probe.from_dict({"timeoutSeconds": 2, **kw})

    ok = await run_probe(probe(httpGet={"path": "/healthz", "port": "http",
                                        "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}), target)
    assert ok == ProbeResult(True, "ok yes")
    assert (await run_probe(probe(httpGet={"path": "/moved", "port": port}), target)).success
    sick = await run_probe(probe(httpGet={"path": "/sick", "port": port}), target)
    assert not sick.success and "500" in sick.message
    assert (await run_probe(probe(tcpSocket={"port": "http"}), target)).success
    closed = await run_probe(probe(tcpSocket={"port": free_port()}), target)
    assert not closed.success and "dial tcp" in closed.message
    bad_name = await run_probe(probe(tcpSocket={"port": "nope"}), target)
    assert not bad_name.success and "named port" in bad_name.message
    # exec runs with the container's env and working directory
    exec_ok = await run_probe(probe(exec={"command": ["sh", "-c", "test \"$MARK\" = in-container && pwd"]}), target)
    assert exec_ok.success and exec_ok.message.endswith("/work/web")
    exec_bad = await run_probe(probe(exec={"command": ["sh", "-c", "echo nope; exit 2"]}), target)
    assert not exec_bad.success and "exited with 2" in exec_bad.message and "nope" in exec_bad.message
    await runtime.kcore_runtime_stop_container(cid, 2)


async def test_exec_probe_timeout_kills_the_command() -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    result = await exec_probe(["sh", "-c", "sleep 30"], ExecTarget({"PATH": "/usr/bin:/bin"}), 0.3)
    assert not result.success and "timed out" in result.message
    assert loop.time() - t0 < 5
    missing = await exec_probe(["/no/such/binary"], ExecTarget(), 1)
    assert not missing.success


def test_resolve_port() -> None:
    assert resolve_port(80, {}) == 80 and resolve_port("8080", {}) == 8080 and resolve_port("http", {"http": 81}) == 81
    with pytest.raises(ValueError):
        resolve_port("web", {})


def test_probe_state_thresholds() -> None:
    s = ProbeState(success_threshold=2, failure_threshold=3)
    ok, bad = ProbeResult(True), ProbeResult(False)
    assert [s.observe(r) for r in (ok, ok, ok)] == [False, True, False] and s.healthy is True
    assert [s.observe(r) for r in (bad, bad, ok, bad, bad, bad)] == [False, False, False, False, False, True]
    assert s.healthy is False


def scripted(results: list[bool]):
    """A probe runner returning scripted results, then the last one forever."""
    calls = iter(results)
    last = [results[-1]]

    async def runner(probe: object, target: ProbeTarget) -> ProbeResult:
        value = next(calls, last[0])
        return ProbeResult(value, "scripted")
    return runner


async def test_prober_reports_transitions_and_gates_on_startup() -> None:
    events: list[tuple[str, bool]] = []
    liveness_failed = asyncio.Event()

    def record(kind: str, result: ProbeResult) -> None:
        events.append((kind, result.success))
        if kind == "liveness" and not result.success:
            liveness_failed.set()

    gate = ProbeGate(has_startup_probe=True)
    fast = {"periodSeconds": 1, "failureThreshold": 2, "successThreshold": 1}
    startup = Prober("startup", {**fast, "failureThreshold": 10}, ProbeTarget(), record, gate,
                     period_scale=0.01, runner=scripted([False, False, True]))
    liveness = Prober("liveness", fast, ProbeTarget(), record, gate,
                      period_scale=0.01, runner=scripted([True, False, False]))
    readiness = Prober("readiness", fast, ProbeTarget(), record, gate, period_scale=0.01, runner=scripted([True]))
    for p in (liveness, readiness, startup):
        p.start()
    await asyncio.wait_for(liveness_failed.wait(), 5)
    for p in (liveness, readiness, startup):
        await p.stop()
    assert events[0] == ("startup", True)  # nothing ran before startup succeeded
    assert ("readiness", True) in events
    assert [e for e in events if e[0] == "liveness"][:2] == [("liveness", True), ("liveness", False)]
