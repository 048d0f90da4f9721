"""Discovery bodies derived from the kinds registry."""

from __future__ import annotations

from typing import Any

import pytest

from kcore.api.registry import KindInfo, builtin_registry
from kcore.apiserver.discovery import (
    AGGREGATED_DISCOVERY_CONTENT_TYPE,
    aggregated_discovery,
    api_group,
    api_group_list,
    api_resource_list,
    api_versions,
    storage_version_hash,
    version_info,
    wants_aggregated,
)

KUBECTL_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
)


def _by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in body["resources"]}


def test_version_info() -> None:
    v = version_info()
    assert (v["major"], v["minor"], v["gitVersion"]) == ("1", "32", "v1.32.0-kcore")
    assert {"gitCommit", "gitTreeState", "buildDate", "goVersion", "compiler", "platform"} <= set(v)


def test_api_versions() -> None:
    body = api_versions("10.0.0.1:6443")
    assert body["kind"] == "APIVersions" and body["versions"] == ["v1"]
    assert body["serverAddressByClientCIDRs"] == [{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}]


def test_api_group_list() -> None:
    body = api_group_list(builtin_registry())
    assert body["kind"] == "APIGroupList" and body["apiVersion"] == "v1"
    groups = {g["name"]: g for g in body["groups"]}
    assert "" not in groups
    assert groups["apps"]["versions"] == [{"groupVersion": "apps/v1", "version": "v1"}]
    assert groups["apps"]["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    assert groups["autoscaling"]["preferredVersion"]["version"] == "v2"
    assert {"batch", "rbac.authorization.k8s.io", "storage.k8s.io", "coordination.k8s.io", "discovery.k8s.io"} <= set(groups)
    assert api_group(builtin_registry(), "apps")["kind"] == "APIGroup"  # type: ignore[index]
    assert api_group(builtin_registry(), "nope.example.com") is None


def test_preferred_version_prefers_ga() -> None:
    reg = builtin_registry()
    base = reg.get("apps/v1", "Deployment")
    reg.register(KindInfo("apps", "v1beta2", "Deployment", "deployments", "deployment", True, base.model, base.list_model))
    apps = next(g for g in api_group_list(reg)["groups"] if g["name"] == "apps")
    assert [v["version"] for v in apps["versions"]] == ["v1", "v1beta2"]
    assert apps["preferredVersion"]["version"] == "v1"


def test_core_resource_list() -> None:
    body = api_resource_list(builtin_registry(), "", "v1")
    assert body is not None
    assert body["kind"] == "APIResourceList" and body["groupVersion"] == "v1"
    res = _by_name(body)
    pods = res["pods"]
    assert pods["singularName"] == "pod" and pods["namespaced"] is True and pods["kind"] == "Pod"
    assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"]
    assert set(pods["verbs"]) == {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
    assert pods["storageVersionHash"]
    assert res["nodes"]["namespaced"] is False
    assert res["pods/log"] == {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]}
    assert res["pods/binding"]["kind"] == "Binding" and res["pods/binding"]["verbs"] == ["create"]
    ev = res["pods/eviction"]
    assert (ev["kind"], ev["group"], ev["version"], ev["verbs"]) == ("Eviction", "policy", "v1", ["create"])
    assert res["pods/exec"]["kind"] == "PodExecOptions"
    assert res["pods/status"]["kind"] == "Pod" and res["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert "group" not in res["pods/status"]
    assert res["bindings"]["verbs"] == ["create"]
    assert res["serviceaccounts/token"]["group"] == "authentication.k8s.io"
    assert "shortNames" not in res["secrets"]


def test_apps_resource_list_scale() -> None:
    body = api_resource_list(builtin_registry(), "apps", "v1")
    assert body is not None and body["groupVersion"] == "apps/v1"
    scale = _by_name(body)["deployments/scale"]
    assert (scale["kind"], scale["group"], scale["version"]) == ("Scale", "autoscaling", "v1")
    assert scale["verbs"] == ["get", "patch", "update"]
    assert _by_name(body)["deployments"]["shortNames"] == ["deploy"]
    assert api_resource_list(builtin_registry(), "apps", "v9") is None


def test_storage_version_hash_is_stable_and_distinct() -> None:
    reg = builtin_registry()
    pod, dep = reg.get("v1", "Pod"), reg.get("apps/v1", "Deployment")
    assert storage_version_hash(pod) == storage_version_hash(builtin_registry().get("v1", "Pod"))
    assert storage_version_hash(pod) != storage_version_hash(dep)


def test_aggregated_discovery_core() -> None:
    body = aggregated_discovery(builtin_registry(), legacy=True)
    assert body["kind"] == "APIGroupDiscoveryList" and body["apiVersion"] == "apidiscovery.k8s.io/v2"
    (core,) = body["items"]
    assert core["metadata"]["name"] == ""
    (v1,) = core["versions"]
    assert v1["version"] == "v1" and v1["freshness"] == "Current"
    res = {r["resource"]: r for r in v1["resources"]}
    pods = res["pods"]
    assert pods["responseKind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert pods["scope"] == "Namespaced" and pods["singularResource"] == "pod"
    assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"]
    subs = {s["subresource"]: s for s in pods["subresources"]}
    assert subs["eviction"]["responseKind"] == {"group": "policy", "version": "v1", "kind": "Eviction"}
    assert subs["log"]["verbs"] == ["get"]
    assert res["namespaces"]["scope"] == "Cluster"
    assert "subresources" not in res["configmaps"]


def test_aggregated_discovery_groups() -> None:
    body = aggregated_discovery(builtin_registry(), legacy=False)
    names = [i["metadata"]["name"] for i in body["items"]]
    assert "" not in names and "apps" in names and "autoscaling" in names
    apps = body["items"][names.index("apps")]
    deploy = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    scale = next(s for s in deploy["subresources"] if s["subresource"] == "scale")
    assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    assert deploy["responseKind"]["group"] == "apps"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (KUBECTL_ACCEPT, True),
        (AGGREGATED_DISCOVERY_CONTENT_TYPE, True),
        ("application/json; g=apidiscovery.k8s.io; v=v2; as=APIGroupDiscoveryList", True),
        ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0,application/json", False),
        ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json", False),
        ("application/json", False),
        ("", False),
        (None, False),
        ("application/json;as=Table;v=v1;g=meta.k8s.io", False),
    ],
)
def test_wants_aggregated(accept: str | None, expected: bool) -> None:
    assert wants_aggregated(accept) is expected


def test_content_type_constant() -> None:
    assert AGGREGATED_DISCOVERY_CONTENT_TYPE == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
