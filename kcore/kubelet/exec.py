"""``kubectl exec`` on the node: run a command in a container, and stream it over WebSocket.

Two halves:

- :class:`ExecProcess` starts a command the way the container runs (its
  environment, working directory and network namespace: the runtime's
  ``exec_target``, the same place exec probes run) with its standard streams on
  pipes, or on a pseudo-terminal when ``tty`` is asked for (resizable with
  ``TIOCSWINSZ``). The process is a session of its own, so ending the exec ends
  everything it forked.
- :func:`serve_exec` speaks Kubernetes' WebSocket remote-command protocol
  (``v5.channel.k8s.io``, ``v4.channel.k8s.io``) over an aiohttp request: every
  binary message starts with a channel byte — 0 stdin, 1 stdout, 2 stderr, 3 error
  (one JSON ``Status`` at the end: ``Success``, or ``Failure`` with reason
  ``NonZeroExitCode`` and the exit code as a cause), 4 resize (JSON
  ``{"Width": w, "Height": h}``); v5 adds 255 "close stream" (``[255, 0]`` is stdin
  EOF). The API server (for its local kubelet) and the kubelet server (for the API
  server, on other nodes) both serve exec through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import signal
import struct
import termios
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from kcore.kubelet.probes import ExecTarget, netns_argv
from kcore.log import get_logger

log = get_logger("kubelet.exec")

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
# Newest first: the server picks the first of the client's offers it knows.
SUBPROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
_READ_SIZE = 32 * 1024


class ExecError(Exception):
    """The command could not be started (not found, not executable, no container)."""


@dataclass(frozen=True)
class ExecOptions:
    """What the client asked for: the query of a pods/exec request."""

    command: tuple[str, ...]
    container: str = ""
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    tty: bool = False

    @classmethod
    def from_query(cls, query: Any) -> ExecOptions:
        def flag(name: str, default: bool) -> bool:
            value = query.get(name)
            if value is None:
                return default
            return value.lower() in ("1", "true", "t", "yes")

        return cls(command=tuple(query.getall("command", [])), container=query.get("container", ""),
                   stdin=flag("stdin", False), stdout=flag("stdout", False), stderr=flag("stderr", False),
                   tty=flag("tty", False))

    def query(self) -> list[tuple[str, str]]:
        """Back to query parameters (to forward the request to another kubelet)."""
        items = [("command", c) for c in self.command]
        if self.container:
            items.append(("container", self.container))
        for name in ("stdin", "stdout", "stderr", "tty"):
            items.append((name, "true" if getattr(self, name) else "false"))
        return items


def exit_status(code: int) -> dict[str, Any]:
    """The error channel's final Status for a process that exited with ``code``."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {}, "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def error_status(message: str) -> dict[str, Any]:
    """The error channel's Status for an exec that could not run at all."""
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError",
            "code": 500}


