"""Property tests over HTTP against the in-process API server.

* Valid ConfigMaps and Pods (names, labels, annotations, data from Kubernetes' own
  grammars) round-trip through create and get: everything sent comes back unchanged,
  next to the fields the server adds.
* Garbage (random JSON values, random bytes, wrong types in otherwise valid objects,
  every write verb and content type) never gets a 5xx: bad input is the client's
  fault, answered with a 4xx ``Status``.
* The OpenAPI v3 document for ``/api/v1`` drives schemathesis over the ConfigMap and
  Pod operations with the ``not_a_server_error`` check.
"""

from __future__ import annotations

import base64
import itertools
import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.api import Api

from kcore.apiserver.server import ApiServer

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"

FUZZ = settings(max_examples=60, deadline=3000, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

# ------------------------------------------------------------------ valid objects

_lower_alnum = string.ascii_lowercase + string.digits
_alnum = string.ascii_letters + string.digits


def _dns_label(max_size: int = 63) -> st.SearchStrategy[str]:
    """RFC 1123 label: lower-case alphanumerics and '-', alphanumeric at both ends."""
    edge = st.sampled_from(_lower_alnum)
    middle = st.text(_lower_alnum + "-", max_size=max(0, max_size - 2))
    return st.one_of(edge, st.tuples(edge, middle, edge).map("".join))


def dns_subdomain() -> st.SearchStrategy[str]:
    """RFC 1123 subdomain (object names): dot-separated labels, at most 253 characters."""
    return (st.lists(_dns_label(20), min_size=1, max_size=4).map(".".join)
            .filter(lambda s: len(s) <= 253))


def _qualified_part() -> st.SearchStrategy[str]:
    edge = st.sampled_from(_alnum)
    middle = st.text(_alnum + "-_.", max_size=20)
    return st.one_of(edge, st.tuples(edge, middle, edge).map("".join))


def label_key() -> st.SearchStrategy[str]:
    """``[prefix/]name``: an optional DNS subdomain prefix, a qualified name."""
    return st.one_of(_qualified_part(),
                     st.tuples(dns_subdomain(), _qualified_part()).map("/".join))


def label_value() -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), _qualified_part())


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
"""Any Unicode text JSON can carry (no lone surrogates), NUL and control characters included."""


def config_key() -> st.SearchStrategy[str]:
    return st.text(_alnum + "-_.", min_size=1, max_size=30).filter(lambda k: k not in (".", ".."))


labels = st.dictionaries(label_key(), label_value(), max_size=4)
annotations = st.dictionaries(label_key(), _text, max_size=3)


@st.composite
def configmaps(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(st.dictionaries(config_key(), _text, max_size=5))
    binary = draw(st.dictionaries(config_key().filter(lambda k: k not in data),
                                  st.binary(max_size=30), max_size=2))
    obj: dict[str, Any] = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": draw(dns_subdomain()), "labels": draw(labels),
                     "annotations": draw(annotations)},
        "data": data,
    }
    if binary:
        obj["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
    if draw(st.booleans()):
        obj["immutable"] = draw(st.booleans())
    return obj


_env_name = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,15}\Z")
_image = st.from_regex(r"\A[a-z0-9]{1,10}(/[a-z0-9]{1,10})?(:[a-z0-9.]{1,8})?\Z")


@st.composite
def containers(draw: st.DrawFn, name: str) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": draw(_image)}
    if draw(st.booleans()):
        container["command"] = draw(st.lists(_text, min_size=1, max_size=3))
    if draw(st.booleans()):
        container["args"] = draw(st.lists(_text, max_size=3))
    env_names = draw(st.lists(_env_name, unique=True, max_size=3))
    if env_names:
        container["env"] = [{"name": n, "value": draw(_text)} for n in env_names]
    ports = draw(st.lists(st.integers(1, 65535), unique=True, max_size=3))
    if ports:
        container["ports"] = [{"containerPort": p} for p in ports]
    return container


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(_dns_label(20), min_size=1, max_size=3, unique=True))
    spec: dict[str, Any] = {"containers": [draw(containers(n)) for n in names]}
    if draw(st.booleans()):
        spec["restartPolicy"] = draw(st.sampled_from(["Always", "OnFailure", "Never"]))
    if draw(st.booleans()):
        spec["nodeSelector"] = draw(st.dictionaries(label_key(), label_value(), max_size=2))
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": draw(dns_subdomain()), "labels": draw(labels),
                         "annotations": draw(annotations)},
            "spec": spec}


