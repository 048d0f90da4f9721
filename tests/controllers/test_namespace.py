"""The namespace controller against a real API server: a deleted namespace is emptied,
then finalized, and reports what it is waiting for."""

from __future__ import annotations

import pytest
from controllers.support_fixtures import (  # noqa: F401 - lifecycle_cluster is a fixture
    Cluster,
    Watch,
    deployment,
    lifecycle_cluster,
    pod,
    running,
)

from kcore.client.rest import ApiClient, ApiStatusError
from kcore.controllers.namespace import NamespaceController, deletion_conditions

NS = "shop"


def _controller(c: Cluster) -> NamespaceController:
    return NamespaceController(c.client, c.factory, recheck_seconds=0.1)


async def _fill(client: ApiClient) -> None:
    await client.resource("v1", "Namespace").create({"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": NS}})
    for i in range(2):
        await client.resource("v1", "ConfigMap").create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}", "namespace": NS},
             "data": {"k": "v"}})
    await client.resource("v1", "Secret").create(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": NS},
         "data": {"password": "aHVudGVyMg=="}})
    await client.resource("v1", "Service").create(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": NS},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    await client.resource("v1", "Pod").create(pod("unbound", NS))
    await client.resource("apps/v1", "Deployment").create(deployment("web", NS))


async def _content(client: ApiClient) -> int:
    total = 0
    for api_version, kind in [("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"), ("v1", "Pod"),
                              ("apps/v1", "Deployment")]:
        items, _ = await client.resource(api_version, kind).list(NS)
        total += len(items)
    return total


def _condition(ns: dict | None, kind: str) -> dict | None:
    for cond in ((ns or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return cond
    return None


def test_deletion_conditions_keep_transition_times() -> None:
    first = deletion_conditions({"pods": 2}, {"example.com/x": 1}, [], "2024-01-01T00:00:00Z")
    by_type = {c["type"]: c for c in first}
    assert by_type["NamespaceContentRemaining"]["status"] == "True"
    assert "pods has 2 resource instances" in by_type["NamespaceContentRemaining"]["message"]
    assert by_type["NamespaceFinalizersRemaining"]["status"] == "True"
    assert by_type["NamespaceDeletionContentFailure"]["status"] == "False"
    later = deletion_conditions({"pods": 1}, {}, [], "2024-01-01T00:01:00Z", first)
    by_type = {c["type"]: c for c in later}
    assert by_type["NamespaceContentRemaining"]["lastTransitionTime"] == "2024-01-01T00:00:00Z"
    assert by_type["NamespaceFinalizersRemaining"]["lastTransitionTime"] == "2024-01-01T00:01:00Z"


async def test_deleting_a_namespace_deletes_its_content_then_itself(lifecycle_cluster: Cluster) -> None:
    c = lifecycle_cluster
    await _fill(c.client)
    assert await _content(c.client) == 6
    async with Watch(c.client, "v1", "Namespace") as ns_watch, running(_controller(c)):
        await c.client.resource("v1", "Namespace").delete(NS)
        await ns_watch.wait_for(lambda: ns_watch.get(NS) is None)
    assert await _content(c.client) == 0


async def test_the_namespace_waits_for_content_with_finalizers(lifecycle_cluster: Cluster) -> None:
    c = lifecycle_cluster
    await _fill(c.client)
    held = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "held", "namespace": NS, "finalizers": ["example.com/hold"]}}
    cms = c.client.resource("v1", "ConfigMap")
    await cms.create(held)
    async with Watch(c.client, "v1", "Namespace") as ns_watch, running(_controller(c)):
        await c.client.resource("v1", "Namespace").delete(NS)

        def waiting_on_finalizer() -> bool:
            cond = _condition(ns_watch.get(NS), "NamespaceFinalizersRemaining")
            return cond is not None and cond["status"] == "True" and "example.com/hold" in cond["message"]

        await ns_watch.wait_for(waiting_on_finalizer)
        ns = ns_watch.get(NS)
        assert ns is not None and ns["status"]["phase"] == "Terminating"
        assert (_condition(ns, "NamespaceContentRemaining") or {}).get("status") == "True"
        # Only the held object is left, and nothing new may be created meanwhile.
        assert await _content(c.client) == 1
        assert [o["metadata"]["name"] for o in (await cms.list(NS))[0]] == ["held"]
        with pytest.raises(ApiStatusError) as refused:
            await cms.create({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "late", "namespace": NS}})
        assert refused.value.code == 403
        await cms.patch("held", {"metadata": {"finalizers": None}}, namespace=NS)
        await ns_watch.wait_for(lambda: ns_watch.get(NS) is None)


async def test_bound_pods_keep_the_namespace_until_their_kubelet_confirms(lifecycle_cluster: Cluster) -> None:
    c = lifecycle_cluster
    namespaces = c.client.resource("v1", "Namespace")
    await namespaces.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    pods = c.client.resource("v1", "Pod")
    await pods.create(pod("bound", NS, node="node-a"))
    async with Watch(c.client, "v1", "Namespace") as ns_watch, \
            Watch(c.client, "v1", "Pod", namespace=NS) as pod_watch, running(_controller(c)):
        await namespaces.delete(NS)
        await pod_watch.wait_for(
            lambda: (pod_watch.get("bound", NS) or {}).get("metadata", {}).get("deletionTimestamp"))
        await ns_watch.wait_for(
            lambda: (_condition(ns_watch.get(NS), "NamespaceContentRemaining") or {}).get("status") == "True")
        assert ns_watch.get(NS) is not None
        # The kubelet confirms the pod stopped: a grace-0 delete removes it.
        await pods.delete("bound", NS, grace_period_seconds=0)
        await ns_watch.wait_for(lambda: ns_watch.get(NS) is None)


async def test_system_namespaces_cannot_be_deleted(lifecycle_cluster: Cluster) -> None:
    c = lifecycle_cluster
    for name in ("default", "kube-system"):
        with pytest.raises(ApiStatusError) as refused:
            await c.client.resource("v1", "Namespace").delete(name)
        assert refused.value.code == 403
