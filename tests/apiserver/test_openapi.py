"""OpenAPI v3 documents generated from the models."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from kcore.api.registry import KindInfo, builtin_registry
from kcore.apiserver.openapi import (
    INT_OR_STRING,
    OBJECT_META,
    QUANTITY,
    openapi_path_key,
    openapi_v3_document,
    openapi_v3_document_bytes,
    openapi_v3_index,
    schema_name,
)

REF = "#/components/schemas/"


def _ref_target(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return prop["$ref"].removeprefix(REF)
    (inner,) = prop["allOf"]
    return inner["$ref"].removeprefix(REF)


def _all_refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                found.add(v.removeprefix(REF))
            else:
                found |= _all_refs(v)
    elif isinstance(node, list):
        for v in node:
            found |= _all_refs(v)
    return found


def test_index_points_at_every_group_version_with_content_hash() -> None:
    reg = builtin_registry()
    index = openapi_v3_index(reg)
    assert set(index["paths"]) >= {"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/autoscaling/v2",
                                   "apis/rbac.authorization.k8s.io/v1"}
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    raw = openapi_v3_document_bytes(reg, "apps", "v1")
    assert raw is not None
    assert url.split("hash=")[1] == hashlib.sha512(raw).hexdigest().upper()
    assert orjson.loads(raw) == openapi_v3_document(reg, "apps", "v1")
    # stable across registries built the same way
    assert openapi_v3_index(builtin_registry()) == index
    assert openapi_path_key("", "v1") == "api/v1" and openapi_path_key("apps", "v1") == "apis/apps/v1"


def test_memoized_per_registry_and_invalidated_by_new_kinds() -> None:
    reg = builtin_registry()
    doc = openapi_v3_document(reg, "apps", "v1")
    assert openapi_v3_document(reg, "apps", "v1") is doc
    base = reg.get("apps/v1", "Deployment")
    reg.register(KindInfo("apps", "v1", "Widget", "widgets", "widget", True, base.model, base.list_model))
    doc2 = openapi_v3_document(reg, "apps", "v1")
    assert doc2 is not doc
    assert "/apis/apps/v1/namespaces/{namespace}/widgets/{name}" in doc2["paths"]
    assert openapi_v3_document(reg, "nope", "v1") is None


def test_schema_names_follow_kubernetes() -> None:
    reg = builtin_registry()
    schemas = openapi_v3_document(reg, "", "v1")["components"]["schemas"]  # type: ignore[index]
    for name in ("io.k8s.api.core.v1.Pod", "io.k8s.api.core.v1.PodSpec", "io.k8s.api.core.v1.Container",
                 "io.k8s.api.core.v1.PodList", OBJECT_META, "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
                 "io.k8s.apimachinery.pkg.apis.meta.v1.Status", QUANTITY, INT_OR_STRING):
        assert name in schemas, name
    assert schema_name(reg, reg.get("apps/v1", "Deployment").model) == "io.k8s.api.apps.v1.Deployment"
    assert schema_name(reg, reg.get("rbac.authorization.k8s.io/v1", "Role").model) == "io.k8s.api.rbac.v1.Role"
    assert schema_name(reg, reg.get("autoscaling/v2", "HorizontalPodAutoscaler").model) == (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler")


def test_every_ref_resolves() -> None:
    reg = builtin_registry()
    for group, versions in reg.group_versions().items():
        for version in versions:
            doc = openapi_v3_document(reg, group, version)
            assert doc is not None and doc["openapi"].startswith("3.")
            missing = _all_refs(doc) - set(doc["components"]["schemas"])
            assert not missing, (group, version, missing)


def test_kind_schema_details() -> None:
    doc = openapi_v3_document(builtin_registry(), "apps", "v1")
    assert doc is not None
    schemas = doc["components"]["schemas"]
    dep = schemas["io.k8s.api.apps.v1.Deployment"]
    assert dep["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert schemas["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "DeploymentList", "version": "v1"}]
    assert dep["type"] == "object" and dep["description"].startswith("Declarative updates")
    assert "APIVersion defines the versioned schema" in dep["properties"]["apiVersion"]["description"]
    assert _ref_target(dep["properties"]["metadata"]) == OBJECT_META
    spec = schemas["io.k8s.api.apps.v1.DeploymentSpec"]
    assert set(spec["required"]) == {"selector", "template"}
    assert spec["properties"]["replicas"]["type"] == "integer"
    assert spec["properties"]["paused"]["type"] == "boolean"
    strategy = spec["properties"]["strategy"]
    assert strategy["description"] == "The strategy used to replace existing pods with new ones."
    assert _ref_target(strategy) == "io.k8s.api.apps.v1.DeploymentStrategy"
    ru = schemas["io.k8s.api.apps.v1.RollingUpdateDeployment"]["properties"]["maxSurge"]
    assert _ref_target(ru) == INT_OR_STRING
    assert schemas[INT_OR_STRING]["x-kubernetes-int-or-string"] is True
    status = schemas["io.k8s.api.apps.v1.DeploymentStatus"]["properties"]["conditions"]
    assert status["type"] == "array" and _ref_target(status["items"]) == "io.k8s.api.apps.v1.DeploymentCondition"


def test_core_schema_details() -> None:
    schemas = openapi_v3_document(builtin_registry(), "", "v1")["components"]["schemas"]  # type: ignore[index]
    container = schemas["io.k8s.api.core.v1.Container"]
    assert "name" in container["required"]
    assert container["properties"]["ports"]["items"]["$ref"] == REF + "io.k8s.api.core.v1.ContainerPort"
    limits = schemas["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
    assert limits["type"] == "object" and limits["additionalProperties"]["$ref"] == REF + QUANTITY
    labels = schemas[OBJECT_META]["properties"]["labels"]
    assert labels == {"type": "object", "additionalProperties": {"type": "string"}}
    list_meta = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"]["properties"]
    assert "continue" in list_meta and "continue_" not in list_meta
    pod_list = schemas["io.k8s.api.core.v1.PodList"]
    assert "items" in pod_list["required"] and pod_list["properties"]["items"]["items"]["$ref"].endswith(".Pod")


def _op(doc: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return doc["paths"][path][method]


def test_paths_and_operations() -> None:
    doc = openapi_v3_document(builtin_registry(), "apps", "v1")
    assert doc is not None
    item = "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
    coll = "/apis/apps/v1/namespaces/{namespace}/deployments"
    assert set(doc["paths"][item]) >= {"get", "put", "patch", "delete", "parameters"}
    assert set(doc["paths"][coll]) >= {"get", "post", "delete"}
    assert "get" in doc["paths"]["/apis/apps/v1/deployments"]
    gvk = {"group": "apps", "kind": "Deployment", "version": "v1"}
    actions = {
        (item, "get"): "get", (item, "put"): "put", (item, "patch"): "patch", (item, "delete"): "delete",
        (coll, "get"): "list", (coll, "post"): "post", (coll, "delete"): "deletecollection",
    }
    for (path, method), action in actions.items():
        op = _op(doc, path, method)
        assert op["x-kubernetes-action"] == action
        assert op["x-kubernetes-group-version-kind"] == gvk
        assert op["operationId"]
    patch = _op(doc, item, "patch")
    params = {p["name"] for p in patch["parameters"]}
    assert {"dryRun", "fieldManager", "fieldValidation", "force"} <= params
    assert set(patch["requestBody"]["content"]) == {
        "application/json-patch+json", "application/merge-patch+json",
        "application/strategic-merge-patch+json", "application/apply-patch+yaml"}
    assert patch["operationId"] == "patchAppsV1NamespacedDeployment"
    assert {"fieldValidation", "fieldManager", "dryRun"} <= {p["name"] for p in _op(doc, coll, "post")["parameters"]}
    assert {"labelSelector", "fieldSelector", "watch", "limit", "continue"} <= {
        p["name"] for p in _op(doc, coll, "get")["parameters"]}
    path_params = {p["name"]: p for p in doc["paths"][item]["parameters"]}
    assert path_params["name"]["in"] == "path" and path_params["name"]["required"] is True
    assert path_params["namespace"]["in"] == "path"
    scale = _op(doc, item + "/scale", "patch")
    assert scale["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "kind": "Scale", "version": "v1"}
    assert "io.k8s.api.autoscaling.v1.Scale" in doc["components"]["schemas"]
    assert _op(doc, item + "/status", "put")["x-kubernetes-group-version-kind"] == gvk


def test_cluster_scoped_and_restricted_verbs() -> None:
    doc = openapi_v3_document(builtin_registry(), "", "v1")
    assert doc is not None
    assert "/api/v1/nodes/{name}" in doc["paths"]
    assert "/api/v1/namespaces/{namespace}/nodes/{name}" not in doc["paths"]
    node_params = {p["name"] for p in doc["paths"]["/api/v1/nodes/{name}"]["parameters"]}
    assert "namespace" not in node_params
    # Namespaces have no deletecollection; bindings are create-only.
    assert "delete" not in doc["paths"]["/api/v1/namespaces"]
    bindings = doc["paths"]["/api/v1/namespaces/{namespace}/bindings"]
    assert set(bindings) == {"post", "parameters"}
    assert "/api/v1/namespaces/{namespace}/bindings/{name}" not in doc["paths"]
