"""JSON patch (RFC 6902)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kcore.apiserver.patch import PatchError, apply_json_patch


def test_add_replace_remove_on_objects_and_arrays() -> None:
    doc = {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "c1"}]}}
    out = apply_json_patch(
        doc,
        [
            {"op": "add", "path": "/metadata/labels/b", "value": "2"},
            {"op": "replace", "path": "/metadata/labels/a", "value": "x"},
            {"op": "add", "path": "/spec/containers/-", "value": {"name": "c3"}},
            {"op": "add", "path": "/spec/containers/1", "value": {"name": "c2"}},
            {"op": "remove", "path": "/spec/containers/0"},
        ],
    )
    assert out == {"metadata": {"labels": {"a": "x", "b": "2"}}, "spec": {"containers": [{"name": "c2"}, {"name": "c3"}]}}
    assert doc == {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "c1"}]}}


def test_pointer_escaping() -> None:
    doc = {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "t0", "a~b": 1}}}
    out = apply_json_patch(
        doc,
        [
            {"op": "replace", "path": "/metadata/annotations/kubectl.kubernetes.io~1restartedAt", "value": "t1"},
            {"op": "remove", "path": "/metadata/annotations/a~0b"},
            {"op": "add", "path": "/metadata/annotations/~01", "value": "tilde-one"},
        ],
    )
    assert out["metadata"]["annotations"] == {"kubectl.kubernetes.io/restartedAt": "t1", "~1": "tilde-one"}


def test_move_copy_test() -> None:
    doc = {"a": {"b": 1}, "c": [1, 2]}
    out = apply_json_patch(
        doc,
        [
            {"op": "test", "path": "/a/b", "value": 1},
            {"op": "copy", "from": "/a", "path": "/d"},
            {"op": "move", "from": "/c/0", "path": "/c/-"},
            {"op": "move", "from": "/a/b", "path": "/e"},
        ],
    )
    assert out == {"a": {}, "c": [2, 1], "d": {"b": 1}, "e": 1}
    copied = apply_json_patch({"a": {"b": [1]}}, [{"op": "copy", "from": "/a", "path": "/z"}])
    copied["z"]["b"].append(2)
    assert copied["a"] == {"b": [1]}


def test_whole_document_ops() -> None:
    assert apply_json_patch({"a": 1}, [{"op": "replace", "path": "", "value": [1]}]) == [1]
    assert apply_json_patch({"a": 1}, [{"op": "add", "path": "", "value": {"b": 2}}]) == {"b": 2}


@pytest.mark.parametrize(
    ("ops", "fragment"),
    [
        ([{"op": "remove", "path": "/metadata/missing"}], 'operation 0 (remove "/metadata/missing")'),
        ([{"op": "replace", "path": "/nope/x", "value": 1}], 'key "nope" does not exist'),
        ([{"op": "add", "path": "/list/5", "value": 1}], "out of bounds"),
        ([{"op": "add", "path": "/list/01", "value": 1}], "not a valid array index"),
        ([{"op": "remove", "path": "/list/-"}], "not a valid array index"),
        ([{"op": "test", "path": "/metadata/name", "value": "other"}], "test failed"),
        ([{"op": "test", "path": "/flag", "value": 1}], "test failed"),
        ([{"op": "frobnicate", "path": "/a"}], "unknown op 'frobnicate'"),
        ([{"op": "add", "value": 1}], 'missing "path"'),
        ([{"op": "add", "path": "/a"}], 'missing "value"'),
        ([{"op": "move", "path": "/a"}], 'missing "from"'),
        ([{"op": "move", "from": "/metadata", "path": "/metadata/x"}], "its own child"),
        ([{"op": "add", "path": "metadata", "value": 1}], 'must be empty or start with "/"'),
        ([{"op": "add", "path": "/metadata/name/x", "value": 1}], "not an object or array"),
        ("not a list", "must be a list of operations"),
        (["nope"], "operation 0 is not an object"),
    ],
)
def test_errors_name_the_operation_and_path(ops: Any, fragment: str) -> None:
    doc = {"metadata": {"name": "n"}, "list": [1], "flag": True}
    with pytest.raises(PatchError) as info:
        apply_json_patch(doc, ops)
    assert fragment in str(info.value)
    assert doc == {"metadata": {"name": "n"}, "list": [1], "flag": True}


def test_failure_is_atomic() -> None:
    doc = {"a": 1}
    with pytest.raises(PatchError, match="operation 1"):
        apply_json_patch(doc, [{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/zzz"}])
    assert doc == {"a": 1}


def _pointers(doc: Any, prefix: str = "") -> list[str]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _pointers(v, f"{prefix}/{k.replace('~', '~0').replace('/', '~1')}")
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _pointers(v, f"{prefix}/{i}")
        out.append(f"{prefix}/-")
    return out


values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=2),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text("ab/~", max_size=2), inner, max_size=3),
    max_leaves=12,
)


@st.composite
def doc_and_ops(draw: st.DrawFn) -> tuple[Any, list[dict[str, Any]]]:
    doc = draw(st.dictionaries(st.text("ab/~", max_size=2), values, max_size=4))
    pointers = _pointers(doc) + ["/zz", "/a/b/c"]
    ops = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["add", "remove", "replace", "move", "copy", "test"]))
        op: dict[str, Any] = {"op": kind, "path": draw(st.sampled_from(pointers))}
        if kind in ("add", "replace", "test"):
            op["value"] = draw(values)
        if kind in ("move", "copy"):
            op["from"] = draw(st.sampled_from(pointers))
        ops.append(op)
    return doc, ops


@settings(max_examples=400)
@given(doc_and_ops())
def test_json_patch_never_mutates_input(case: tuple[Any, list[dict[str, Any]]]) -> None:
    doc, ops = case
    doc_before, ops_before = copy.deepcopy(doc), copy.deepcopy(ops)
    try:
        out = apply_json_patch(doc, ops)
    except PatchError:
        out = None
    assert doc == doc_before
    assert ops == ops_before
    # The result shares nothing mutable with the inputs: scribbling on it changes neither.
    _scribble(out)
    assert doc == doc_before
    assert ops == ops_before


def _scribble(value: Any) -> None:
    if isinstance(value, dict):
        for v in list(value.values()):
            _scribble(v)
        value["scribbled"] = True
    elif isinstance(value, list):
        for v in list(value):
            _scribble(v)
        value.append("scribbled")


@settings(max_examples=200)
@given(st.dictionaries(st.text("ab/~", max_size=2), values, max_size=4), st.text("ab/~", min_size=1, max_size=3), values)
def test_add_then_remove_round_trips(doc: dict[str, Any], key: str, value: Any) -> None:
    pointer = "/" + key.replace("~", "~0").replace("/", "~1")
    doc.pop(key, None)
    added = apply_json_patch(doc, [{"op": "add", "path": pointer, "value": value}])
    assert added[key] == value
    assert apply_json_patch(added, [{"op": "remove", "path": pointer}]) == doc
