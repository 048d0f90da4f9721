"""Kubernetes API conventions, exercised over HTTP against a real server."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from support.api import Api, pod

PODS = "/api/v1/namespaces/default/pods"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
MERGE = "application/merge-patch+json"


def deployment(name: str, replicas: int = 1, image: str = "nginx:1.14.2") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "web", "image": image}]}}},
    }


async def test_create_fills_server_metadata_and_defaults(api: Api) -> None:
    reply = await api.post(PODS, pod("p1"))
    assert reply.status == 201, reply.body
    meta = reply.body["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0 and meta["namespace"] == "default"
    spec = reply.body["spec"]
    assert spec["restartPolicy"] == "Always" and spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["serviceAccountName"] == "default"
    tolerated = {t["key"]: t["tolerationSeconds"] for t in spec["tolerations"]}
    assert tolerated == {"node.kubernetes.io/not-ready": 300, "node.kubernetes.io/unreachable": 300}
    got = await api.get(f"{PODS}/p1")
    assert got.status == 200 and got.body["metadata"]["uid"] == meta["uid"]


async def test_duplicate_create_is_409_already_exists(api: Api) -> None:
    assert (await api.post(PODS, pod("dup"))).status == 201
    reply = await api.post(PODS, pod("dup"))
    assert reply.status == 409
    assert reply.body["kind"] == "Status" and reply.body["reason"] == "AlreadyExists"
    assert reply.body["message"] == 'pods "dup" already exists'


async def test_generate_name(api: Api) -> None:
    body = pod("")
    body["metadata"] = {"generateName": "web-"}
    first, second = await api.post(PODS, body), await api.post(PODS, body)
    assert first.status == second.status == 201
    names = {first.body["metadata"]["name"], second.body["metadata"]["name"]}
    assert len(names) == 2 and all(n.startswith("web-") and len(n) == 9 for n in names)


async def test_stale_update_is_409_conflict(api: Api) -> None:
    created = (await api.post("/api/v1/namespaces/default/configmaps",
                              {"metadata": {"name": "cm"}, "data": {"a": "1"}})).body
    fresh = dict(created, data={"a": "2"})
    assert (await api.put("/api/v1/namespaces/default/configmaps/cm", fresh)).status == 200
    stale = dict(created, data={"a": "3"})
    reply = await api.put("/api/v1/namespaces/default/configmaps/cm", stale)
    assert reply.status == 409 and reply.body["reason"] == "Conflict"
    assert "the object has been modified" in reply.body["message"]


async def test_generation_bumps_on_spec_changes_only(api: Api) -> None:
    created = (await api.post(DEPLOYMENTS, deployment("web"))).body
    assert created["metadata"]["generation"] == 1
    assert created["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    assert created["spec"]["revisionHistoryLimit"] == 10
    assert created["spec"]["progressDeadlineSeconds"] == 600
    labelled = await api.patch(f"{DEPLOYMENTS}/web", {"metadata": {"labels": {"x": "y"}}}, MERGE)
    assert labelled.status == 200 and labelled.body["metadata"]["generation"] == 1
    status = await api.patch(f"{DEPLOYMENTS}/web/status", {"status": {"replicas": 1}}, MERGE)
    assert status.status == 200, status.body
    assert status.body["metadata"]["generation"] == 1 and status.body["status"]["replicas"] == 1
    scaled = await api.patch(f"{DEPLOYMENTS}/web", {"spec": {"replicas": 3}}, MERGE)
    assert scaled.body["metadata"]["generation"] == 2
    assert scaled.body["status"]["replicas"] == 1  # a main-resource write keeps status


async def test_status_subresource_ignores_spec_changes(api: Api) -> None:
    created = (await api.post(DEPLOYMENTS, deployment("st"))).body
    created["spec"]["replicas"] = 9
    created["status"] = {"replicas": 4}
    reply = await api.put(f"{DEPLOYMENTS}/st/status", created)
    assert reply.status == 200, reply.body
    assert reply.body["spec"]["replicas"] == 1 and reply.body["status"]["replicas"] == 4


async def test_scale_subresource(api: Api) -> None:
    await api.post(DEPLOYMENTS, deployment("sc", replicas=2))
    scale = await api.get(f"{DEPLOYMENTS}/sc/scale")
    assert scale.status == 200
    assert scale.body["kind"] == "Scale" and scale.body["apiVersion"] == "autoscaling/v1"
    assert scale.body["spec"]["replicas"] == 2 and scale.body["status"]["selector"] == "app=sc"
    patched = await api.patch(f"{DEPLOYMENTS}/sc/scale", {"spec": {"replicas": 5}}, MERGE)
    assert patched.status == 200 and patched.body["spec"]["replicas"] == 5
    assert (await api.get(f"{DEPLOYMENTS}/sc")).body["spec"]["replicas"] == 5


async def test_finalizers_hold_deletion_until_removed(api: Api) -> None:
    body = {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}, "data": {}}
    await api.post("/api/v1/namespaces/default/configmaps", body)
    first = await api.delete("/api/v1/namespaces/default/configmaps/held")
    assert first.status == 200
    stamp = first.body["metadata"]["deletionTimestamp"]
    again = await api.delete("/api/v1/namespaces/default/configmaps/held")
    assert again.body["metadata"]["deletionTimestamp"] == stamp  # never moved
    adding = await api.patch("/api/v1/namespaces/default/configmaps/held",
                             {"metadata": {"finalizers": ["example.com/hold", "new"]}}, MERGE)
    assert adding.status == 403
    released = await api.patch("/api/v1/namespaces/default/configmaps/held",
                               {"metadata": {"finalizers": None}}, MERGE)
    assert released.status == 200
    assert (await api.get("/api/v1/namespaces/default/configmaps/held")).status == 404


async def test_bound_pod_stays_terminating_until_kubelet_confirms(api: Api) -> None:
    await api.post(PODS, pod("bound", nodeName="node-1"))
    terminating = await api.delete(f"{PODS}/bound")
    assert terminating.status == 200
    assert terminating.body["metadata"]["deletionGracePeriodSeconds"] == 30
    assert (await api.get(f"{PODS}/bound")).status == 200
    shorter = await api.delete(f"{PODS}/bound", {"gracePeriodSeconds": 10})
    assert shorter.body["metadata"]["deletionGracePeriodSeconds"] == 10
    assert shorter.body["metadata"]["deletionTimestamp"] <= terminating.body["metadata"]["deletionTimestamp"]
    confirmed = await api.delete(f"{PODS}/bound", {"gracePeriodSeconds": 0})
    assert confirmed.status == 200
    assert (await api.get(f"{PODS}/bound")).status == 404


async def test_unbound_pod_goes_immediately(api: Api) -> None:
    await api.post(PODS, pod("loose"))
    assert (await api.delete(f"{PODS}/loose")).status == 200
    assert (await api.get(f"{PODS}/loose")).status == 404


async def test_delete_preconditions_and_dry_run(api: Api) -> None:
    created = (await api.post(PODS, pod("pre"))).body
    wrong = await api.delete(f"{PODS}/pre", {"preconditions": {"uid": "nope"}})
    assert wrong.status == 409 and "Precondition failed" in wrong.body["message"]
    dry = await api.delete(f"{PODS}/pre?dryRun=All")
    assert dry.status == 200 and (await api.get(f"{PODS}/pre")).status == 200
    ok = await api.delete(f"{PODS}/pre", {"preconditions": {"uid": created["metadata"]["uid"]}})
    assert ok.status == 200


async def test_dry_run_create_does_not_store(api: Api) -> None:
    reply = await api.post(f"{PODS}?dryRun=All", pod("ghost"))
    assert reply.status == 201
    assert (await api.get(f"{PODS}/ghost")).status == 404


async def test_namespace_lifecycle(api: Api) -> None:
    missing = await api.post("/api/v1/namespaces/nowhere/pods", pod("p"))
    assert missing.status == 404 and missing.body["message"] == 'namespaces "nowhere" not found'
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert (await api.get(f"/api/v1/namespaces/{name}")).status == 200
        protected = await api.delete(f"/api/v1/namespaces/{name}")
        assert protected.status == 403 and "may not be deleted" in protected.body["message"]
    await api.post("/api/v1/namespaces", {"metadata": {"name": "team"}})
    deleting = await api.delete("/api/v1/namespaces/team")
    assert deleting.status == 200 and deleting.body["status"]["phase"] == "Terminating"
    refused = await api.post("/api/v1/namespaces/team/pods", pod("late"))
    assert refused.status == 403
    assert "unable to create new content in namespace team because it is being terminated" in \
        refused.body["message"]


async def test_list_pagination_is_consistent(api: Api) -> None:
    for i in range(7):
        await api.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": f"cm-{i}"}})
    first = await api.get("/api/v1/namespaces/default/configmaps?limit=3")
    assert len(first.body["items"]) == 3 and first.body["metadata"]["continue"]
    assert first.body["metadata"]["remainingItemCount"] == 4
    await api.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "cm-late"}})
    names = [i["metadata"]["name"] for i in first.body["items"]]
    token = first.body["metadata"]["continue"]
    while token:
        page = await api.get(f"/api/v1/namespaces/default/configmaps?limit=3&continue={token}")
        assert page.body["metadata"]["resourceVersion"] == first.body["metadata"]["resourceVersion"]
        names += [i["metadata"]["name"] for i in page.body["items"]]
        token = page.body["metadata"].get("continue")
    assert names == [f"cm-{i}" for i in range(7)]  # the late one is not in this snapshot


async def test_label_and_field_selectors(api: Api) -> None:
    for name, labels, node in [("a", {"app": "web", "tier": "fe"}, "n1"), ("b", {"app": "web"}, "n2"),
                               ("c", {"app": "db"}, "n1")]:
        body = pod(name, nodeName=node)
        body["metadata"]["labels"] = labels
        await api.post(PODS, body)

    async def names(query: str) -> list[str]:
        reply = await api.get(f"{PODS}?{query}")
        assert reply.status == 200, reply.body
        return sorted(i["metadata"]["name"] for i in reply.body["items"])

    assert await names("labelSelector=app%3Dweb") == ["a", "b"]
    assert await names("labelSelector=app+in+(web,db),!tier") == ["b", "c"]
    assert await names("labelSelector=app!%3Dweb") == ["c"]
    assert await names("fieldSelector=spec.nodeName%3Dn1") == ["a", "c"]
    assert await names("fieldSelector=metadata.name%3Db") == ["b"]
    bad = await api.get(f"{PODS}?fieldSelector=spec.bogus%3Dx")
    assert bad.status == 400 and "spec.bogus" in bad.body["message"]


async def test_errors_are_status_objects(api: Api) -> None:
    malformed = await api.post(PODS, None, raw=b"{not json")
    assert malformed.status == 400 and malformed.body["reason"] == "BadRequest"
    invalid = await api.post(PODS, {"metadata": {"name": "x"}, "spec": {"containers": [{"name": "c"}]}})
    assert invalid.status == 422 and invalid.body["reason"] == "Invalid"
    assert {"field": "spec.containers[0].image", "reason": "FieldValueRequired",
            "message": "Required value"} in invalid.body["details"]["causes"]
    unknown = await api.get("/api/v1/namespaces/default/widgets")
    assert unknown.status == 404 and unknown.body["kind"] == "Status"
    missing = await api.get(f"{PODS}/nope")
    assert missing.status == 404 and missing.body["message"] == 'pods "nope" not found'
    too_big = await api.post("/api/v1/namespaces/default/configmaps", None,
                             raw=b'{"metadata":{"name":"big"},"data":{"a":"' + b"x" * (3 * 1024 * 1024) + b'"}}')
    assert too_big.status == 413 and too_big.body["reason"] == "RequestEntityTooLarge"
    media = await api.post(PODS, None, raw=b"x", content_type="application/cbor")
    assert media.status == 415 and media.body["reason"] == "UnsupportedMediaType"
    garbage = await api.post(PODS, None, raw=b"x", content_type="application/vnd.kubernetes.protobuf")
    assert garbage.status == 400 and "protobuf" in garbage.body["message"]


async def test_field_validation_modes(api: Api) -> None:
    body = pod("fv")
    body["spec"]["bogus"] = 1
    strict = await api.post(f"{PODS}?fieldValidation=Strict", body)
    assert strict.status == 400 and 'unknown field "spec.bogus"' in strict.body["message"]
    warn = await api.post(f"{PODS}?fieldValidation=Warn", body)
    assert warn.status == 201 and 'unknown field \\"spec.bogus\\"' not in warn.headers["Warning"]
    assert 'unknown field "spec.bogus"' in warn.headers["Warning"]
    body["metadata"]["name"] = "fv2"
    ignore = await api.post(f"{PODS}?fieldValidation=Ignore", body)
    assert ignore.status == 201 and "Warning" not in ignore.headers
    assert "bogus" not in ignore.body["spec"]
    duplicated = b'{"metadata":{"name":"dup-field"},"spec":{"containers":[{"name":"a","image":"x","image":"y"}]}}'
    reply = await api.post(f"{PODS}?fieldValidation=Strict", None, raw=duplicated)
    assert reply.status == 400 and 'duplicate field "image"' in reply.body["message"]


async def test_binding_sets_node_once(api: Api) -> None:
    await api.post(PODS, pod("tobind"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "tobind"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}}
    assert (await api.post(f"{PODS}/tobind/binding", binding)).status == 201
    bound = (await api.get(f"{PODS}/tobind")).body
    assert bound["spec"]["nodeName"] == "n1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in bound["status"]["conditions"])
    again = await api.post(f"{PODS}/tobind/binding", binding)
    assert again.status == 409 and "already assigned" in again.body["message"]


async def read_events(api: Api, path: str, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with api.session.get(api.url + path) as resp:
        assert resp.status == 200

        async def consume() -> None:
            async for line in resp.content:
                if line.strip():
                    events.append(orjson.loads(line))
                    if len(events) >= count:
                        return

        await asyncio.wait_for(consume(), timeout)
    return events


async def test_watch_sees_changes_in_order(api: Api) -> None:
    created = (await api.post(PODS, pod("w1"))).body
    rv = created["metadata"]["resourceVersion"]

    async def mutate() -> None:
        await asyncio.sleep(0.05)
        await api.patch(f"{PODS}/w1", {"metadata": {"labels": {"x": "1"}}}, MERGE)
        await api.post(PODS, pod("w2"))
        await api.delete(f"{PODS}/w1")

    task = asyncio.create_task(mutate())
    events = await read_events(api, f"{PODS}?watch=true&resourceVersion={rv}", 3)
    await task
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("MODIFIED", "w1"), ("ADDED", "w2"), ("DELETED", "w1")]
    revisions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert revisions == sorted(revisions) and revisions[0] > int(rv)


async def test_watch_without_resource_version_starts_with_added(api: Api) -> None:
    await api.post(PODS, pod("existing"))
    events = await read_events(api, f"{PODS}?watch=true", 1)
    assert events[0]["type"] == "ADDED" and events[0]["object"]["metadata"]["name"] == "existing"


async def test_watch_selector_transitions(api: Api) -> None:
    created = (await api.post(PODS, pod("sel"))).body
    rv = created["metadata"]["resourceVersion"]

    async def mutate() -> None:
        await asyncio.sleep(0.05)
        await api.patch(f"{PODS}/sel", {"metadata": {"labels": {"app": "web"}}}, MERGE)
        await api.patch(f"{PODS}/sel", {"metadata": {"labels": {"app": "db"}}}, MERGE)

    task = asyncio.create_task(mutate())
    events = await read_events(api, f"{PODS}?watch=true&resourceVersion={rv}&labelSelector=app%3Dweb", 2)
    await task
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


async def test_watch_timeout_and_bookmarks(api: Api, api_server: Any) -> None:
    api_server.handlers.bookmark_interval = 0.1
    created = (await api.post(PODS, pod("bm"))).body
    rv = created["metadata"]["resourceVersion"]
    events = await read_events(api, f"{PODS}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true", 1)
    assert events[0]["type"] == "BOOKMARK"
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) >= int(rv)
    async with api.session.get(api.url + f"{PODS}?watch=true&resourceVersion={rv}&timeoutSeconds=1") as resp:
        body = await asyncio.wait_for(resp.read(), 5)
    assert body == b""


async def test_watch_of_compacted_revision_is_410(api: Api, api_server: Any) -> None:
    for i in range(5):
        await api.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": f"c{i}"}})
    current = await api_server.store.current_revision()
    await api_server.store.compact(current - 1)
    events = await read_events(api, "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2", 1)
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"
    stale_list = await api.get("/api/v1/namespaces/default/configmaps?resourceVersion=2&resourceVersionMatch=Exact")
    assert stale_list.status == 410


async def test_tables(api: Api) -> None:
    await api.post(PODS, pod("tp"))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    reply = await api.get(PODS, headers={"Accept": accept})
    assert reply.body["kind"] == "Table"
    columns = [c["name"] for c in reply.body["columnDefinitions"] if c["priority"] == 0]
    assert columns == ["Name", "Ready", "Status", "Restarts", "Age"]
    row = reply.body["rows"][0]
    assert row["cells"][:3] == ["tp", "0/1", "Pending"]
    assert row["object"]["kind"] == "PartialObjectMetadata"


async def test_healthz_version_metrics(api: Api) -> None:
    assert (await api.get("/healthz")).status == 200
    assert (await api.get("/readyz")).status == 200
    version = (await api.get("/version")).body
    assert version["major"] == "1" and version["minor"] == "32"
    await api.get(PODS)
    metrics = (await api.get("/metrics")).body
    assert 'apiserver_request_total{code="200",group="",resource="pods",subresource="",verb="LIST"}' in metrics
    assert "apiserver_request_duration_seconds_bucket" in metrics
    assert "etcd_request_duration_seconds_bucket" in metrics
    assert "apiserver_registered_watchers" in metrics


async def test_removing_the_last_label_omits_the_map(api: Api) -> None:
    body = pod("lbl")
    body["metadata"]["labels"] = {"a": "b"}
    await api.post(PODS, body)
    reply = await api.patch(f"{PODS}/lbl", {"metadata": {"labels": {"a": None}}}, MERGE)
    assert reply.status == 200 and "labels" not in reply.body["metadata"]


async def test_expired_continue_token_is_410(api: Api, api_server: Any) -> None:
    for i in range(4):
        await api.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": f"exp-{i}"}})
    first = await api.get("/api/v1/namespaces/default/configmaps?limit=2")
    token = first.body["metadata"]["continue"]
    await api.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "exp-late"}})
    await api_server.store.compact(await api_server.store.current_revision())
    expired = await api.get(f"/api/v1/namespaces/default/configmaps?limit=2&continue={token}")
    assert expired.status == 410 and expired.body["reason"] == "Expired"


async def test_overload_is_429_with_retry_after(api: Api, api_server: Any) -> None:
    api_server.config = api_server.config.model_copy(update={"max_inflight_requests": 1})
    api_server._inflight = 1  # one request already in flight
    try:
        reply = await api.get(PODS)
    finally:
        api_server._inflight = 0
    assert reply.status == 429 and reply.headers["Retry-After"] == "1"
    assert reply.body["reason"] == "TooManyRequests"


async def test_unsupported_verb_is_405(api: Api) -> None:
    events = await api.put("/api/v1/namespaces/default/pods", {"metadata": {"name": "x"}})
    assert events.status == 405 and events.body["reason"] == "MethodNotAllowed"


async def test_plain_http_only_on_loopback() -> None:
    import pytest as _pytest

    from kcore.apiserver.server import ApiServer
    from kcore.config import ApiServerConfig
    from kcore.errors import UserFacingError
    from kcore.store.memory import MemoryStore

    exposed = ApiServer(MemoryStore(), config=ApiServerConfig(bind_address="0.0.0.0", port=0,
                                                              insecure_http=True))
    with _pytest.raises(UserFacingError, match="plain HTTP is only served on loopback"):
        await exposed.start()
    no_tls = ApiServer(MemoryStore(), config=ApiServerConfig(bind_address="127.0.0.1", port=0))
    with _pytest.raises(UserFacingError, match="needs TLS"):
        await no_tls.start()


async def test_raw_reads_match_parsed_ones(api: Api, api_server: Any) -> None:
    """GET and plain lists serve the stored bytes; they must equal the parsed form."""
    from kcore.apiserver.resources import decode, raw_object

    created = (await api.post(PODS, pod("rawpod"))).body
    got = await api.get(f"{PODS}/rawpod")
    assert got.body == created
    listed = await api.get(PODS)
    assert [i for i in listed.body["items"] if i["metadata"]["name"] == "rawpod"] == [created]
    kv = await api_server.store.get("/registry/core/pods/default/rawpod")
    assert orjson.loads(raw_object(kv)) == decode(kv)
    empty_meta = type(kv)(key="k", value=b'{"metadata":{},"kind":"X"}', create_revision=1, mod_revision=7)
    assert orjson.loads(raw_object(empty_meta)) == {"metadata": {"resourceVersion": "7"}, "kind": "X"}
    legacy = type(kv)(key="k", value=b'{"kind":"X","metadata":{"name":"a"}}', create_revision=1, mod_revision=8)
    assert orjson.loads(raw_object(legacy))["metadata"] == {"name": "a", "resourceVersion": "8"}
