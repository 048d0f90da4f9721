"""Usage sampling over real processes, and the pressure rules as pure functions."""

from __future__ import annotations

from kubelet.helpers import make_pod, py_container, wait_until

from kcore.kubelet.resources import (
    NodeReadings,
    PressureThresholds,
    UsageSample,
    cpu_cores,
    node_capacity,
    pressure_conditions,
    read_node,
    sample_node,
    sample_session,
    session_pids,
)
from kcore.kubelet.runtime_process import ProcessRuntime


async def test_container_usage(runtime: ProcessRuntime) -> None:
    sb = await runtime.kcore_runtime_run_sandbox(pod=make_pod(), context=None)
    code = "import os\nif os.fork() == 0:\n    data = bytearray(64 * 1024 * 1024)\n    while True: pass\nelse:\n    os.wait()"
    cid = await runtime.kcore_runtime_start_container(sb, py_container("burn", code), None)
    sid = (await runtime.kcore_runtime_container_status(cid))["pid"]
    await wait_until(lambda: len(session_pids(sid)) == 2)
    first = sample_session(sid)
    await wait_until(lambda: sample_session(sid).cpu_seconds > first.cpu_seconds + 0.2)
    later = sample_session(sid)
    assert 0.2 < cpu_cores(first, later) <= 2.5
    assert later.rss_bytes > 64 * 1024 * 1024  # both processes, the child's buffer included
    await runtime.kcore_runtime_stop_container(cid, 0)
    assert sample_session(sid).rss_bytes == 0


def test_node_readings() -> None:
    cap = node_capacity(max_pods=50)
    assert cap.cpu >= 1 and cap.memory_bytes > 0
    assert cap.as_resource_list()["pods"] == "50" and cap.as_resource_list()["memory"].endswith("Ki")
    readings = read_node()
    assert readings.memory_total_bytes == cap.memory_bytes and readings.pids_in_use > 0
    assert set(pressure_conditions(readings)) == {"MemoryPressure", "DiskPressure", "PIDPressure"}
    assert sample_node().cpu_seconds > 0


def test_cpu_cores_math() -> None:
    assert cpu_cores(UsageSample(0, 1.0, 0), UsageSample(2, 2.0, 0)) == 0.5
    assert cpu_cores(UsageSample(1, 1.0, 0), UsageSample(1, 2.0, 0)) == 0.0


def test_pressure_thresholds() -> None:
    gi = 1024 ** 3
    calm = NodeReadings(4 * gi, 8 * gi, 50 * gi, 100 * gi, 100, 32768)
    assert not any(pressure_conditions(calm).values())
    hot = NodeReadings(50 * 1024 * 1024, 8 * gi, 5 * gi, 100 * gi, 32000, 32768)
    assert pressure_conditions(hot) == {"MemoryPressure": True, "DiskPressure": True, "PIDPressure": True}
    strict = PressureThresholds(memory_available_bytes=5 * gi)
    assert pressure_conditions(calm, strict)["MemoryPressure"]