def _set_winsize(fd: int, width: int, height: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", max(height, 0), max(width, 0), 0, 0))


def _kill_session(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class ExecProcess:
    """A command running in a container's context; feed stdin, pump output, wait."""

    def __init__(self, command: Sequence[str], target: ExecTarget, *, tty: bool = False,
                 stdin: bool = False) -> None:
        if not command:
            raise ExecError("no command given to exec")
        self.command = list(command)
        self.target = target
        self.tty = tty
        self.want_stdin = stdin
        self.proc: asyncio.subprocess.Process | None = None
        self._master: int | None = None
        self._stdin_closed = False

    async def start(self) -> None:
        argv = netns_argv(self.target.netns, self.command)
        env = dict(self.target.env)
        cwd = self.target.cwd if self.target.cwd and os.path.isdir(self.target.cwd) else None
        try:
            if self.tty:
                master, slave = os.openpty()
                env.setdefault("TERM", "xterm")

                def controlling_tty() -> None:  # runs in the child, after setsid
                    fcntl.ioctl(0, termios.TIOCSCTTY, 0)

                try:
                    self.proc = await asyncio.create_subprocess_exec(
                        *argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                        start_new_session=True, preexec_fn=controlling_tty)
                except BaseException:
                    os.close(master)
                    raise
                finally:
                    os.close(slave)
                os.set_blocking(master, False)
                self._master = master
            else:
                pipe = asyncio.subprocess.PIPE
                self.proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=pipe if self.want_stdin else asyncio.subprocess.DEVNULL,
                    stdout=pipe, stderr=pipe, env=env, cwd=cwd, start_new_session=True)
        except FileNotFoundError:
            raise ExecError(f'exec: "{self.command[0]}": executable file not found in $PATH') from None
        except PermissionError:
            raise ExecError(f'exec: "{self.command[0]}": permission denied') from None
        except OSError as exc:
            raise ExecError(f'exec: "{self.command[0]}": {exc.strerror or exc}') from None

    # -- input ----------------------------------------------------------------------

    async def write_stdin(self, data: bytes) -> None:
        if self._stdin_closed or not data:
            return
        if self._master is not None:
            await self._write_master(data)
            return
        assert self.proc is not None
        if self.proc.stdin is None:
            return
        try:
            self.proc.stdin.write(data)
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            self._stdin_closed = True

    async def _write_master(self, data: bytes) -> None:
        assert self._master is not None
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master, view)
                view = view[written:]
            except BlockingIOError:
                await asyncio.sleep(0.01)
            except OSError:
                return

    async def close_stdin(self) -> None:
        """Stdin EOF: close the pipe; on a terminal send ^D, as a closed terminal would."""
        if self._stdin_closed:
            return
        self._stdin_closed = True
        if self._master is not None:
            await self._write_master(b"\x04")
            return
        if self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()

    def resize(self, width: int, height: int) -> None:
        if self._master is not None:
            with contextlib.suppress(OSError):
                _set_winsize(self._master, width, height)

    # -- output ---------------------------------------------------------------------

    async def pump_output(self, send: Callable[[int, bytes], Awaitable[None]]) -> None:
        """Call ``send(channel, data)`` for all output; return at end of output."""
        assert self.proc is not None
        if self._master is not None:
            await self._pump_master(send)
            return

        async def pump(stream: asyncio.StreamReader | None, channel: int) -> None:
            if stream is None:
                return
            while chunk := await stream.read(_READ_SIZE):
                await send(channel, chunk)

        await asyncio.gather(pump(self.proc.stdout, STDOUT), pump(self.proc.stderr, STDERR))

    async def _pump_master(self, send: Callable[[int, bytes], Awaitable[None]]) -> None:
        assert self._master is not None and self.proc is not None
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(self._master, readable.set)
        exited = asyncio.ensure_future(self.proc.wait())
        try:
            while True:
                try:
                    chunk = os.read(self._master, _READ_SIZE)
                except BlockingIOError:
                    if exited.done():
                        return  # the process is gone and nothing is left to read
                    readable.clear()
                    waiter = asyncio.ensure_future(readable.wait())
                    await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
                    waiter.cancel()
                    continue
                except OSError as exc:
                    if exc.errno == errno.EIO:  # every holder of the terminal closed it
                        return
                    raise
                if not chunk:
                    return
                await send(STDOUT, chunk)
        finally:
            loop.remove_reader(self._master)
            if not exited.done():
                exited.cancel()

    async def wait(self) -> int:
        """The exit code (128 + signal for a killed process, as runtimes report it)."""
        assert self.proc is not None
        code = await self.proc.wait()
        return 128 - code if code < 0 else code

    async def close(self) -> None:
        """End the command and whatever it forked; release the terminal."""
        if self.proc is not None:
            _kill_session(self.proc.pid)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.proc.wait(), 5)
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = None


async def run_exec(proc: ExecProcess, send: Callable[[int, bytes], Awaitable[None]]) -> int:
    """Pump ``proc``'s output to ``send`` until it ends; its exit code."""
    await proc.pump_output(send)
    return await proc.wait()


def websocket_response() -> web.WebSocketResponse:
    # No heartbeat of ours: kubectl pings, aiohttp answers.
    return web.WebSocketResponse(protocols=SUBPROTOCOLS, max_msg_size=0, autoping=True)


def is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def serve_exec(request: web.Request, start: Callable[[], Awaitable[ExecProcess]],
                     options: ExecOptions | None = None) -> web.StreamResponse:
    """Answer an exec WebSocket: start the process, bridge it, report its exit status."""
    ws = websocket_response()
    await ws.prepare(request)
    v5 = ws.ws_protocol == "v5.channel.k8s.io"
    muted = set()
    if options is not None:
        muted = {ch for ch, wanted in ((STDOUT, options.stdout), (STDERR, options.stderr)) if not wanted}

    async def send(channel: int, data: bytes) -> None:
        if channel not in muted:
            await ws.send_bytes(bytes([channel]) + data)

    proc: ExecProcess | None = None
    try:
        try:
            proc = await start()
        except ExecError as exc:
            await send(ERROR, orjson.dumps(error_status(str(exc))))
            return ws
        reader = asyncio.ensure_future(_read_client(ws, proc, v5))
        try:
            code = await run_exec(proc, send)
            await send(ERROR, orjson.dumps(exit_status(code)))
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the client went away: the process goes too
    finally:
        if proc is not None:
            await proc.close()
        with contextlib.suppress(Exception):
            await ws.close()
    return ws


async def _read_client(ws: web.WebSocketResponse, proc: ExecProcess, v5: bool) -> None:
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            data: bytes = msg.data
        elif msg.type == WSMsgType.TEXT:
            data = msg.data.encode()
        else:
            break
        if not data:
            continue
        channel, payload = data[0], data[1:]
        if channel == STDIN:
            await proc.write_stdin(payload)
        elif channel == RESIZE:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                size = orjson.loads(payload)
                proc.resize(int(size.get("Width", 0)), int(size.get("Height", 0)))
        elif channel == CLOSE and v5 and payload[:1] == bytes([STDIN]):
            await proc.close_stdin()
    # The client hung up: no more input, and nobody to read the output.
    await proc.close_stdin()
    if ws.closed and proc.proc is not None:
        _kill_session(proc.proc.pid)
