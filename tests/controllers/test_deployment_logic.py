"""Pure decisions of the Deployment controller: surge/unavailable math, rolling steps,
proportional scaling, history pruning and status conditions. No server involved."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kcore.controllers.deployment import (
    MAX_REPLICAS_ANNOTATION,
    REVISION_ANNOTATION,
    calculate_status,
    find_new_rs,
    max_surge,
    max_unavailable,
    new_rs_target,
    old_rs_scale_down,
    proportional_sizes,
    resolve_fenceposts,
    resolve_int_or_percent,
    rs_to_prune,
    seconds_until_deadline,
)

NOW = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)


def deployment(replicas: int, surge: Any = "25%", unavailable: Any = "25%", *, strategy: str = "RollingUpdate",
               generation: int = 1, status: dict[str, Any] | None = None, deadline: int | None = 600) -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": replicas, "strategy": {"type": strategy},
                            "template": {"metadata": {"labels": {"app": "web"}},
                                         "spec": {"containers": [{"name": "c", "image": "v2"}]}}}
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    if deadline is not None:
        spec["progressDeadlineSeconds"] = deadline
    return {"kind": "Deployment", "metadata": {"name": "web", "generation": generation}, "spec": spec,
            "status": status or {}}


def rs(name: str, replicas: int, *, available: int | None = None, created: str = "2024-05-01T10:00:00Z",
       image: str = "v1", revision: int | None = None, max_replicas: int | None = None,
       status_replicas: int | None = None) -> dict[str, Any]:
    annotations: dict[str, str] = {}
    if revision is not None:
        annotations[REVISION_ANNOTATION] = str(revision)
    if max_replicas is not None:
        annotations[MAX_REPLICAS_ANNOTATION] = str(max_replicas)
    return {"kind": "ReplicaSet",
            "metadata": {"name": name, "creationTimestamp": created, "annotations": annotations, "generation": 1},
            "spec": {"replicas": replicas,
                     "template": {"metadata": {"labels": {"app": "web", "pod-template-hash": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}},
            "status": {"replicas": replicas if status_replicas is None else status_replicas,
                       "readyReplicas": replicas if available is None else available,
                       "availableReplicas": replicas if available is None else available,
                       "observedGeneration": 1}}


# Kubernetes' own table (pkg/controller/deployment/util: TestResolveFenceposts and the
# rolling-update documentation): surge rounds up, unavailable rounds down.
@pytest.mark.parametrize(("surge", "unavailable", "desired", "expected"), [
    ("25%", "25%", 10, (3, 2)),
    ("25%", "25%", 4, (1, 1)),
    ("25%", "25%", 1, (1, 0)),
    ("0%", "0%", 10, (0, 1)),          # both zero: unavailable becomes 1
    (0, 0, 3, (0, 1)),
    ("50%", "0", 3, (2, 0)),
    ("100%", "100%", 5, (5, 5)),
    (1, 0, 5, (1, 0)),
    ("10%", "10%", 5, (1, 0)),
    (2, "30%", 10, (2, 3)),
])
def test_resolve_fenceposts(surge: Any, unavailable: Any, desired: int, expected: tuple[int, int]) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == expected


def test_int_or_percent() -> None:
    assert resolve_int_or_percent("33%", 10, round_up=True) == 4
    assert resolve_int_or_percent("33%", 10, round_up=False) == 3
    assert resolve_int_or_percent(7, 10, round_up=False) == 7
    assert resolve_int_or_percent(None, 10, round_up=True) == 0


def test_max_unavailable_and_surge() -> None:
    assert max_unavailable(deployment(10)) == 2 and max_surge(deployment(10)) == 3
    assert max_unavailable(deployment(0)) == 0
    assert max_unavailable(deployment(2, 0, "100%")) == 2
    assert max_unavailable(deployment(3, strategy="Recreate")) == 0
    assert max_surge(deployment(3, strategy="Recreate")) == 0


@pytest.mark.parametrize(("desired", "surge", "current", "new_spec", "expected"), [
    (10, 3, 10, 0, 3),    # first step: up to the surge
    (10, 3, 13, 3, 3),    # all surge used: wait
    (10, 3, 11, 3, 5),    # two old pods gone: two more new
    (6, 10, 2, 2, 6),     # a huge surge: straight to desired, never beyond
    (3, 1, 3, 3, 3),      # done
    (3, 1, 5, 5, 3),      # new RS bigger than desired: back to desired
    (3, 0, 3, 0, 0),      # no surge: old must shrink first
])
def test_new_rs_target(desired: int, surge: int, current: int, new_spec: int, expected: int) -> None:
    assert new_rs_target(desired, surge, current, new_spec) == expected


class TestOldScaleDown:
    def test_keeps_min_available(self) -> None:
        # 3 desired, 1 may be unavailable, the new RS's pod not ready yet: one old may go.
        assert old_rs_scale_down(3, 1, 1, 0, [("a", 3, 3)]) == {"a": 2}

    def test_waits_for_new_pods_when_nothing_may_be_unavailable(self) -> None:
        assert old_rs_scale_down(3, 0, 1, 0, [("a", 3, 3)]) == {}
        assert old_rs_scale_down(3, 0, 1, 1, [("a", 3, 3)]) == {"a": 2}

    def test_unhealthy_replicas_go_first(self) -> None:
        assert old_rs_scale_down(3, 1, 0, 0, [("a", 3, 1)]) == {"a": 2}

    def test_oldest_first(self) -> None:
        assert old_rs_scale_down(4, 0, 4, 4, [("oldest", 2, 2), ("older", 2, 2)]) == {"oldest": 0, "older": 0}
        assert old_rs_scale_down(4, 1, 2, 2, [("oldest", 2, 2), ("older", 2, 2)]) == {"oldest": 0, "older": 1}

    def test_stale_status_is_not_trusted_beyond_spec(self) -> None:
        # Old RS already shrunk to 2 but its status still says 3 available: Kubernetes would
        # count 5 available and drop it to 0; we count 2 + 2 and take one.
        assert old_rs_scale_down(3, 0, 2, 2, [("a", 2, 3)]) == {"a": 1}

    def test_nothing_old(self) -> None:
        assert old_rs_scale_down(3, 1, 3, 3, [("a", 0, 0)]) == {}


class TestProportionalScaling:
    # Kubernetes' sync_test "proportional scaling" cases (maxSurge 0, previously 5 replicas).
    def test_five_to_ten(self) -> None:
        new = rs("v2", 2, created="2024-05-01T11:00:00Z", image="v2", max_replicas=5)
        old = [rs("v1", 3, max_replicas=5)]
        assert proportional_sizes(10, 0, old, new, 5, True) == {"v1": 6, "v2": 4}

    def test_five_to_three(self) -> None:
        new = rs("v2", 2, created="2024-05-01T11:00:00Z", image="v2", max_replicas=5)
        old = [rs("v1", 3, max_replicas=5)]
        assert proportional_sizes(3, 0, old, new, 5, True) == {"v1": 2, "v2": 1}

    def test_to_zero(self) -> None:
        new = rs("v2", 2, created="2024-05-01T11:00:00Z", image="v2", max_replicas=5)
        old = [rs("v1", 3, max_replicas=5)]
        assert proportional_sizes(0, 0, old, new, 5, True) == {"v1": 0, "v2": 0}

    def test_single_active_rs_takes_all(self) -> None:
        new = rs("v2", 3, image="v2")
        assert proportional_sizes(5, 1, [rs("v1", 0)], new, 3, True) == {"v2": 5}

    def test_saturated_new_rs_drops_old(self) -> None:
        new = rs("v2", 5, image="v2")
        assert proportional_sizes(5, 1, [rs("v1", 1)], new, 6, True) == {"v1": 0}


def test_find_new_rs_ignores_hash_and_prefers_oldest() -> None:
    d = deployment(3)
    twin_new = rs("v2b", 1, image="v2", created="2024-05-01T11:00:00Z")
    twin_old = rs("v2a", 1, image="v2", created="2024-05-01T09:00:00Z")
    found = find_new_rs(d, [rs("v1", 3), twin_new, twin_old])
    assert found is twin_old
    assert find_new_rs(d, [rs("v1", 3)]) is None


def test_prune_keeps_limit_newest_revisions() -> None:
    old = [rs("r1", 0, revision=1), rs("r3", 0, revision=3), rs("r2", 0, revision=2), rs("busy", 1, revision=4),
           rs("draining", 0, revision=5, status_replicas=1)]
    assert [r["metadata"]["name"] for r in rs_to_prune(old, 1)] == ["r1", "r2"]
    assert rs_to_prune(old, 3) == []
    assert [r["metadata"]["name"] for r in rs_to_prune(old, 0)] == ["r1", "r2", "r3"]


class TestStatus:
    def test_complete_rollout(self) -> None:
        d = deployment(3)
        new = rs("v2", 3, image="v2")
        status = calculate_status(d, {}, [rs("v1", 0), new], new, NOW)
        assert {k: status[k] for k in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas",
                                       "availableReplicas", "unavailableReplicas")} == \
            {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3,
             "availableReplicas": 3, "unavailableReplicas": 0}
        conds = {c["type"]: c for c in status["conditions"]}
        assert conds["Available"]["status"] == "True" and conds["Available"]["reason"] == "MinimumReplicasAvailable"
        assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
        assert conds["Progressing"]["message"] == 'ReplicaSet "v2" has successfully progressed.'

    def test_progress_and_unavailability(self) -> None:
        d = deployment(4, 1, 1, status={"replicas": 4, "updatedReplicas": 0, "availableReplicas": 4})
        new = rs("v2", 1, available=0, image="v2")
        status = calculate_status(d, d["status"], [rs("v1", 3, available=2), new], new, NOW)
        conds = {c["type"]: c for c in status["conditions"]}
        assert conds["Available"]["status"] == "False"
        assert conds["Progressing"]["reason"] == "ReplicaSetUpdated"
        assert status["unavailableReplicas"] == 2

    def test_deadline_exceeded(self) -> None:
        stamp = "2024-05-01T11:49:00Z"
        progressing = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": "m",
                       "lastUpdateTime": stamp, "lastTransitionTime": stamp}
        d = deployment(2, deadline=600, status={"replicas": 2, "updatedReplicas": 1, "readyReplicas": 1,
                                                          "availableReplicas": 1, "conditions": [progressing]})
        new = rs("v2", 1, available=0, image="v2")
        all_rss = [rs("v1", 1), new]
        status = calculate_status(d, d["status"], all_rss, new, NOW)
        conds = {c["type"]: c for c in status["conditions"]}
        assert conds["Progressing"]["status"] == "False"
        assert conds["Progressing"]["reason"] == "ProgressDeadlineExceeded"
        # Before the deadline: look again when it would pass.
        earlier = NOW - dt.timedelta(minutes=5)
        status = calculate_status(d, d["status"], all_rss, new, earlier)
        assert seconds_until_deadline(d, status, earlier) == pytest.approx(241.0)
