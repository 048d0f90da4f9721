"""Pure decisions of the ReplicaSet controller and pod helpers: no server involved."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kcore.controllers import podutil
from kcore.controllers.replicaset import (
    REPLICA_SET,
    REPLICATION_CONTROLLER,
    Expectations,
    calculate_status,
    replica_diff,
    set_condition,
    slow_start_batches,
)

NOW = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)


def pod(name: str, *, node: str | None = None, phase: str = "Pending", ready: bool | None = None,
        restarts: int = 0, created: str = "2024-05-01T10:00:00Z", ready_since: str = "2024-05-01T11:00:00Z",
        labels: dict[str, str] | None = None, cost: int | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "creationTimestamp": created,
                            "labels": labels or {"app": "web"}}
    if cost is not None:
        meta["annotations"] = {podutil.POD_DELETION_COST_ANNOTATION: str(cost)}
    status: dict[str, Any] = {"phase": phase,
                              "containerStatuses": [{"name": "main", "restartCount": restarts}]}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                                 "lastTransitionTime": ready_since}]
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "x"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": meta, "spec": spec, "status": status}


def names(pods: list[dict[str, Any]]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


class TestDeletionRanking:
    def test_unscheduled_before_scheduled(self) -> None:
        pods = [pod("bound", node="n1", phase="Running", ready=True), pod("unbound")]
        assert names(podutil.pods_to_delete(pods, 1)) == ["unbound"]

    def test_pending_before_unknown_before_running(self) -> None:
        pods = [pod("running", node="n", phase="Running"), pod("unknown", node="n", phase="Unknown"),
                pod("pending", node="n", phase="Pending")]
        assert names(podutil.pods_to_delete(pods, 3)) == ["pending", "unknown", "running"]

    def test_not_ready_before_ready(self) -> None:
        pods = [pod("ready", node="n", phase="Running", ready=True),
                pod("unready", node="n", phase="Running", ready=False)]
        assert names(podutil.pods_to_delete(pods, 1)) == ["unready"]

    def test_lower_deletion_cost_first(self) -> None:
        pods = [pod("precious", node="n", phase="Running", ready=True, cost=100),
                pod("cheap", node="n", phase="Running", ready=True, cost=-5)]
        assert names(podutil.pods_to_delete(pods, 1)) == ["cheap"]

    def test_ready_for_less_time_first(self) -> None:
        pods = [pod("long", node="n", phase="Running", ready=True, ready_since="2024-05-01T09:00:00Z"),
                pod("short", node="n", phase="Running", ready=True, ready_since="2024-05-01T11:59:00Z")]
        assert names(podutil.pods_to_delete(pods, 1)) == ["short"]

    def test_more_restarts_then_newer_first(self) -> None:
        pods = [pod("calm", node="n", phase="Running", ready=True, restarts=0),
                pod("crashy", node="n", phase="Running", ready=True, restarts=7),
                pod("old", node="n", phase="Running", ready=True, created="2024-05-01T08:00:00Z"),
                pod("new", node="n", phase="Running", ready=True, created="2024-05-01T10:30:00Z")]
        assert names(podutil.pods_to_delete(pods, 4)) == ["crashy", "new", "calm", "old"]

    def test_count_zero_or_negative_deletes_nothing(self) -> None:
        assert podutil.pods_to_delete([pod("a")], 0) == []
        assert podutil.pods_to_delete([pod("a")], -2) == []

    def test_ranking_does_not_mutate(self) -> None:
        pods = [pod("a", node="n"), pod("b")]
        before = [dict(p) for p in pods]
        podutil.pods_to_delete(pods, 1)
        assert pods == before


class TestPodState:
    def test_active(self) -> None:
        assert podutil.is_pod_active(pod("a"))
        assert not podutil.is_pod_active(pod("a", phase="Succeeded"))
        assert not podutil.is_pod_active(pod("a", phase="Failed"))
        terminating = pod("a")
        terminating["metadata"]["deletionTimestamp"] = "2024-05-01T12:00:00Z"
        assert not podutil.is_pod_active(terminating)

    def test_available_needs_min_ready_seconds(self) -> None:
        p = pod("a", phase="Running", ready=True, ready_since="2024-05-01T11:59:55Z")
        assert podutil.is_pod_available(p, 0, NOW)
        assert podutil.is_pod_available(p, 5, NOW)
        assert not podutil.is_pod_available(p, 6, NOW)
        assert podutil.seconds_until_available(p, 6, NOW) == pytest.approx(1.0)
        assert not podutil.is_pod_available(pod("b", ready=False), 0, NOW)


class TestTemplateHash:
    TEMPLATE = {"metadata": {"labels": {"app": "web", "tier": "fe"}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.25"}]}}

    def test_stable_and_order_independent(self) -> None:
        reordered = {"spec": {"containers": [{"image": "nginx:1.25", "name": "main"}]},
                     "metadata": {"labels": {"tier": "fe", "app": "web"}}}
        assert podutil.template_hash(self.TEMPLATE) == podutil.template_hash(reordered)
        # Pinned: the hash names ReplicaSets, so it must not change between releases.
        assert podutil.template_hash(self.TEMPLATE) == PINNED_HASH

    def test_safe_alphabet(self) -> None:
        value = podutil.template_hash(self.TEMPLATE)
        assert value and set(value) <= set("bcdfghjklmnpqrstvwxz2456789")

    def test_changes_with_template_and_collision_count(self) -> None:
        other = {**self.TEMPLATE, "spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]}}
        base = podutil.template_hash(self.TEMPLATE)
        assert podutil.template_hash(other) != base
        assert podutil.template_hash(self.TEMPLATE, 1) != base
        assert podutil.template_hash(self.TEMPLATE, 0) == base

    def test_hash_label_is_ignored(self) -> None:
        labelled = {**self.TEMPLATE, "metadata": {"labels": {**self.TEMPLATE["metadata"]["labels"],
                                                             podutil.POD_TEMPLATE_HASH_LABEL: "abc"}}}
        assert podutil.template_hash(labelled) == podutil.template_hash(self.TEMPLATE)
        assert podutil.templates_equal_ignoring_hash(labelled, self.TEMPLATE)


PINNED_HASH = "6cb67dff77"


class TestOwnership:
    OWNER = {"metadata": {"name": "web", "namespace": "default", "uid": "u-1", "resourceVersion": "7"}}

    def test_pod_from_template(self) -> None:
        ref = podutil.owner_reference(self.OWNER, "apps/v1", "ReplicaSet")
        template = {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
                    "spec": {"containers": [{"name": "main", "image": "x"}]}}
        p = podutil.pod_from_template(template, self.OWNER, ref)
        assert p["metadata"]["generateName"] == "web-"
        assert p["metadata"]["labels"] == {"app": "web"}
        assert p["metadata"]["annotations"] == {"a": "b"}
        assert p["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                                                     "uid": "u-1", "controller": True,
                                                     "blockOwnerDeletion": True}]
        p["spec"]["containers"][0]["image"] = "changed"
        assert template["spec"]["containers"][0]["image"] == "x"

    def test_adopt_and_release_patches_are_conditional(self) -> None:
        orphan = {"metadata": {"name": "p", "resourceVersion": "42",
                               "ownerReferences": [{"apiVersion": "v1", "kind": "Thing", "name": "t", "uid": "t"}]}}
        ref = podutil.owner_reference(self.OWNER, "apps/v1", "ReplicaSet")
        patch = podutil.adopt_patch(orphan, ref)
        assert patch["metadata"]["resourceVersion"] == "42"
        assert [r["uid"] for r in patch["metadata"]["ownerReferences"]] == ["t", "u-1"]
        owned = {"metadata": {"name": "p", "resourceVersion": "43", "ownerReferences": [ref]}}
        assert podutil.release_patch(owned, "u-1") == {"metadata": {"ownerReferences": None, "resourceVersion": "43"}}


class TestReplicaSetDecisions:
    def test_slow_start(self) -> None:
        assert slow_start_batches(1) == [1]
        assert slow_start_batches(10) == [1, 2, 4, 3]
        assert slow_start_batches(0) == []

    def test_replica_diff_is_capped_by_burst(self) -> None:
        assert replica_diff(2, 5) == 3
        assert replica_diff(5, 2) == -3
        assert replica_diff(0, 1000, burst=500) == 500
        assert replica_diff(1000, 0, burst=500) == -500

    def test_status_counts(self) -> None:
        rs = {"metadata": {"generation": 4}}
        pods = [pod("a", phase="Running", ready=True, ready_since="2024-05-01T11:00:00Z"),
                pod("b", phase="Running", ready=True, ready_since="2024-05-01T11:59:59Z"),
                pod("c", labels={"app": "web", "extra": "no"}),
                pod("d", labels={"other": "x"})]
        status = calculate_status(rs, pods, {"app": "web"}, 10, NOW)
        assert status == {"replicas": 4, "fullyLabeledReplicas": 3, "readyReplicas": 2,
                          "availableReplicas": 1, "observedGeneration": 4}

    def test_set_condition_keeps_transition_time(self) -> None:
        first = set_condition([], {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                   "message": "x"}, "T1")
        assert first[0]["lastTransitionTime"] == "T1"
        again = set_condition(first, {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
                                      "message": "y"}, "T2")
        assert again[0]["message"] == "y" and again[0]["lastTransitionTime"] == "T1"

    def test_selectors(self) -> None:
        rs = {"spec": {"selector": {"matchLabels": {"app": "web"},
                                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}]}}}
        sel = REPLICA_SET.selector(rs)
        assert sel is not None and sel.matches({"app": "web", "tier": "fe"}) and not sel.matches({"app": "web"})
        assert REPLICA_SET.selector({"spec": {}}) is None
        assert REPLICA_SET.selector({"spec": {"selector": {}}}) is None
        rc = {"spec": {"selector": {"app": "web"}}}
        sel = REPLICATION_CONTROLLER.selector(rc)
        assert sel is not None and sel.matches({"app": "web", "x": "y"})
        defaulted = REPLICATION_CONTROLLER.selector({"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}})
        assert defaulted is not None and defaulted.matches({"a": "b"})


class TestExpectations:
    def test_creations_and_deletions(self) -> None:
        clock = [0.0]
        exp = Expectations(timeout=60, clock=lambda: clock[0])
        assert exp.satisfied("ns/rs")
        exp.expect_creations("ns/rs", 2)
        assert not exp.satisfied("ns/rs")
        exp.creation_observed("ns/rs")
        assert not exp.satisfied("ns/rs")
        exp.creation_observed("ns/rs")
        assert exp.satisfied("ns/rs")
        exp.expect_deletions("ns/rs", ["ns/a", "ns/b"])
        exp.deletion_observed("ns/rs", "ns/a")
        exp.deletion_observed("ns/rs", "ns/a")  # the same deletion seen twice counts once
        assert not exp.satisfied("ns/rs")
        exp.deletion_observed("ns/rs", "ns/b")
        assert exp.satisfied("ns/rs")

    def test_expire(self) -> None:
        clock = [0.0]
        exp = Expectations(timeout=60, clock=lambda: clock[0])
        exp.expect_creations("k", 5)
        clock[0] = 61
        assert exp.satisfied("k")