def assert_contains(sent: Any, got: Any, path: str = "") -> None:
    """Everything sent is in what came back, unchanged (the server may add fields)."""
    if isinstance(sent, dict):
        assert isinstance(got, dict), f"{path}: sent an object, got {got!r}"
        for key, value in sent.items():
            if value in ({}, [], None) and key not in got:
                continue  # empty maps/lists are omitted, as in Kubernetes
            assert key in got, f"{path}.{key} is missing from {got!r}"
            assert_contains(value, got[key], f"{path}.{key}")
    elif isinstance(sent, list):
        assert isinstance(got, list) and len(got) == len(sent), f"{path}: {sent!r} != {got!r}"
        for index, (a, b) in enumerate(zip(sent, got)):
            assert_contains(a, b, f"{path}[{index}]")
    else:
        assert sent == got and type(sent) is type(got), f"{path}: sent {sent!r}, got {got!r}"


async def _round_trip(api: Api, collection: str, obj: dict[str, Any]) -> None:
    name = obj["metadata"]["name"]
    created = await api.post(collection, obj)
    assert created.status == 201, created.body
    assert_contains(obj, created.body)
    meta = created.body["metadata"]
    assert meta["uid"] and meta["resourceVersion"] and meta["namespace"] == "default"
    got = await api.get(f"{collection}/{name}")
    assert got.status == 200, got.body
    assert got.body == created.body
    listed = await api.get(f"{collection}?fieldSelector=metadata.name%3D{name}")
    assert [item["metadata"]["name"] for item in listed.body["items"]] == [name]
    gone = await api.delete(f"{collection}/{name}?gracePeriodSeconds=0")
    assert gone.status == 200, gone.body
    assert (await api.get(f"{collection}/{name}")).status == 404


@FUZZ
@given(obj=configmaps())
async def test_valid_configmaps_round_trip(api: Api, obj: dict[str, Any]) -> None:
    await _round_trip(api, CONFIGMAPS, obj)


@FUZZ
@given(obj=pods())
async def test_valid_pods_round_trip(api: Api, obj: dict[str, Any]) -> None:
    await _round_trip(api, PODS, obj)


# ---------------------------------------------------------------------- garbage

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=12,
)

CONTENT_TYPES = ["application/json", "application/yaml", "application/merge-patch+json",
                 "application/strategic-merge-patch+json", "application/json-patch+json",
                 "application/apply-patch+yaml", "application/vnd.kubernetes.protobuf",
                 "text/plain", ""]


@st.composite
def wrong_types(draw: st.DrawFn) -> dict[str, Any]:
    """A valid ConfigMap or Pod with one field (anywhere) replaced by a random value."""
    obj = draw(st.one_of(configmaps(), pods()))
    paths: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                paths.append((node, key))
                walk(value)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                paths.append((node, index))
                walk(value)

    walk(obj)
    parent, key = draw(st.sampled_from(paths))
    parent[key] = draw(json_values)
    return obj


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # big integers too (orjson stops at 64 bits)


def _bodies() -> st.SearchStrategy[bytes]:
    return st.one_of(
        json_values.map(_dumps),
        wrong_types().map(_dumps),
        st.binary(max_size=200),
        st.binary(max_size=60).map(lambda b: b"k8s\x00" + b),  # protobuf envelope magic
        st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )


_write_requests = st.tuples(
    st.sampled_from([("POST", CONFIGMAPS), ("POST", PODS),
                     ("PUT", f"{CONFIGMAPS}/fuzz"), ("PUT", f"{PODS}/fuzz"),
                     ("PATCH", f"{CONFIGMAPS}/fuzz"), ("PATCH", f"{PODS}/fuzz"),
                     ("PATCH", f"{PODS}/fuzz/status"), ("PUT", f"{PODS}/fuzz/status"),
                     ("DELETE", f"{CONFIGMAPS}/fuzz"), ("POST", "/api/v1/namespaces"),
                     ("POST", "/apis/apps/v1/namespaces/default/deployments")]),
    st.sampled_from(CONTENT_TYPES),
    st.sampled_from(["", "?fieldValidation=Strict", "?fieldValidation=Warn", "?dryRun=All",
                     "?fieldManager=fuzz&force=true", "?fieldValidation=bogus"]),
    _bodies(),
)

