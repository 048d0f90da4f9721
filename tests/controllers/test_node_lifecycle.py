"""The node lifecycle controller against a real API server, with kubelets played by
the test (Lease renewals and Ready conditions), short grace periods, and the pure
taint/toleration decisions on plain dicts."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from controllers.support_fixtures import Cluster, Watch, pod, running, running_cluster

from kcore.client.rest import ApiClient
from kcore.config import NodeLifecycleConfig
from kcore.controllers.node_lifecycle import (
    FULL_DISRUPTION,
    NORMAL,
    PARTIAL_DISRUPTION,
    NodeLifecycleController,
    TokenBucket,
    desired_taints,
    pod_not_ready_conditions,
    unknown_conditions,
    zone_eviction_rate,
    zone_state,
)
from kcore.controllers.taints import (
    TAINT_NOT_READY,
    TAINT_UNREACHABLE,
    eviction_deadline,
    format_micro_time,
    parse_time,
    tolerates,
    untolerated,
)

Obj = dict[str, Any]
GRACE = 1.0
PERIOD = 0.1
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


# ---- pure decisions -------------------------------------------------------------------


def test_toleration_matching() -> None:
    taint = {"key": "k", "value": "v", "effect": "NoExecute"}
    assert tolerates({"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute"}, taint)
    assert tolerates({"key": "k", "value": "v"}, taint)  # Equal by default, any effect
    assert tolerates({"key": "k", "operator": "Exists"}, taint)
    assert tolerates({"operator": "Exists"}, taint)  # empty key + Exists tolerates everything
    assert not tolerates({"key": "k", "value": "w"}, taint)
    assert not tolerates({"key": "k", "operator": "Exists", "effect": "NoSchedule"}, taint)
    assert not tolerates({"key": "other", "operator": "Exists"}, taint)
    assert untolerated([{"key": "k", "operator": "Exists"}], [taint, {"key": "x", "effect": "NoExecute"}]) == \
        [{"key": "x", "effect": "NoExecute"}]


def test_eviction_deadline() -> None:
    added = {"key": TAINT_UNREACHABLE, "effect": "NoExecute", "timeAdded": format_micro_time(T0)}

    def started(taint: Obj) -> dt.datetime:
        return parse_time(taint["timeAdded"]) or T0

    never = dt.datetime.min.replace(tzinfo=dt.UTC)
    assert eviction_deadline([], [added], started) == never  # no toleration: at once
    assert eviction_deadline([{"key": TAINT_UNREACHABLE, "operator": "Exists"}], [added], started) is None
    assert eviction_deadline([{"key": TAINT_UNREACHABLE, "operator": "Exists", "tolerationSeconds": 2}],
                             [added], started) == T0 + dt.timedelta(seconds=2)
    assert eviction_deadline([{"key": TAINT_UNREACHABLE, "operator": "Exists", "tolerationSeconds": -5}],
                             [added], started) == T0
    # The earliest deadline over all taints wins; any untolerated taint evicts at once.
    other = {"key": "b", "effect": "NoExecute", "timeAdded": format_micro_time(T0 + dt.timedelta(seconds=1))}
    both = [{"key": TAINT_UNREACHABLE, "operator": "Exists", "tolerationSeconds": 10},
            {"key": "b", "operator": "Exists", "tolerationSeconds": 3}]
    assert eviction_deadline(both, [added, other], started) == T0 + dt.timedelta(seconds=4)
    assert eviction_deadline(both[:1], [added, other], started) == never
    assert eviction_deadline([], [], started) is None


def test_zone_state() -> None:
    assert zone_state(["True", "True"]) == NORMAL
    assert zone_state(["Unknown", "Unknown"]) == FULL_DISRUPTION
    assert zone_state(["True", "Unknown", "False"]) == NORMAL  # only 2 unhealthy
    assert zone_state(["True", "Unknown", "False", "Unknown"]) == PARTIAL_DISRUPTION
    assert zone_state([]) == NORMAL


def test_zone_eviction_rate() -> None:
    assert zone_eviction_rate(NORMAL, 3, 0.1, 0.01, 50) == 0.1
    assert zone_eviction_rate(FULL_DISRUPTION, 3, 0.1, 0.01, 50) == 0.1  # other zones are fine
    assert zone_eviction_rate(PARTIAL_DISRUPTION, 100, 0.1, 0.01, 50) == 0.01
    assert zone_eviction_rate(PARTIAL_DISRUPTION, 10, 0.1, 0.01, 50) == 0.0  # small zone: stop


def test_desired_taints() -> None:
    now = "2024-01-01T00:00:00.000000Z"
    custom = {"key": "example.com/x", "effect": "NoSchedule"}
    new, pending = desired_taints([custom], "Unknown", allow_no_execute=True, now=now)
    assert new == [custom, {"key": TAINT_UNREACHABLE, "effect": "NoSchedule", "timeAdded": now}]
    assert pending  # the NoExecute taint waits for the rate limiter
    # not-ready NoExecute swaps to unreachable at once
    old = [{"key": TAINT_NOT_READY, "effect": "NoExecute", "timeAdded": now},
           {"key": TAINT_NOT_READY, "effect": "NoSchedule", "timeAdded": now}]
    new, pending = desired_taints(old, "Unknown", allow_no_execute=True, now=now)
    assert {(t["key"], t["effect"]) for t in new} == {(TAINT_UNREACHABLE, "NoSchedule"),
                                                      (TAINT_UNREACHABLE, "NoExecute")}
    assert not pending
    # full disruption: no NoExecute taints at all
    new, pending = desired_taints(new, "Unknown", allow_no_execute=False, now=now)
    assert [(t["key"], t["effect"]) for t in new] == [(TAINT_UNREACHABLE, "NoSchedule")]
    assert not pending
    # Ready again: everything of ours goes, the custom taint stays
    assert desired_taints(old + [custom], "True", allow_no_execute=True, now=now) == ([custom], False)


def test_unknown_conditions_keep_heartbeat_and_add_missing_ready() -> None:
    node = {"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "hb"},
                                      {"type": "NetworkUnavailable", "status": "False"}]}}
    conds = unknown_conditions(node, "now")
    assert conds[0] == {"type": "Ready", "status": "Unknown", "lastHeartbeatTime": "hb",
                        "reason": "NodeStatusUnknown", "message": "Kubelet stopped posting node status.",
                        "lastTransitionTime": "now"}
    assert conds[1] == {"type": "NetworkUnavailable", "status": "False"}
    assert node["status"]["conditions"][0]["status"] == "True"  # the input is untouched
    never = unknown_conditions({"metadata": {}, "status": {}}, "now")
    assert never[0]["reason"] == "NodeStatusNeverUpdated"


def test_pod_not_ready_conditions() -> None:
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"},
                                       {"type": "PodScheduled", "status": "True"}]}}
    assert pod_not_ready_conditions(ready, "now") == [
        {"type": "Ready", "status": "False", "reason": "NodeNotReady", "message": "", "lastTransitionTime": "now"},
        {"type": "PodScheduled", "status": "True"}]
    assert ready["status"]["conditions"][0]["status"] == "True"
    assert pod_not_ready_conditions({"status": {}}, "now") is None


def test_token_bucket() -> None:
    now = [0.0]
    bucket = TokenBucket(2.0, 1, clock=lambda: now[0])
    assert bucket.try_take()
    assert not bucket.try_take()
    now[0] = 0.4
    assert not bucket.try_take()
    now[0] = 0.5
    assert bucket.try_take()
    bucket.set_rate(0.0)
    now[0] = 100.0
    assert not bucket.try_take()


# ---- against the API server -------------------------------------------------------------


class Kubelets:
    """Plays the kubelets of some nodes: renews their Leases until told to stop."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.alive: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def add_node(self, name: str, zone: str | None = None) -> None:
        now = dt.datetime.now(dt.UTC)
        meta: Obj = {"name": name}
        if zone:
            meta["labels"] = {"topology.kubernetes.io/zone": zone}
        node = await self.client.resource("v1", "Node").create({"apiVersion": "v1", "kind": "Node",
                                                                "metadata": meta, "spec": {}})
        await self.set_ready(node["metadata"]["name"], "True")
        await self.client.resource("coordination.k8s.io/v1", "Lease").create(
            {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": name, "namespace": "kube-node-lease"},
             "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                      "renewTime": format_micro_time(now)}})
        self.alive.add(name)

    async def set_ready(self, name: str, status: str) -> None:
        nodes = self.client.resource("v1", "Node")
        node = await nodes.get(name)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        node.setdefault("status", {})["conditions"] = [
            {"type": "Ready", "status": status, "reason": "KubeletReady" if status == "True" else "KubeletNotReady",
             "message": "kubelet says so", "lastHeartbeatTime": stamp, "lastTransitionTime": stamp}]
        await nodes.update_status(node)

    async def renew(self, name: str, now: dt.datetime | None = None) -> None:
        await self.client.resource("coordination.k8s.io/v1", "Lease").patch(
            name, {"spec": {"renewTime": format_micro_time(now or dt.datetime.now(dt.UTC))}},
            namespace="kube-node-lease")

    async def _loop(self) -> None:
        while True:
            # One timestamp per round, so nodes that stop together expire together
            # even when the machine is slow.
            now = dt.datetime.now(dt.UTC)
            for name in list(self.alive):
                await self.renew(name, now)
            await asyncio.sleep(PERIOD)  # a kubelet's renew interval, not a wait for a result

    async def __aenter__(self) -> Kubelets:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@pytest.fixture
async def zero_default_cluster() -> AsyncIterator[Cluster]:
    """A cluster whose admission gives pods not-ready/unreachable tolerations of 0 s,
    so a pod that says nothing about those taints is evicted at once."""
    async with running_cluster(default_toleration_seconds=0) as c:
        yield c


def _controller(c: Cluster, rate: float = 100.0) -> NodeLifecycleController:
    config = NodeLifecycleConfig(grace_period_seconds=GRACE, eviction_rate_per_second=rate)
    return NodeLifecycleController(c.client, c.factory, config=config, monitor_period_seconds=PERIOD,
                                   taint_pass_seconds=0.02)


def _taint_keys(node: Obj | None) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in ((node or {}).get("spec") or {}).get("taints") or []}


def _terminating(watch: Watch, name: str) -> bool:
    obj = watch.get(name, "default")
    return obj is None or bool(obj["metadata"].get("deletionTimestamp"))


def _ready(node: Obj | None) -> Obj:
    for cond in ((node or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready":
            return cond
    return {}


UNREACHABLE_FOR = [{"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}]
UNREACHABLE_FOREVER = [{"key": TAINT_UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]


async def test_a_silent_node_goes_unknown_is_tainted_and_its_pods_evicted(zero_default_cluster: Cluster) -> None:
    c = zero_default_cluster
    pods = c.client.resource("v1", "Pod")
    async with Kubelets(c.client) as kubelets, Watch(c.client, "v1", "Node") as nodes, \
            Watch(c.client, "v1", "Pod") as pod_watch, running(_controller(c)) as ctl:
        await kubelets.add_node("n1")
        await kubelets.add_node("n2")  # stays healthy: this is not a full disruption
        await pods.create(pod("defaults", node="n1"))
        await pods.create(pod("patient", node="n1", tolerations=UNREACHABLE_FOR))
        await pods.create(pod("forever", node="n1", tolerations=UNREACHABLE_FOREVER))
        await pods.create(pod("elsewhere", node="n2"))
        for name in ("forever", "elsewhere"):  # their kubelets said they were Ready
            running_pod = await pods.get(name)
            running_pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
            await pods.update_status(running_pod)
        await ctl.wait_passes(2)

        kubelets.alive.discard("n1")
        silent_since = dt.datetime.now(dt.UTC)
        await nodes.wait_for(lambda: _ready(nodes.get("n1")).get("status") == "Unknown", timeout=GRACE + 5)
        ready = _ready(nodes.get("n1"))
        assert ready["reason"] == "NodeStatusUnknown"
        assert ready["message"] == "Kubelet stopped posting node status."
        marked = dt.datetime.now(dt.UTC)
        assert (marked - silent_since).total_seconds() <= GRACE + 3 * PERIOD + 1.0
        await nodes.wait_for(lambda: {(TAINT_UNREACHABLE, "NoSchedule"), (TAINT_UNREACHABLE, "NoExecute")}
                             <= _taint_keys(nodes.get("n1")))

        # Nobody vouches for n1's pods any more: they leave Service endpoints.
        await pod_watch.wait_for(lambda: _ready(pod_watch.get("forever", "default")).get("status") == "False")
        assert _ready(pod_watch.get("forever", "default"))["reason"] == "NodeNotReady"
        assert _ready(pod_watch.get("elsewhere", "default"))["status"] == "True"
        await pod_watch.wait_for(lambda: _terminating(pod_watch, "defaults"))
        await pod_watch.wait_for(lambda: _terminating(pod_watch, "patient"), timeout=10)
        taint = next(t for t in nodes.get("n1")["spec"]["taints"]
                     if (t["key"], t["effect"]) == (TAINT_UNREACHABLE, "NoExecute"))
        added = parse_time(taint["timeAdded"])
        assert added is not None
        when = dict((k, t) for t, k in ctl.evictions)
        assert (when["default/defaults"] - added).total_seconds() < 1.0
        assert 2.0 <= (when["default/patient"] - added).total_seconds() < 3.0
        await ctl.wait_passes(3)
        assert not _terminating(pod_watch, "forever")
        assert not _terminating(pod_watch, "elsewhere")
        assert "default/forever" not in when

        # The kubelet comes back: lease renewed, Ready True -> the taints go.
        kubelets.alive.add("n1")
        await kubelets.set_ready("n1", "True")
        await nodes.wait_for(lambda: not _taint_keys(nodes.get("n1")))
        assert not _terminating(pod_watch, "forever")


async def test_untolerated_no_execute_taint_evicts_at_once(zero_default_cluster: Cluster) -> None:
    c = zero_default_cluster
    pods = c.client.resource("v1", "Pod")
    async with Kubelets(c.client) as kubelets, Watch(c.client, "v1", "Pod") as pod_watch, \
            running(_controller(c)) as ctl:
        await kubelets.add_node("n1")
        await pods.create(pod("plain", node="n1"))
        await pods.create(pod("tolerant", node="n1",
                              tolerations=[{"key": "example.com/maintenance", "operator": "Exists"}]))
        await ctl.wait_passes(1)
        await c.client.resource("v1", "Node").patch(
            "n1", {"spec": {"taints": [{"key": "example.com/maintenance", "effect": "NoExecute"}]}})
        await pod_watch.wait_for(lambda: _terminating(pod_watch, "plain"))
        await ctl.wait_passes(3)
        assert not _terminating(pod_watch, "tolerant")
        assert [k for _t, k in ctl.evictions] == ["default/plain"]


async def test_not_ready_node_gets_not_ready_taints_until_ready(zero_default_cluster: Cluster) -> None:
    c = zero_default_cluster
    async with Kubelets(c.client) as kubelets, Watch(c.client, "v1", "Node") as nodes, \
            running(_controller(c)):
        await kubelets.add_node("n1")
        await kubelets.add_node("n2")
        await kubelets.set_ready("n1", "False")
        await nodes.wait_for(lambda: _taint_keys(nodes.get("n1")) ==
                             {(TAINT_NOT_READY, "NoSchedule"), (TAINT_NOT_READY, "NoExecute")})
        await kubelets.set_ready("n1", "True")
        await nodes.wait_for(lambda: not _taint_keys(nodes.get("n1")))


async def test_full_disruption_evicts_nobody(zero_default_cluster: Cluster) -> None:
    c = zero_default_cluster
    pods = c.client.resource("v1", "Pod")
    async with Kubelets(c.client) as kubelets, Watch(c.client, "v1", "Node") as nodes, \
            Watch(c.client, "v1", "Pod") as pod_watch, running(_controller(c)) as ctl:
        for name in ("n1", "n2"):
            await kubelets.add_node(name)
            await pods.create(pod(f"on-{name}", node=name))
        await ctl.wait_passes(2)
        kubelets.alive.clear()  # the whole cluster goes quiet at once
        await nodes.wait_for(lambda: all(_ready(nodes.get(n)).get("status") == "Unknown" for n in ("n1", "n2")),
                             timeout=GRACE + 5)
        await nodes.wait_for(lambda: all(_taint_keys(nodes.get(n)) == {(TAINT_UNREACHABLE, "NoSchedule")}
                                         for n in ("n1", "n2")))
        assert ctl.disrupted
        await ctl.wait_passes(5)
        assert all(_taint_keys(nodes.get(n)) == {(TAINT_UNREACHABLE, "NoSchedule")} for n in ("n1", "n2"))
        assert not _terminating(pod_watch, "on-n1") and not _terminating(pod_watch, "on-n2")
        assert ctl.evictions == []

        # One node comes back: the other one gets a fresh grace period, then is evicted.
        kubelets.alive.add("n1")
        await kubelets.set_ready("n1", "True")
        await nodes.wait_for(lambda: not _taint_keys(nodes.get("n1")))
        assert not ctl.disrupted
        await pod_watch.wait_for(lambda: _terminating(pod_watch, "on-n2"), timeout=GRACE + 5)
        assert not _terminating(pod_watch, "on-n1")


async def test_evictions_are_rate_limited_per_node(zero_default_cluster: Cluster) -> None:
    c = zero_default_cluster
    rate = 2.0  # nodes per second: one NoExecute taint every 0.5 s
    pods = c.client.resource("v1", "Pod")
    async with Kubelets(c.client) as kubelets, Watch(c.client, "v1", "Pod") as pod_watch, \
            running(_controller(c, rate=rate)) as ctl:
        for name in ("n1", "n2", "n3", "n4"):
            await kubelets.add_node(name)
        for name in ("n1", "n2", "n3"):
            await pods.create(pod(f"on-{name}", node=name))
        await ctl.wait_passes(2)
        for name in ("n1", "n2"):
            kubelets.alive.discard(name)  # two of four: a normal zone, evicting at the set rate
        await pod_watch.wait_for(lambda: _terminating(pod_watch, "on-n1") and _terminating(pod_watch, "on-n2"),
                                 timeout=GRACE + 10)
        times = sorted(t for t, _k in ctl.evictions)
        assert len(times) == 2
        assert (times[1] - times[0]).total_seconds() >= 1 / rate - 0.05
        assert not _terminating(pod_watch, "on-n3")
