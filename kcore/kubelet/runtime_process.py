"""The ``process`` runtime: every container is a real child process of the kubelet.

A container is a session of its own (``setsid``), so stopping it reaches
everything it forked, and when its main process exits the rest of the session
is killed, as the end of a PID namespace would. Output goes through two FIFOs
in the pod directory that the child holds open read-write: the kubelet pumps
them into CRI log files, and if the kubelet dies the child never gets SIGPIPE
(it only blocks once the pipe fills) and a restarted kubelet reopens the FIFOs
and carries on. A small JSON state file per container (pid, process start time,
log path) lets a new runtime instance adopt running containers and tell a
reused pid from the original process.

Layout under ``<data-dir>/pods/<ns>_<name>_<uid>/``: ``<container>/<restart>.log``
(the logs), ``work/<container>/`` (default working directory) and ``.runtime/``
(sandbox and container state, FIFOs).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from kcore.hookspecs import hookimpl
from kcore.kubelet.crilog import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, LogOptions, LogWriter, RotatingLog, read_log
from kcore.kubelet.envvars import expand
from kcore.kubelet.probes import ExecTarget, netns_argv
from kcore.kubelet.resources import session_pids
from kcore.log import get_logger

log = get_logger("kubelet.runtime.process")

# Variables a process needs from the host that an image would otherwise provide.
INHERITED_ENV: tuple[str, ...] = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "USER", "TMPDIR")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UNKNOWN_EXIT_CODE = 255
_STATE_DIR = ".runtime"


class ContainerStartError(Exception):
    """A container could not be started; ``reason`` is the kubelet's waiting reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ContainerNotFoundError(LookupError):
    """No container (or sandbox) with that id is known to this runtime."""


# -- pure helpers ------------------------------------------------------------


def image_candidates(image: str) -> list[str]:
    """Names to look an image up by: exact, without digest, without tag."""
    names = [image]
    base = image.split("@", 1)[0]
    slash = base.rfind("/")
    colon = base.rfind(":")
    untagged = base[:colon] if colon > slash else base
    for name in (base, untagged):
        if name not in names:
            names.append(name)
    return names


def container_argv(
    command: Sequence[str] | None,
    args: Sequence[str] | None,
    image: str | None,
    images: Mapping[str, Mapping[str, Sequence[str]]],
    env: Mapping[str, str],
) -> list[str]:
    """The argv to exec, with Kubernetes' command/args-over-image rules and ``$(VAR)`` expansion.

    ``command`` replaces the image's entrypoint and drops its args; ``args``
    alone keeps the entrypoint. Without a command the image must be in
    ``images`` (``[kubelet.images]``), since processes have no image metadata.
    """
    if command:
        argv = [*command, *(args or [])]
    else:
        entry = next((images[n] for n in image_candidates(image or "") if n in images), None)
        if entry is None:
            names = image_candidates(image or "")
            raise ContainerStartError(
                "ImageEntrypointUnknown",
                f"image {image!r} has no known entrypoint: the process runtime needs the container's "
                f"command, or an entry for {names[-1]!r} in the [kubelet.images] table of the kcore "
                f"configuration (e.g. [kubelet.images.\"{names[-1]}\"] command = [\"...\"])",
            )
        argv = [*entry.get("command", []), *(args if args else entry.get("args", []))]
    if not argv:
        raise ContainerStartError("RunContainerError", "the container has an empty command")
    return [expand(a, env) for a in argv]


def resolve_workdir(pod_dir: Path, container_name: str, working_dir: str | None) -> Path:
    """Absolute ``workingDir`` as is, relative under the pod dir, default a per-container dir."""
    if not working_dir:
        return pod_dir / "work" / container_name
    path = Path(working_dir)
    return path if path.is_absolute() else pod_dir / path