_existing = itertools.count()


@settings(FUZZ, max_examples=200)
@given(request=_write_requests)
async def test_garbage_never_gets_a_server_error(api: Api, request: tuple[str, tuple[str, str], str, bytes]) -> None:
    (method, path), content_type, query, body = request
    if next(_existing) == 0 or (await api.get(f"{CONFIGMAPS}/fuzz")).status == 404:
        # targets for PUT/PATCH/DELETE exist, so bodies reach the decoders and patchers
        await api.post(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "fuzz"}, "data": {"a": "b"}})
        await api.post(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fuzz"},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    reply = await api.request(method, path + query, raw=body, content_type=content_type)
    assert reply.status < 500, (reply.status, reply.body)
    if reply.status >= 400:
        assert isinstance(reply.body, dict) and reply.body.get("kind") == "Status", reply.body
        assert reply.body["code"] == reply.status


@FUZZ
@given(obj=wrong_types())
async def test_wrong_types_are_rejected_or_accepted_never_crash(api: Api, obj: dict[str, Any]) -> None:
    collection = CONFIGMAPS if obj.get("kind") == "ConfigMap" else PODS
    reply = await api.request("POST", collection, raw=_dumps(obj))
    assert reply.status < 500, (reply.status, reply.body)
    if reply.status == 201:
        name = reply.body["metadata"]["name"]
        assert (await api.get(f"{collection}/{name}")).body == reply.body
        await api.delete(f"{collection}/{name}?gracePeriodSeconds=0")
    else:
        assert reply.status in (400, 404, 409, 422), reply.body
        assert reply.body["kind"] == "Status"


# ---------------------------------------------------------------- schemathesis


@pytest.fixture
async def openapi_v1(api: Api) -> dict[str, Any]:
    reply = await api.get("/openapi/v3/api/v1")
    assert reply.status == 200
    return reply.body


def _operations(document: dict[str, Any]) -> list[Any]:
    """The ConfigMap and Pod operations of the document (collection, item, subresources)."""
    import schemathesis

    schema = schemathesis.openapi.from_dict(document)
    wanted = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith(("/api/v1/namespaces/{namespace}/configmaps",
                                      "/api/v1/namespaces/{namespace}/pods")):
            wanted.append(operation)
    return wanted


async def test_schemathesis_configmap_and_pod_operations(api_server: ApiServer,
                                                         openapi_v1: dict[str, Any]) -> None:
    import asyncio

    operations = _operations(openapi_v1)
    paths = {(op.method.upper(), op.path) for op in operations}
    assert ("POST", "/api/v1/namespaces/{namespace}/configmaps") in paths
    assert ("PATCH", "/api/v1/namespaces/{namespace}/pods/{name}/status") in paths
    failures, calls = await asyncio.to_thread(_run_schemathesis, operations, api_server.url)
    assert not failures, "\n".join(failures)
    assert calls >= 2 * len(operations)


def _run_schemathesis(operations: list[Any], base_url: str) -> tuple[list[str], int]:
    """At most 5 generated requests per operation, checked with ``not_a_server_error``."""
    import requests
    from hypothesis import given as hgiven
    from hypothesis import settings as hsettings
    from schemathesis.checks import not_a_server_error

    failures: list[str] = []
    calls = 0
    with requests.Session() as session:
        for operation in operations:

            @hsettings(max_examples=5, deadline=None, derandomize=True, database=None,
                       suppress_health_check=list(HealthCheck))
            @hgiven(case=operation.as_strategy())
            def check(case: Any) -> None:
                nonlocal calls
                calls += 1
                if case.path_parameters and "namespace" in case.path_parameters:
                    case.path_parameters["namespace"] = "default"  # an existing namespace
                if case.query is not None and ("watch" in case.query or "follow" in case.query):
                    case.query["timeoutSeconds"] = 1  # watches end; no following a log forever
                    case.query.pop("follow", None)
                try:
                    case.call_and_validate(base_url=base_url, session=session,
                                           checks=[not_a_server_error], timeout=10)
                except Exception as exc:  # collected: one report for every operation
                    failures.append(f"{case.method} {case.formatted_path}: {exc}"[:600])

            check()
    return failures, calls
