"""The process runtime against real child processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import psutil
import pytest
from kubelet.helpers import make_pod, pid_gone, py_container, session_alive, wait_until

from kcore.api.core_v1 import Container
from kcore.kubelet.runtime_process import (
    ContainerNotFoundError,
    ContainerStartError,
    ProcessRuntime,
    container_argv,
    exit_code_of,
    image_candidates,
    resolve_workdir,
)
from kcore.plugins import create_plugin_host
from kcore.testing import plugin_host_for


async def _exited(rt: ProcessRuntime, cid: str) -> dict:
    async def check() -> dict | None:
        st = await rt.kcore_runtime_container_status(cid)
        return st if st["state"] == "exited" else None
    return await wait_until(check)


# -- pure parts ----------------------------------------------------------------


@pytest.mark.parametrize(("image", "expected"), [
    ("nginx", ["nginx"]),
    ("nginx:1.27", ["nginx:1.27", "nginx"]),
    ("localhost:5000/app:v1", ["localhost:5000/app:v1", "localhost:5000/app"]),
    ("localhost:5000/app", ["localhost:5000/app"]),
    ("app@sha256:abc", ["app@sha256:abc", "app"]),
])
def test_image_candidates(image: str, expected: list[str]) -> None:
    assert image_candidates(image) == expected


IMAGES = {"web:1": {"command": ["/bin/web"], "args": ["--port", "80"]}, "tool": {"command": ["/bin/tool"], "args": ["x"]}}


@pytest.mark.parametrize(("command", "args", "image", "expected"), [
    (["echo"], ["a"], "whatever", ["echo", "a"]),
    (["echo"], None, "web:1", ["echo"]),  # command drops the image's args too
    (None, None, "web:1", ["/bin/web", "--port", "80"]),
    (None, ["--port", "$(PORT)"], "web:1", ["/bin/web", "--port", "8080"]),
    (None, None, "tool:2.0", ["/bin/tool", "x"]),  # falls back to the untagged name
    (["sh", "-c", "echo $$(PORT) $(PORT) $(NOPE)"], None, None, ["sh", "-c", "echo $(PORT) 8080 $(NOPE)"]),
])
def test_container_argv(command, args, image, expected) -> None:
    assert container_argv(command, args, image, IMAGES, {"PORT": "8080"}) == expected


def test_unknown_image_names_the_table() -> None:
    with pytest.raises(ContainerStartError) as err:
        container_argv(None, None, "redis:7", IMAGES, {})
    assert err.value.reason == "ImageEntrypointUnknown"
    assert "redis" in err.value.message and "[kubelet.images]" in err.value.message


def test_workdir_and_exit_codes(tmp_path: Path) -> None:
    assert resolve_workdir(tmp_path, "c", None) == tmp_path / "work" / "c"
    assert resolve_workdir(tmp_path, "c", "sub/dir") == tmp_path / "sub/dir"
    assert resolve_workdir(tmp_path, "c", "/abs") == Path("/abs")
    assert exit_code_of(0) == 0 and exit_code_of(3) == 3
    assert exit_code_of(-signal.SIGKILL) == 137 and exit_code_of(-signal.SIGTERM) == 143


def test_entry_points_load() -> None:
    host = create_plugin_host(groups=["kcore.runtime"], only={"process", "fake"})
    assert {"process", "fake"} <= set(host.names("kcore.runtime"))


# -- real processes --------------------------------------------------------------


async def test_exit_codes_and_status(runtime: ProcessRuntime) -> None:
    sb = await runtime.kcore_runtime_run_sandbox(pod=make_pod(), context=None)
    ok = await runtime.kcore_runtime_start_container(sb, py_container("ok", "print('hi')"), None)
    bad = await runtime.kcore_runtime_start_container(sb, py_container("bad", "import sys; sys.exit(3)"), None)
    st = await _exited(runtime, ok)
    assert (st["exit_code"], st["reason"]) == (0, "Completed")
    assert st["started_at"].endswith("Z") and st["finished_at"] >= st["started_at"]
    st = await _exited(runtime, bad)
    assert (st["exit_code"], st["reason"]) == (3, "Error")
    listed = {c["id"]: c for c in await runtime.kcore_runtime_list_containers()}
    assert set(listed) == {ok, bad} and listed[ok]["sandbox_id"] == sb and listed[ok]["name"] == "ok"


async def test_env_workdir_and_expansion(runtime: ProcessRuntime) -> None:
    sb = await runtime.kcore_runtime_run_sandbox(pod=make_pod(), context=None)
    c = Container.from_dict({
        "name": "c", "image": "x", "workingDir": "data/here",
        "command": [sys.executable, "-c", "import os,sys; print(os.getcwd(), os.environ['GREETING'], sys.argv[1])"],
        "args": ["$(GREETING)-$$(GREETING)"],
    })
    cid = await runtime.kcore_runtime_start_container(sb, c, {"env": {"GREETING": "hello"}})
    await _exited(runtime, cid)
    out = b"".join([x async for x in runtime.kcore_runtime_container_logs(cid, None)]).decode()
    cwd, greeting, arg = out.split()
    assert Path(cwd) == runtime.data_dir / "pods" / sb / "data/here"
    assert greeting == "hello" and arg == "hello-$(GREETING)"


async def test_start_errors(runtime: ProcessRuntime) -> None:
    sb = await runtime.kcore_runtime_run_sandbox(pod=make_pod(), context=None)
    with pytest.raises(ContainerStartError) as err:
        await runtime.kcore_runtime_start_container(sb, Container(name="c", image="mystery:1"), None)
    assert err.value.reason == "ImageEntrypointUnknown"
    with pytest.raises(ContainerStartError) as err:
        await runtime.kcore_runtime_start_container(sb, Container(name="c", command=["no-such-binary-xyz"]), None)
    assert err.value.reason == "RunContainerError" and "not found" in err.value.message
    with pytest.raises(ContainerNotFoundError):
        await runtime.kcore_runtime_start_container("nope", Container(name="c", command=["true"]), None)
    with pytest.raises(ContainerNotFoundError):
        await runtime.kcore_runtime_container_status("nope")


async def test_image_table_from_config(runtime: ProcessRuntime) -> None:
    from kcore.config import KcoreConfig
    cfg = KcoreConfig.model_validate({"kubelet": {"images": {"busy": {"command": [sys.executable, "-c"], "args": ["print(42)"]}}}})
    host = plugin_host_for(named={"kcore.runtime:process": runtime}, config=cfg)
    sb = await host.acall_driver("kcore.runtime", "process", "kcore_runtime_run_sandbox", pod=make_pod(), context=None)
    cid = await host.acall_driver("kcore.runtime", "process", "kcore_runtime_start_container",
                                  sandbox_id=sb, container=Container(name="c", image="busy:latest"), context=None)
    await _exited(runtime, cid)
    gen = host.call_driver("kcore.runtime", "process", "kcore_runtime_container_logs", container_id=cid, options=None)
    assert b"".join([x async for x in gen]) == b"42\n"


async def test_external_kill_is_seen(runtime: ProcessRuntime) -> None:
    sb = await runtime.kcore_runtime_run_sandbox(pod=make_pod(), context=None)
    cid = await runtime.kcore_runtime_start_container(sb, py_container("c", "import time; time.sleep(60)"), None)
    st = await runtime.kcore_runtime_container_status(cid)
    assert st["state"] == "running" and psutil.pid_exists(st["pid"])
    os.kill(st["pid"], signal.SIGKILL)
    st = await _exited(runtime, cid)
    assert (st["exit_code"], st["reason"]) == (137, "Error")


# os.write, not print: a handler printing while print() runs fails with "reentrant call".
TRAP_TERM = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (os.write(1, b'bye\\n'), sys.exit(0)))
os.write(1, b'ready\\n')
time.sleep(60)
"""