def exit_code_of(returncode: int) -> int:
    """Shell convention, as Kubernetes reports it: killed by signal N is 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def rfc3339(ts: float | None) -> str | None:
    """A metav1.Time string (seconds, UTC)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ctx(context: Any, name: str, default: Any = None) -> Any:
    """Read a field from a context given as a mapping or an object."""
    if context is None:
        return default
    value = context.get(name) if isinstance(context, Mapping) else getattr(context, name, None)
    return default if value is None else value


def _same_process(pid: int, create_time: float | None) -> bool:
    """Whether ``pid`` is still the process we started (not exited, not a reused pid)."""
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 0.05:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _signal_session(sid: int, sig: int) -> None:
    """Signal a container's process group, and with SIGKILL every member of its session."""
    try:
        os.killpg(sid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    if sig == signal.SIGKILL:
        for pid in session_pids(sid):
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


async def _session_gone(sid: int, timeout: float = 5.0) -> None:
    """Return once no live process of session ``sid`` is left (forked children too)."""
    from kcore.kubelet.resources import session_pids

    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in await asyncio.to_thread(session_pids, sid):
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                continue
        if not alive or time.monotonic() > deadline:
            return
        _signal_session(sid, signal.SIGKILL)
        await asyncio.sleep(0.02)


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


# -- records -----------------------------------------------------------------


@dataclass
class Sandbox:
    """A pod as the runtime knows it (persisted as ``.runtime/sandbox.json``)."""

    id: str
    namespace: str
    name: str
    uid: str
    pod_dir: str
    netns: str | None = None
    grace_seconds: int = 30
    state: str = "ready"
    created_at: float = field(default_factory=time.time)

    @property
    def state_dir(self) -> Path:
        return Path(self.pod_dir) / _STATE_DIR


@dataclass
class ContainerRecord:
    """One container instance; its persisted fields survive a kubelet restart."""

    id: str
    sandbox_id: str
    name: str
    image: str | None
    restart_count: int
    argv: list[str]
    env: dict[str, str]
    cwd: str
    log_path: str
    netns: str | None = None
    pid: int | None = None
    create_time: float | None = None
    state: str = "created"
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: float | None = None
    finished_at: float | None = None

    def status(self) -> dict[str, Any]:
        """The CRI-like status dict of the hookspec, plus what the kubelet may show."""
        return {
            "id": self.id, "sandbox_id": self.sandbox_id, "name": self.name, "image": self.image,
            "state": self.state, "exit_code": self.exit_code, "reason": self.reason, "message": self.message,
            "started_at": rfc3339(self.started_at), "finished_at": rfc3339(self.finished_at),
            "pid": self.pid, "restart_count": self.restart_count, "log_path": self.log_path,
        }


@dataclass
class _Live:
    """What only this runtime instance holds for a running container."""

    exited: asyncio.Event
    writer: LogWriter | None = None
    monitor: asyncio.Task[None] | None = None


# -- the runtime -------------------------------------------------------------


class ProcessRuntime:
    """The ``process`` entry point of ``kcore.runtime``: containers as child processes."""

    def __init__(
        self,
        data_dir: Path | str | None = None,
        images: Mapping[str, Any] | None = None,
        log_max_bytes: int = DEFAULT_MAX_BYTES,
        log_max_files: int = DEFAULT_MAX_FILES,
    ) -> None:
        self.data_dir: Path | None = None
        self.images: dict[str, dict[str, list[str]]] = {}
        self.log_max_bytes = log_max_bytes
        self.log_max_files = log_max_files
        self._sandboxes: dict[str, Sandbox] = {}
        self._containers: dict[str, ContainerRecord] = {}
        self._live: dict[str, _Live] = {}
        self._loaded_for: Path | None = None
        self._lock = asyncio.Lock()
        self.configure(data_dir=data_dir, images=images)

    # -- configuration -------------------------------------------------------

    def configure(
        self,
        *,
        data_dir: Path | str | None = None,
        images: Mapping[str, Any] | None = None,
        log_max_bytes: int | None = None,
        log_max_files: int | None = None,
    ) -> None:
        """Set where pods live, the image table and log rotation (None keeps a setting)."""
        if data_dir is not None:
            self.data_dir = Path(data_dir).expanduser().resolve()
        if images is not None:
            self.images = {name: _entrypoint_dict(entry) for name, entry in images.items()}
        if log_max_bytes is not None:
            self.log_max_bytes = log_max_bytes
        if log_max_files is not None:
            self.log_max_files = log_max_files

    @hookimpl
    def kcore_plugin_configure(self, config: Any) -> None:
        kubelet = getattr(config, "kubelet", None)
        if kubelet is not None:
            self.configure(images=getattr(kubelet, "images", None) or {})

    # -- sandboxes -------------------------------------------------------------

    @hookimpl
    async def kcore_runtime_run_sandbox(self, pod: Any, context: Any) -> str:
        if _ctx(context, "data_dir") is not None:
            self.configure(data_dir=_ctx(context, "data_dir"))
        await self._ensure_loaded()
        meta = pod.metadata
        sandbox_id = f"{meta.namespace or 'default'}_{meta.name}_{meta.uid}"
        existing = self._sandboxes.get(sandbox_id)
        if existing is not None and existing.state == "ready":
            return sandbox_id
        pod_dir = self._pods_dir() / sandbox_id
        grace = pod.spec.terminationGracePeriodSeconds if pod.spec else None
        sandbox = Sandbox(
            sandbox_id, meta.namespace or "default", meta.name, meta.uid or "", str(pod_dir),
            netns=_ctx(context, "netns"), grace_seconds=30 if grace is None else grace,
        )
        sandbox.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_json(sandbox.state_dir / "sandbox.json", asdict(sandbox))
        self._sandboxes[sandbox_id] = sandbox
        log.info("sandbox ready", sandbox=sandbox_id, netns=sandbox.netns)
        return sandbox_id

    @hookimpl
    async def kcore_runtime_stop_sandbox(self, sandbox_id: str) -> None:
        await self._ensure_loaded()
        sandbox = self._sandbox(sandbox_id)
        running = [c for c in self._containers.values() if c.sandbox_id == sandbox_id and c.state == "running"]
        await asyncio.gather(*(self._stop(c, sandbox.grace_seconds) for c in running))
        sandbox.state = "notready"
        _write_json(sandbox.state_dir / "sandbox.json", asdict(sandbox))

    @hookimpl
    async def kcore_runtime_remove_sandbox(self, sandbox_id: str) -> None:
        await self._ensure_loaded()
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is None:
            return
        mine = [c for c in self._containers.values() if c.sandbox_id == sandbox_id]
        await asyncio.gather(*(self._stop(c, 0) for c in mine if c.state == "running"))
        for c in mine:
            del self._containers[c.id]
            self._live.pop(c.id, None)
        del self._sandboxes[sandbox_id]
        shutil.rmtree(sandbox.pod_dir, ignore_errors=True)

    # -- containers -------------------------------------------------------------

    @hookimpl
    async def kcore_runtime_start_container(self, sandbox_id: str, container: Any, context: Any) -> str:
        await self._ensure_loaded()
        sandbox = self._sandbox(sandbox_id)
        env = {str(k): str(v) for k, v in (_ctx(context, "env") or {}).items()}
        argv = container_argv(container.command, container.args, container.image, self.images, env)
        restart_count = _ctx(context, "restart_count")
        if restart_count is None:
            restart_count = sum(1 for c in self._containers.values()
                                if c.sandbox_id == sandbox_id and c.name == container.name)
        pod_dir = Path(sandbox.pod_dir)
        cwd = resolve_workdir(pod_dir, container.name, container.workingDir)
        try:
            cwd.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ContainerStartError("CreateContainerError", f"cannot create working directory {cwd}: {err}") from err
        record = ContainerRecord(
            id=uuid.uuid4().hex, sandbox_id=sandbox_id, name=container.name, image=container.image,
            restart_count=int(restart_count), argv=argv, env=env, cwd=str(cwd), netns=sandbox.netns,
            log_path=str(pod_dir / container.name / f"{restart_count}.log"),
        )
        await self._spawn(record)
        return record.id

    async def _spawn(self, rec: ContainerRecord) -> None:
        state_dir = Path(self._sandboxes[rec.sandbox_id].state_dir)
        fifos = [state_dir / f"{rec.id}.{s}" for s in ("stdout", "stderr")]
        write_fds: list[int] = []
        read_fds: list[int] = []
        try:
            for path in fifos:
                os.mkfifo(path, 0o600)
                # Read-write for the child: it is its own reader, so it never gets SIGPIPE.
                write_fds.append(os.open(path, os.O_RDWR))
                read_fds.append(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
            env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
            env.setdefault("PATH", DEFAULT_PATH)
            env.update(rec.env)
            exec_argv = rec.argv
            if rec.netns:
                # Resolve the program first: behind `ip netns exec` a missing one would be
                # a crash, not the "executable file not found" start error it is.
                program = rec.argv[0] if "/" in rec.argv[0] else shutil.which(rec.argv[0], path=env["PATH"])
                if program is None:
                    raise FileNotFoundError(rec.argv[0])
                exec_argv = netns_argv(rec.netns, [program, *rec.argv[1:]])
            proc = await asyncio.create_subprocess_exec(
                *exec_argv, stdin=asyncio.subprocess.DEVNULL, stdout=write_fds[0], stderr=write_fds[1],
                cwd=rec.cwd, env=env, start_new_session=True,
            )
        except OSError as err:
            for fd in read_fds:
                os.close(fd)
            for path in fifos:
                path.unlink(missing_ok=True)
            what = f'exec: "{rec.argv[0]}": ' + (
                "executable file not found in $PATH" if isinstance(err, FileNotFoundError) else str(err.strerror or err)
            )
            raise ContainerStartError("RunContainerError", what) from err
        finally:
            for fd in write_fds:
                os.close(fd)
        rec.pid = proc.pid
        rec.started_at = time.time()
        rec.state = "running"
        try:
            rec.create_time = psutil.Process(proc.pid).create_time()
        except psutil.NoSuchProcess:  # pragma: no cover - reaped before we looked
            rec.create_time = None
        live = _Live(asyncio.Event())
        live.writer = self._start_writer(rec, read_fds)
        self._containers[rec.id] = rec
        self._live[rec.id] = live
        self._persist(rec)
        live.monitor = asyncio.get_running_loop().create_task(self._monitor(rec, live, proc))
        log.info("container started", container=rec.name, id=rec.id, pid=rec.pid, argv=rec.argv)

    def _start_writer(self, rec: ContainerRecord, read_fds: Sequence[int]) -> LogWriter:
        writer = LogWriter(RotatingLog(Path(rec.log_path), self.log_max_bytes, self.log_max_files))
        for stream, fd in zip(("stdout", "stderr"), read_fds):
            writer.start(stream, fd)
        return writer

    async def _monitor(self, rec: ContainerRecord, live: _Live, proc: asyncio.subprocess.Process | None) -> None:
        """Wait for the main process, end its session, drain the logs, record the exit."""
        if proc is not None:
            code: int | None = exit_code_of(await proc.wait())
        else:
            await _wait_foreign_exit(rec.pid or 0, rec.create_time)
            code = None
        finished = time.time()
        if rec.pid:
            _signal_session(rec.pid, signal.SIGKILL)  # as a PID namespace ends with its init
        if live.writer is not None:
            await live.writer.wait_closed(timeout=5)
        self._mark_exited(rec, code, finished)
        live.exited.set()

    def _mark_exited(self, rec: ContainerRecord, code: int | None, finished: float) -> None:
        rec.state = "exited"
        rec.finished_at = finished
        if code is None:
            rec.exit_code, rec.reason = UNKNOWN_EXIT_CODE, "ContainerStatusUnknown"
            rec.message = "the container exited while it was not a child of this kubelet; its exit code is unknown"
        else:
            rec.exit_code, rec.reason = code, ("Completed" if code == 0 else "Error")
        sandbox = self._sandboxes.get(rec.sandbox_id)
        if sandbox is not None:
            for s in ("stdout", "stderr"):
                (sandbox.state_dir / f"{rec.id}.{s}").unlink(missing_ok=True)
            self._persist(rec)
        log.info("container exited", container=rec.name, id=rec.id, exit_code=rec.exit_code)

    @hookimpl
    async def kcore_runtime_stop_container(self, container_id: str, grace_seconds: int) -> None:
        await self._ensure_loaded()
        await self._stop(self._container(container_id), grace_seconds)

    async def _stop(self, rec: ContainerRecord, grace_seconds: float) -> None:
        live = self._live.get(rec.id)
        if rec.state != "running" or live is None or rec.pid is None:
            return
        _signal_session(rec.pid, signal.SIGTERM if grace_seconds > 0 else signal.SIGKILL)
        try:
            await asyncio.wait_for(asyncio.shield(live.exited.wait()), max(grace_seconds, 0) or 0.001)
        except TimeoutError:
            log.info("grace period over, killing", container=rec.name, id=rec.id, grace=grace_seconds)
            _signal_session(rec.pid, signal.SIGKILL)
            await live.exited.wait()
        await _session_gone(rec.pid)

    @hookimpl
    async def kcore_runtime_container_status(self, container_id: str) -> dict[str, Any]:
        await self._ensure_loaded()
        return self._container(container_id).status()

    @hookimpl
    async def kcore_runtime_list_containers(self) -> list[dict[str, Any]]:
        await self._ensure_loaded()
        return [c.status() for c in self._containers.values()]

    @hookimpl
    async def kcore_runtime_container_logs(self, container_id: str, options: Any) -> AsyncIterator[bytes]:
        await self._ensure_loaded()
        opts = LogOptions.from_any(options)
        rec = self._container(container_id)
        if opts.previous:
            older = [c for c in self._containers.values() if c.sandbox_id == rec.sandbox_id
                     and c.name == rec.name and c.restart_count < rec.restart_count]
            path = Path(max(older, key=lambda c: c.restart_count).log_path) if older else \
                Path(rec.log_path).with_name(f"{rec.restart_count - 1}.log")
            if rec.restart_count == 0 or not path.exists():
                raise ContainerNotFoundError(f'previous terminated container "{rec.name}" not found')
            async for chunk in read_log(path, LogOptions(**{**asdict(opts), "follow": False})):
                yield chunk
            return
        live = self._live.get(rec.id)
        async for chunk in read_log(
            Path(rec.log_path), opts,
            finished=lambda: rec.state != "running",
            wait_changed=live.writer.wait_changed if live and live.writer else None,
        ):
            yield chunk

    def exec_target(self, container_id: str) -> ExecTarget:
        """Where an exec probe of this container runs: its env, cwd and netns."""
        rec = self._container(container_id)
        env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
        env.setdefault("PATH", DEFAULT_PATH)
        env.update(rec.env)
        return ExecTarget(env, rec.cwd, rec.netns)

    # -- lifecycle of the runtime instance -------------------------------------

    async def close(self) -> None:
        """Let go of every container without stopping it (the kubelet is exiting).

        A new instance over the same data dir adopts what is still running.
        """
        for live in self._live.values():
            if live.monitor is not None:
                live.monitor.cancel()
            if live.writer is not None:
                live.writer.detach()
        for live in self._live.values():
            if live.monitor is not None:
                try:
                    await live.monitor
                except asyncio.CancelledError:
                    pass
        self._live.clear()

    async def _ensure_loaded(self) -> None:
        if self.data_dir is None or self._loaded_for == self.data_dir:
            return
        async with self._lock:
            if self._loaded_for == self.data_dir:
                return
            self._loaded_for = self.data_dir
            self._load(self._pods_dir())

    def _load(self, pods_dir: Path) -> None:
        """Adopt the sandboxes and containers a previous instance left on disk."""
        for sandbox_file in sorted(pods_dir.glob(f"*/{_STATE_DIR}/sandbox.json")):
            try:
                sandbox = Sandbox(**json.loads(sandbox_file.read_text()))
            except (OSError, ValueError, TypeError) as err:
                log.warning("unreadable sandbox state, skipped", path=str(sandbox_file), error=str(err))
                continue
            self._sandboxes.setdefault(sandbox.id, sandbox)
            for state_file in sorted(sandbox_file.parent.glob("*.json")):
                if state_file.name == "sandbox.json":
                    continue
                try:
                    rec = ContainerRecord(**json.loads(state_file.read_text()))
                except (OSError, ValueError, TypeError) as err:
                    log.warning("unreadable container state, skipped", path=str(state_file), error=str(err))
                    continue
                if rec.id in self._containers:
                    continue
                self._containers[rec.id] = rec
                if rec.state == "running":
                    self._adopt(rec)

    def _adopt(self, rec: ContainerRecord) -> None:
        sandbox = self._sandboxes[rec.sandbox_id]
        if rec.pid is None or not _same_process(rec.pid, rec.create_time):
            self._mark_exited(rec, None, time.time())
            return
        read_fds = []
        for s in ("stdout", "stderr"):
            path = sandbox.state_dir / f"{rec.id}.{s}"
            if path.exists() and stat.S_ISFIFO(path.stat().st_mode):
                read_fds.append(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        live = _Live(asyncio.Event())
        if len(read_fds) == 2:
            live.writer = self._start_writer(rec, read_fds)
        else:
            for fd in read_fds:
                os.close(fd)
        self._live[rec.id] = live
        live.monitor = asyncio.get_running_loop().create_task(self._monitor(rec, live, None))
        log.info("container adopted", container=rec.name, id=rec.id, pid=rec.pid)

    # -- lookups -------------------------------------------------------------

    def _pods_dir(self) -> Path:
        if self.data_dir is None:
            raise RuntimeError("the process runtime has no data directory: call configure(data_dir=...)")
        return self.data_dir / "pods"

    def _sandbox(self, sandbox_id: str) -> Sandbox:
        try:
            return self._sandboxes[sandbox_id]
        except KeyError:
            raise ContainerNotFoundError(f"no pod sandbox {sandbox_id!r}") from None

    def _container(self, container_id: str) -> ContainerRecord:
        try:
            return self._containers[container_id]
        except KeyError:
            raise ContainerNotFoundError(f"no container {container_id!r}") from None

    def _persist(self, rec: ContainerRecord) -> None:
        sandbox = self._sandboxes.get(rec.sandbox_id)
        if sandbox is not None and sandbox.state_dir.exists():
            _write_json(sandbox.state_dir / f"{rec.id}.json", asdict(rec))


def _entrypoint_dict(entry: Any) -> dict[str, list[str]]:
    """An image table entry given as a dict or a config model."""
    if isinstance(entry, Mapping):
        return {"command": list(entry.get("command") or []), "args": list(entry.get("args") or [])}
    return {"command": list(getattr(entry, "command", None) or []), "args": list(getattr(entry, "args", None) or [])}


async def _wait_foreign_exit(pid: int, create_time: float | None, poll: float = 0.5) -> None:
    """Wait for a process that is not our child: a pidfd when the kernel has them, else polling."""
    if not _same_process(pid, create_time):
        return
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        while _same_process(pid, create_time):
            await asyncio.sleep(poll)
        return
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(pidfd, lambda: done.done() or done.set_result(None))
    try:
        if _same_process(pid, create_time):  # the pidfd is for the right process
            await done
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
