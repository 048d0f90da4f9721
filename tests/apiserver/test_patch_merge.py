"""JSON merge patch (RFC 7386) and the create_merge_patch helper."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kcore.apiserver.patch import ANY, apply_merge_patch, apply_strategic_merge_patch, create_merge_patch

# RFC 7386 appendix A, verbatim.
RFC_CASES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


def test_rfc7386_examples() -> None:
    for original, patch, expected in RFC_CASES:
        assert apply_merge_patch(original, patch) == expected, (original, patch)


def test_kubectl_label_and_annotate_patches() -> None:
    pod = {"metadata": {"name": "p", "labels": {"app": "web", "tier": "fe"}, "annotations": {"a": "1"}}}
    # kubectl label pod p tier- env=prod
    out = apply_merge_patch(pod, {"metadata": {"labels": {"tier": None, "env": "prod"}}})
    assert out["metadata"]["labels"] == {"app": "web", "env": "prod"}
    assert out["metadata"]["annotations"] == {"a": "1"}
    # kubectl scale sends a merge patch on the scale subresource
    scale = {"spec": {"replicas": 1}, "status": {"replicas": 1}}
    assert apply_merge_patch(scale, {"spec": {"replicas": 5}}) == {"spec": {"replicas": 5}, "status": {"replicas": 1}}


def test_merge_patch_does_not_mutate_or_alias() -> None:
    original = {"a": {"b": [1, {"c": 2}]}, "d": {"e": 1}}
    patch = {"d": {"f": [1]}}
    snapshot = copy.deepcopy(original), copy.deepcopy(patch)
    out = apply_merge_patch(original, patch)
    assert (original, patch) == snapshot
    out["a"]["b"][1]["c"] = 99
    out["d"]["f"].append(2)
    assert (original, patch) == snapshot


def test_create_merge_patch_minimal() -> None:
    original = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]}
    modified = {"a": 1, "b": {"c": 5}, "e": [1, 2, 3], "f": True}
    patch = create_merge_patch(original, modified)
    assert patch == {"b": {"c": 5, "d": None}, "e": [1, 2, 3], "f": True}
    assert create_merge_patch(original, original) == {}
    assert apply_merge_patch(original, patch) == modified


scalars = st.one_of(st.booleans(), st.integers(-5, 5), st.text(max_size=3), st.floats(allow_nan=False, allow_infinity=False))
keys = st.text(alphabet="abcdef", min_size=1, max_size=3)
json_no_null = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)
json_with_null = st.recursive(
    st.none() | scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(st.dictionaries(keys, json_with_null, max_size=5), st.dictionaries(keys, json_no_null, max_size=5))
def test_diff_then_merge_reproduces_target(original: dict[str, Any], modified: dict[str, Any]) -> None:
    before = copy.deepcopy(original)
    patch = create_merge_patch(original, modified)
    assert apply_merge_patch(original, patch) == modified
    assert original == before


@settings(max_examples=300)
@given(st.dictionaries(keys, json_with_null, max_size=5), st.dictionaries(keys, json_with_null, max_size=5))
def test_strategic_merge_without_schema_is_merge_patch(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """With no list strategies known, strategic merge patch degenerates to RFC 7386."""
    assert apply_strategic_merge_patch(original, patch, ANY) == apply_merge_patch(original, patch)
