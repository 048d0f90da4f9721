"""The exec runner (kcore/kubelet/exec.py) and the kubelet server (kcore/kubelet/server.py).

The process part runs real commands; the protocol part is checked with a real
aiohttp WebSocket client speaking v5.channel.k8s.io, the way kubectl does.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kcore.kubelet.exec import (
    ERROR,
    RESIZE,
    STDERR,
    STDIN,
    STDOUT,
    ExecError,
    ExecOptions,
    ExecProcess,
    exit_status,
    serve_exec,
)
from kcore.kubelet.probes import ExecTarget
from kcore.kubelet.server import KubeletServer, ensure_serving_cert

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MARK": "from-container"}


async def run(proc: ExecProcess, stdin: bytes | None = None) -> tuple[dict[int, bytes], int]:
    out: dict[int, bytes] = {STDOUT: b"", STDERR: b""}

    async def send(channel: int, data: bytes) -> None:
        out[channel] += data

    await proc.start()
    try:
        if stdin is not None:
            await proc.write_stdin(stdin)
            await proc.close_stdin()
        await proc.pump_output(send)
        return out, await proc.wait()
    finally:
        await proc.close()


async def test_exec_uses_the_target_env_and_cwd(tmp_path: Path) -> None:
    target = ExecTarget(ENV, str(tmp_path))
    out, code = await run(ExecProcess(["sh", "-c", "echo $MARK; pwd; echo oops >&2"], target))
    assert code == 0
    assert out[STDOUT].decode().splitlines() == ["from-container", str(tmp_path)]
    assert out[STDERR] == b"oops\n"


async def test_exit_codes() -> None:
    _, code = await run(ExecProcess(["sh", "-c", "exit 3"], ExecTarget(ENV)))
    assert code == 3
    _, code = await run(ExecProcess(["sh", "-c", "kill -9 $$"], ExecTarget(ENV)))
    assert code == 137
    assert exit_status(0) == {"metadata": {}, "status": "Success"}
    failure = exit_status(3)
    assert failure["reason"] == "NonZeroExitCode"
    assert failure["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


async def test_stdin_is_piped_and_closed() -> None:
    out, code = await run(ExecProcess(["cat"], ExecTarget(ENV), stdin=True), stdin=b"hello\n")
    assert (out[STDOUT], code) == (b"hello\n", 0)


async def test_missing_command_is_an_exec_error() -> None:
    with pytest.raises(ExecError, match="executable file not found"):
        await ExecProcess(["no-such-command-kcore"], ExecTarget(ENV)).start()
    with pytest.raises(ExecError):
        ExecProcess([], ExecTarget(ENV))


async def test_tty_is_a_terminal_and_resizes() -> None:
    proc = ExecProcess(["sh", "-c", "test -t 0 && test -t 1 && echo tty; read x; stty size"],
                       ExecTarget(ENV), tty=True, stdin=True)
    out = b""

    async def send(channel: int, data: bytes) -> None:
        nonlocal out
        assert channel == STDOUT  # a terminal has one output stream
        out += data

    await proc.start()
    try:
        proc.resize(100, 40)
        pump = asyncio.ensure_future(proc.pump_output(send))
        await proc.write_stdin(b"go\n")
        await asyncio.wait_for(pump, 10)
        assert await proc.wait() == 0
    finally:
        await proc.close()
    text = out.decode().replace("\r", "")
    assert "tty\n" in text
    assert "40 100" in text


async def test_tty_ctrl_d_ends_cat() -> None:
    proc = ExecProcess(["cat"], ExecTarget(ENV), tty=True, stdin=True)
    out, code = await asyncio.wait_for(run(proc, stdin=b"line\n"), 10)
    assert code == 0
    assert b"line" in out[STDOUT]


async def test_exec_options_from_query() -> None:
    query = aiohttp.helpers.MultiDict([("command", "sh"), ("command", "-c"), ("command", "echo hi"),
                                       ("container", "main"), ("stdin", "true"), ("stdout", "true"),
                                       ("tty", "false")])
    options = ExecOptions.from_query(query)
    assert options.command == ("sh", "-c", "echo hi")
    assert (options.stdin, options.stdout, options.stderr, options.tty) == (True, True, False, False)
    assert ExecOptions.from_query(aiohttp.helpers.MultiDict(options.query())) == options


# -- the WebSocket protocol -----------------------------------------------------------------


async def _ws_client(handler: Any) -> TestClient:
    app = web.Application()
    app.router.add_get("/exec", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def _collect(ws: aiohttp.ClientWebSocketResponse) -> dict[int, bytes]:
    got: dict[int, bytes] = {}
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.BINARY:
            got[msg.data[0]] = got.get(msg.data[0], b"") + msg.data[1:]
    return got


async def test_websocket_v5_stdin_close_and_status() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        async def start() -> ExecProcess:
            proc = ExecProcess(["sh", "-c", "cat; echo done >&2; exit 4"], ExecTarget(ENV), stdin=True)
            await proc.start()
            return proc
        return await serve_exec(request, start)

    client = await _ws_client(handler)
    try:
        ws = await client.ws_connect("/exec", protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"))
        assert ws.protocol == "v5.channel.k8s.io"
        await ws.send_bytes(bytes([STDIN]) + b"abc")
        await ws.send_bytes(bytes([RESIZE]) + b'{"Width": 80, "Height": 24}')  # ignored without tty
        await ws.send_bytes(bytes([255, STDIN]))  # v5: stdin closed
        got = await asyncio.wait_for(_collect(ws), 10)
    finally:
        await client.close()
    assert got[STDOUT] == b"abc"
    assert got[STDERR] == b"done\n"
    status = json.loads(got[ERROR])
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"][0] == {"reason": "ExitCode", "message": "4"}


async def test_websocket_start_failure_is_reported_on_the_error_channel() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        async def start() -> ExecProcess:
            proc = ExecProcess(["no-such-command-kcore"], ExecTarget(ENV))
            await proc.start()
            return proc
        return await serve_exec(request, start)

    client = await _ws_client(handler)
    try:
        ws = await client.ws_connect("/exec", protocols=("v4.channel.k8s.io",))
        assert ws.protocol == "v4.channel.k8s.io"
        got = await asyncio.wait_for(_collect(ws), 10)
    finally:
        await client.close()
    status = orjson.loads(got[ERROR])
    assert status["status"] == "Failure" and "executable file not found" in status["message"]


# -- the kubelet server ---------------------------------------------------------------------


class FakeKubelet:
    def __init__(self, workdir: Path) -> None:
        self.pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
                    "spec": {"containers": [{"name": "c"}]}}
        self.workdir = workdir

    def pod_by_name(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.pod if (namespace, name) == ("ns", "p") else None

    async def exec_target(self, pod: dict[str, Any], container: str) -> ExecTarget:
        if container != "c":
            raise ExecError(f'container "{container}" in pod "p" is not running')
        return ExecTarget(ENV, str(self.workdir))

    async def logs(self, pod: dict[str, Any], container: str, options: dict[str, Any]) -> Any:
        if container != "c":
            raise LookupError("no such container")
        yield b"line 1\n"
        yield f"tail={options['tailLines']}\n".encode()


@pytest.fixture
async def kubelet_server(tmp_path: Path) -> Any:
    server = KubeletServer(FakeKubelet(tmp_path), token="node-secret", address="127.0.0.1", port=0,
                           data_dir=tmp_path / "data", node_name="n1")
    await server.start()
    yield server
    await server.stop()


async def test_kubelet_server_needs_the_node_token(kubelet_server: KubeletServer) -> None:
    base = f"https://127.0.0.1:{kubelet_server.port}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
        async with session.get(f"{base}/healthz") as resp:
            assert resp.status == 200
        async with session.get(f"{base}/containerLogs/ns/p/c") as resp:
            assert resp.status == 401
        async with session.get(f"{base}/containerLogs/ns/p/c",
                               headers={"Authorization": "Bearer wrong"}) as resp:
            assert resp.status == 401


async def test_kubelet_server_logs_and_exec(kubelet_server: KubeletServer, tmp_path: Path) -> None:
    base = f"https://127.0.0.1:{kubelet_server.port}"
    auth = {"Authorization": "Bearer node-secret"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as session:
        async with session.get(f"{base}/containerLogs/ns/p/c", params={"tailLines": "5"},
                               headers=auth) as resp:
            assert resp.status == 200
            assert await resp.text() == "line 1\ntail=5\n"
        async with session.get(f"{base}/containerLogs/ns/p/x", headers=auth) as resp:
            assert resp.status == 400
            assert "no such container" in (await resp.json())["message"]
        async with session.get(f"{base}/containerLogs/ns/missing/c", headers=auth) as resp:
            assert resp.status == 404
        ws = await session.ws_connect(f"{base}/exec/ns/p/c", headers=auth, protocols=("v5.channel.k8s.io",),
                                      params=[("command", "pwd"), ("stdout", "true"), ("stderr", "true")])
        got = await asyncio.wait_for(_collect(ws), 10)
        assert got[STDOUT] == f"{tmp_path}\n".encode()
        assert json.loads(got[ERROR]) == {"metadata": {}, "status": "Success"}
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"{base}/exec/ns/p/other", headers=auth,
                                     params=[("command", "pwd"), ("stdout", "true")])
        assert refused.value.status == 400
        assert "not running" in refused.value.headers["X-Kcore-Error"]


def test_serving_cert_is_reused_until_the_address_changes(tmp_path: Path) -> None:
    cert, _key = ensure_serving_cert(tmp_path, "n1", "127.0.0.1")
    first = cert.read_bytes()
    assert ensure_serving_cert(tmp_path, "n1", "127.0.0.1")[0].read_bytes() == first
    assert ensure_serving_cert(tmp_path, "n1", "127.0.0.2")[0].read_bytes() != first