IGNORE_TERM = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print('ready', flush=True)
time.sleep(60)
"""

# main forks a child (default SIGTERM) which forks a grandchild ignoring SIGTERM.
FORK_TREE = """
import os, signal, sys, time
if os.fork() == 0:
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print('grandchild', os.getpid(), flush=True)
        time.sleep(60); os._exit(0)
    print('child', os.getpid(), flush=True)
    time.sleep(60); os._exit(0)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
time.sleep(60)
"""


async def _log_text(rt: ProcessRuntime, cid: str) -> str:
    return b"".join([x async for x in rt.kcore_runtime_container_logs(cid, None)]).decode()


async def _wait_log(rt: ProcessRuntime, cid: str, needle: str, count: int = 1) -> str:
    async def check() -> str | None:
        text = await _log_text(rt, cid)
        return text if text.count(needle) >= count else None
    return await wait_until(check)


async def test_stop_graceful(runtime: ProcessRuntime) -> None:
    sb = await runtime.kcore_runtime_run_sandbox(pod=make_pod(), context=None)
    cid = await runtime.kcore_runtime_start_container(sb, py_container("c", TRAP_TERM), None)
    await _wait_log(runtime, cid, "ready")
    await runtime.kcore_runtime_stop_container(cid, 10)
    st = await runtime.kcore_runtime_container_status(cid)
    assert (st["state"], st["exit_code"], st["reason"]) == ("exited", 0, "Completed"), await _log_text(runtime, cid)
    assert "bye" in await _log_text(runtime, cid)


async def test_stop_kills_after_grace(runtime: ProcessRuntime) -> None:
    sb = await runtime.kcore_runtime_run_sandbox(pod=make_pod(), context=None)
    cid = await runtime.kcore_runtime_start_container(sb, py_container("c", IGNORE_TERM), None)
    await _wait_log(runtime, cid, "ready")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await runtime.kcore_runtime_stop_container(cid, 1)
    assert 0.9 <= loop.time() - t0 < 5
    st = await runtime.kcore_runtime_container_status(cid)
    assert (st["state"], st["exit_code"]) == ("exited", 137)


async def test_stop_reaches_forked_tree(runtime: ProcessRuntime) -> None:
    sb = await runtime.kcore_runtime_run_sandbox(pod=make_pod(), context=None)
    cid = await runtime.kcore_runtime_start_container(sb, py_container("c", FORK_TREE), None)
    text = await _wait_log(runtime, cid, "child", 2)
    pids = [int(line.split()[1]) for line in text.splitlines()]
    main = (await runtime.kcore_runtime_container_status(cid))["pid"]
    assert len(session_alive(main)) == 3
    await runtime.kcore_runtime_stop_container(cid, 5)
    st = await runtime.kcore_runtime_container_status(cid)
    assert (st["exit_code"]) == 0  # main trapped SIGTERM
    await wait_until(lambda: all(pid_gone(p) for p in [main, *pids]))
    assert session_alive(main) == []


async def test_main_exit_ends_the_session(runtime: ProcessRuntime) -> None:
    """Like a PID namespace: when the main process exits, what it left behind dies."""
    sb = await runtime.kcore_runtime_run_sandbox(pod=make_pod(), context=None)
    code = "import os, time\nif os.fork() == 0:\n    print(os.getpid(), flush=True); time.sleep(60)\nelse:\n    time.sleep(0.3)"
    cid = await runtime.kcore_runtime_start_container(sb, py_container("c", code), None)
    st = await _exited(runtime, cid)
    assert st["exit_code"] == 0
    child = int((await _log_text(runtime, cid)).split()[0])
    await wait_until(lambda: pid_gone(child))


async def test_sandbox_stop_and_remove(runtime: ProcessRuntime) -> None:
    sb = await runtime.kcore_runtime_run_sandbox(pod=make_pod(terminationGracePeriodSeconds=2), context=None)
    assert await runtime.kcore_runtime_run_sandbox(pod=make_pod(), context=None) != sb
    ids = [await runtime.kcore_runtime_start_container(sb, py_container(f"c{i}", IGNORE_TERM), None) for i in range(2)]
    for cid in ids:
        await _wait_log(runtime, cid, "ready")
    await runtime.kcore_runtime_stop_sandbox(sb)
    assert [(await runtime.kcore_runtime_container_status(c))["exit_code"] for c in ids] == [137, 137]
    pod_dir = runtime.data_dir / "pods" / sb
    assert (pod_dir / "c0" / "0.log").exists()
    await runtime.kcore_runtime_remove_sandbox(sb)
    assert not pod_dir.exists()
    assert all(c["sandbox_id"] != sb for c in await runtime.kcore_runtime_list_containers())


async def test_restart_count_names_log_files(runtime: ProcessRuntime) -> None:
    sb = await runtime.kcore_runtime_run_sandbox(pod=make_pod(), context=None)
    first = await runtime.kcore_runtime_start_container(sb, py_container("c", "print('one')"), None)
    await _exited(runtime, first)
    second = await runtime.kcore_runtime_start_container(sb, py_container("c", "print('two')"), None)
    await _exited(runtime, second)
    st = await runtime.kcore_runtime_container_status(second)
    assert st["restart_count"] == 1 and st["log_path"].endswith("/c/1.log")
    prev = b"".join([x async for x in runtime.kcore_runtime_container_logs(second, {"previous": True})])
    assert prev == b"one\n"
    with pytest.raises(ContainerNotFoundError):
        [x async for x in runtime.kcore_runtime_container_logs(first, {"previous": True})]


async def test_recovery_by_a_new_runtime_instance(runtime: ProcessRuntime, tmp_path: Path) -> None:
    """A restarted kubelet adopts running containers (logs keep flowing) and sees exits."""
    sb = await runtime.kcore_runtime_run_sandbox(pod=make_pod(), context=None)
    code = ("import os, sys, time\nprint('before', flush=True)\n"
            "while not os.path.exists('go'): time.sleep(0.02)\nprint('after', flush=True)\nsys.exit(4)")
    cid = await runtime.kcore_runtime_start_container(sb, py_container("c", code), None)
    done = await runtime.kcore_runtime_start_container(sb, py_container("d", "print('x')"), None)
    await _exited(runtime, done)
    await _wait_log(runtime, cid, "before")
    pid = (await runtime.kcore_runtime_container_status(cid))["pid"]
    await runtime.close()  # the kubelet goes away; the container stays

    fresh = ProcessRuntime(data_dir=runtime.data_dir)
    listed = {c["id"]: c for c in await fresh.kcore_runtime_list_containers()}
    assert listed[cid]["state"] == "running" and listed[cid]["pid"] == pid
    assert (listed[done]["state"], listed[done]["exit_code"]) == ("exited", 0)
    workdir = Path((fresh._containers[cid]).cwd)
    (workdir / "go").touch()
    st = await _exited(fresh, cid)
    assert st["reason"] == "ContainerStatusUnknown"  # not our child: the code is lost
    assert await _log_text(fresh, cid) == "before\nafter\n"
    await fresh.close()


async def test_recovery_guards_against_pid_reuse(runtime: ProcessRuntime) -> None:
    sb = await runtime.kcore_runtime_run_sandbox(pod=make_pod(), context=None)
    cid = await runtime.kcore_runtime_start_container(sb, py_container("c", "import time; time.sleep(60)"), None)
    await runtime.close()
    state_file = runtime.data_dir / "pods" / sb / ".runtime" / f"{cid}.json"
    state = json.loads(state_file.read_text())
    real_pid = state["pid"]
    state["create_time"] -= 1000  # as if the pid now belonged to another process
    state_file.write_text(json.dumps(state))
    fresh = ProcessRuntime(data_dir=runtime.data_dir)
    st = await fresh.kcore_runtime_container_status(cid)
    assert st["state"] == "exited"
    assert psutil.pid_exists(real_pid)  # and the unrelated process was left alone
    os.killpg(real_pid, signal.SIGKILL)
    await wait_until(lambda: pid_gone(real_pid))
