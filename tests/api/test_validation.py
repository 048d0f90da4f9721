"""Validation primitives: Kubernetes' rules, field paths and message wording."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kcore.api.meta import LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference
from kcore.api.validation import (
    DUPLICATE,
    FORBIDDEN,
    INVALID,
    NOT_SUPPORTED,
    REQUIRED,
    TOO_LONG,
    TYPE_INVALID,
    FieldError,
    ObjectValidationError,
    child,
    duplicate,
    forbidden,
    index,
    invalid,
    is_c_identifier,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_env_var_name,
    is_qualified_name,
    is_valid_cidr,
    is_valid_ip,
    is_valid_label_value,
    is_valid_port_name,
    is_valid_port_num,
    key,
    mask_trailing_dash,
    not_supported,
    required,
    too_long,
    type_invalid,
    validate_annotations,
    validate_label_selector,
    validate_labels,
    validate_object_meta,
    validate_quantity_nonnegative,
)

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QNAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


# --- string formats ---------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["a", "0", "example.com", "a-b.c-d", "1.2.3.4", "a" * 253, ".".join(["a" * 63] * 3 + ["a" * 61])],
)
def test_dns1123_subdomain_valid(value: str) -> None:
    assert is_dns1123_subdomain(value) == []


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("", [SUBDOMAIN_MSG]),
        ("Foo", [SUBDOMAIN_MSG]),
        ("-a", [SUBDOMAIN_MSG]),
        ("a-", [SUBDOMAIN_MSG]),
        ("a..b", [SUBDOMAIN_MSG]),
        (".a", [SUBDOMAIN_MSG]),
        ("a_b", [SUBDOMAIN_MSG]),
        ("a\n", [SUBDOMAIN_MSG]),
        ("a" * 254, ["must be no more than 253 characters"]),
        ("A" * 254, ["must be no more than 253 characters", SUBDOMAIN_MSG]),
    ],
)
def test_dns1123_subdomain_invalid(value: str, errors: list[str]) -> None:
    assert is_dns1123_subdomain(value) == errors


@pytest.mark.parametrize("value", ["a", "my-name", "123-abc", "a" * 63, "0"])
def test_dns1123_label_valid(value: str) -> None:
    assert is_dns1123_label(value) == []


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("a.b", ["must not contain dots"]),
        ("", [LABEL_MSG]),
        ("My-name", [LABEL_MSG]),
        ("a-", [LABEL_MSG]),
        ("a" * 64, ["must be no more than 63 characters"]),
        ("a." * 40 + "a", ["must be no more than 63 characters", "must not contain dots"]),
    ],
)
def test_dns1123_label_invalid(value: str, errors: list[str]) -> None:
    assert is_dns1123_label(value) == errors


@pytest.mark.parametrize("value", ["a", "my-svc", "abc-123", "a" * 63])
def test_dns1035_label_valid(value: str) -> None:
    assert is_dns1035_label(value) == []


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("1abc", [DNS1035_MSG]),
        ("", [DNS1035_MSG]),
        ("a.b", [DNS1035_MSG]),
        ("abc-", [DNS1035_MSG]),
        ("a" * 64, ["must be no more than 63 characters"]),
    ],
)
def test_dns1035_label_invalid(value: str, errors: list[str]) -> None:
    assert is_dns1035_label(value) == errors


@pytest.mark.parametrize(
    "value",
    [
        "app",
        "MyName",
        "my.name",
        "123-abc",
        "a_b",
        "app.kubernetes.io/name",
        "example.com/MyName",
        "a" * 63,
        "p" * 253 + "/" + "n" * 63,
    ],
)
def test_qualified_name_valid(value: str) -> None:
    assert is_qualified_name(value) == []


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("", ["name part must be non-empty", QNAME_MSG]),
        ("a b", [QNAME_MSG]),
        ("-a", [QNAME_MSG]),
        ("a.", [QNAME_MSG]),
        ("a" * 64, ["name part must be no more than 63 characters"]),
        ("/a", ["prefix part must be non-empty"]),
        ("a/", ["name part must be non-empty", QNAME_MSG]),
        ("Example.com/a", ["prefix part " + SUBDOMAIN_MSG]),
        ("p" * 254 + "/a", ["prefix part must be no more than 253 characters"]),
    ],
)
def test_qualified_name_invalid(value: str, errors: list[str]) -> None:
    assert is_qualified_name(value) == errors


def test_qualified_name_with_two_slashes() -> None:
    assert is_qualified_name("a/b/c") == [
        "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and "
        "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
        "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain "
        "prefix and '/' (e.g. 'example.com/MyName')"
    ]


@pytest.mark.parametrize("value", ["", "v", "MyValue", "my_value", "12345", "a.b-c_d", "a" * 63])
def test_label_value_valid(value: str) -> None:
    assert is_valid_label_value(value) == []


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("a b", [LABEL_VALUE_MSG]),
        ("-a", [LABEL_VALUE_MSG]),
        ("a/b", [LABEL_VALUE_MSG]),
        ("a" * 64, ["must be no more than 63 characters"]),
    ],
)
def test_label_value_invalid(value: str, errors: list[str]) -> None:
    assert is_valid_label_value(value) == errors


@pytest.mark.parametrize(("port", "ok"), [(1, True), (80, True), (65535, True), (0, False), (65536, False), (-1, False)])
def test_port_num(port: int, ok: bool) -> None:
    assert is_valid_port_num(port) == ([] if ok else ["must be between 1 and 65535, inclusive"])


def test_port_num_rejects_bool() -> None:
    assert is_valid_port_num(True) != []


@pytest.mark.parametrize("name", ["http", "a", "web-8080", "h2c", "a" * 15, "x-1-y"])
def test_port_name_valid(name: str) -> None:
    assert is_valid_port_name(name) == []


@pytest.mark.parametrize(
    ("name", "errors"),
    [
        ("a" * 16, ["must be no more than 15 characters"]),
        ("HTTP", [
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            "must contain at least one letter (a-z)",
        ]),
        ("8080", ["must contain at least one letter (a-z)"]),
        ("a--b", ["must not contain consecutive hyphens"]),
        ("-a", ["must not begin or end with a hyphen"]),
        ("a-", ["must not begin or end with a hyphen"]),
        ("a_b", ["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"]),
        ("", [
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            "must contain at least one letter (a-z)",
        ]),
    ],
)
def test_port_name_invalid(name: str, errors: list[str]) -> None:
    assert is_valid_port_name(name) == errors


ENV_MSG = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or "
    "'.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', "
    "regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')"
)


@pytest.mark.parametrize("name", ["PATH", "_x", "my.env-name", "MY_ENV.NAME", "MyEnvName1", "-x", ".x", "a..b"])
def test_env_var_name_valid(name: str) -> None:
    assert is_env_var_name(name) == []
    assert is_c_identifier(name) == []


@pytest.mark.parametrize(
    ("name", "errors"),
    [
        ("1ABC", [ENV_MSG]),
        ("", [ENV_MSG]),
        ("A B", [ENV_MSG]),
        ("A=B", [ENV_MSG]),
        (".", ["must not be '.'"]),
        ("..", ["must not be '..'"]),
        ("..x", ["must not start with '..'"]),
    ],
)
def test_env_var_name_invalid(name: str, errors: list[str]) -> None:
    assert is_env_var_name(name) == errors
    assert is_c_identifier(name) == errors


IP_MSG = ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
CIDR_MSG = ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]


@pytest.mark.parametrize("ip", ["10.9.8.7", "0.0.0.0", "255.255.255.255", "::", "::1", "2001:db8::ffff", "::ffff:1.2.3.4"])
def test_ip_valid(ip: str) -> None:
    assert is_valid_ip(ip) == []


@pytest.mark.parametrize("ip", ["", "1.2.3", "256.1.1.1", "1.2.3.4.5", "a.b.c.d", "fe80::1%eth0", " 1.2.3.4", "1.2.3.4/32", "::g"])
def test_ip_invalid(ip: str) -> None:
    assert is_valid_ip(ip) == IP_MSG


@pytest.mark.parametrize("cidr", ["10.9.8.0/24", "10.0.0.1/24", "0.0.0.0/0", "1.2.3.4/32", "2001:db8::/64", "::/0"])
def test_cidr_valid(cidr: str) -> None:
    assert is_valid_cidr(cidr) == []


@pytest.mark.parametrize(
    "cidr", ["", "10.0.0.0", "10.0.0.0/33", "10.0.0.0/", "/24", "2001:db8::/129", "10.0.0.0/255.255.255.0", "10.0.0.0/-1", "x/8"]
)
def test_cidr_invalid(cidr: str) -> None:
    assert is_valid_cidr(cidr) == CIDR_MSG


@given(st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True))
def test_every_dns_label_is_a_subdomain_and_a_qualified_name(label: str) -> None:
    assert is_dns1123_label(label) == []
    assert is_dns1123_subdomain(label) == []
    assert is_qualified_name(label) == []
    assert is_valid_label_value(label) == []


@given(st.text(max_size=80))
def test_label_rule_agrees_with_subdomain_rule(value: str) -> None:
    # A label is exactly a subdomain without dots, at most 63 characters.
    is_label = is_dns1123_label(value) == []
    assert is_label == (is_dns1123_subdomain(value) == [] and "." not in value and len(value) <= 63)


# --- field errors -------------------------------------------------------------------


def test_field_error_bodies_match_kubernetes() -> None:
    assert str(required("spec.containers[0].image")) == "spec.containers[0].image: Required value"
    assert required("metadata.name", "name or generateName is required").message == (
        "Required value: name or generateName is required"
    )
    assert invalid("metadata.name", "Foo", "bad").message == 'Invalid value: "Foo": bad'
    assert invalid("spec.replicas", -1, "must be greater than or equal to 0").message == (
        "Invalid value: -1: must be greater than or equal to 0"
    )
    assert invalid("spec.x", None, "d").message == "Invalid value: null: d"
    assert invalid("spec.x", True, "d").message == "Invalid value: true: d"
    assert invalid("spec.x", 'a"b', "d").message == 'Invalid value: "a\\"b": d'
    assert not_supported("spec.restartPolicy", "Sometimes", ["Always", "OnFailure", "Never"]).message == (
        'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'
    )
    assert too_long("metadata.annotations", "", 262144).message == "Too long: must have at most 262144 bytes"
    assert duplicate("spec.ports[1].name", "http").message == 'Duplicate value: "http"'
    assert forbidden("metadata.namespace", "not allowed on this type").message == (
        "Forbidden: not allowed on this type"
    )
    assert type_invalid("spec.x", "a", "must be an integer").message == 'Invalid value: "a": must be an integer'


def test_field_error_types_are_cause_reasons() -> None:
    assert required("a").type == REQUIRED == "FieldValueRequired"
    assert invalid("a", 1).type == INVALID == "FieldValueInvalid"
    assert not_supported("a", 1, []).type == NOT_SUPPORTED == "FieldValueNotSupported"
    assert too_long("a", "", 1).type == TOO_LONG == "FieldValueTooLong"
    assert duplicate("a", 1).type == DUPLICATE == "FieldValueDuplicate"
    assert forbidden("a", "x").type == FORBIDDEN == "FieldValueForbidden"
    assert type_invalid("a", 1, "x").type == TYPE_INVALID == "FieldValueTypeInvalid"


def test_field_error_is_a_frozen_value() -> None:
    err = FieldError(REQUIRED, "spec.containers[0].image", "Required value")
    assert str(err) == "spec.containers[0].image: Required value"
    assert err == required("spec.containers[0].image")
    with pytest.raises(AttributeError):
        err.field = "x"  # type: ignore[misc]
    cause = err.to_cause().to_dict()
    assert cause == {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers[0].image"}


def test_paths() -> None:
    assert child("spec", "template", "spec") == "spec.template.spec"
    assert child("", "metadata") == "metadata"
    assert index(child("spec", "containers"), 0) == "spec.containers[0]"
    assert key("metadata.labels", "app.kubernetes.io/name") == "metadata.labels[app.kubernetes.io/name]"


def test_object_validation_error_single_error_has_no_brackets() -> None:
    err = ObjectValidationError("Pod", "x", [required("spec.containers[0].image")])
    assert str(err) == 'Pod "x" is invalid: spec.containers[0].image: Required value'


def test_object_validation_error_many_errors_and_group() -> None:
    errors = [
        required("spec.containers[0].image"),
        invalid("metadata.name", "Foo", "bad"),
        required("spec.containers[0].image"),  # shown once, like an Aggregate
    ]
    err = ObjectValidationError("Deployment", "web", errors, group="apps")
    assert str(err) == (
        'Deployment.apps "web" is invalid: '
        '[spec.containers[0].image: Required value, metadata.name: Invalid value: "Foo": bad]'
    )
    assert err.errors == errors
    assert isinstance(err, Exception)


def test_object_validation_error_without_name_or_errors() -> None:
    assert str(ObjectValidationError("Pod", None, [])) == 'Pod "" is invalid'


def test_object_validation_error_status() -> None:
    err = ObjectValidationError("Pod", "x", [required("spec.containers"), invalid("metadata.name", "X", "bad")])
    status = err.to_status().to_dict()
    assert status["code"] == 422
    assert status["reason"] == "Invalid"
    assert status["status"] == "Failure"
    assert status["message"] == str(err)
    assert status["details"]["kind"] == "Pod"
    assert status["details"]["name"] == "x"
    assert status["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"},
        {"reason": "FieldValueInvalid", "message": 'Invalid value: "X": bad', "field": "metadata.name"},
    ]


# --- labels, annotations ----------------------------------------------------------------


def test_validate_labels() -> None:
    assert validate_labels(None, "metadata.labels") == []
    assert validate_labels({"app.kubernetes.io/name": "web", "tier": ""}, "metadata.labels") == []
    errs = validate_labels({"a b": "ok", "k": "-bad"}, "metadata.labels")
    assert [(e.type, e.field, e.value) for e in errs] == [
        (INVALID, "metadata.labels", "a b"),
        (INVALID, "metadata.labels", "-bad"),
    ]
    assert errs[0].message == 'Invalid value: "a b": ' + QNAME_MSG
    assert errs[1].message == 'Invalid value: "-bad": ' + LABEL_VALUE_MSG


def test_validate_annotations_keys_are_case_insensitive() -> None:
    assert validate_annotations({"Example.COM/Some-Key": "anything at all / \n"}, "metadata.annotations") == []
    errs = validate_annotations({"bad key": "v"}, "metadata.annotations")
    assert [str(e) for e in errs] == ['metadata.annotations: Invalid value: "bad key": ' + QNAME_MSG]


def test_validate_annotations_total_size() -> None:
    limit = 256 * 1024
    assert validate_annotations({"k": "v" * (limit - 1)}, "metadata.annotations") == []
    errs = validate_annotations({"k": "v" * limit}, "metadata.annotations")
    assert [str(e) for e in errs] == ["metadata.annotations: Too long: must have at most 262144 bytes"]
    assert errs[0].type == TOO_LONG
    # Bytes, not characters.
    assert validate_annotations({"k": "é" * (limit // 2)}, "metadata.annotations") != []


# --- object meta ------------------------------------------------------------------------


def _paths(errors: list[FieldError]) -> list[tuple[str, str]]:
    return [(e.type, e.field) for e in errors]


def test_object_meta_valid() -> None:
    meta = ObjectMeta(
        name="web-0",
        namespace="default",
        labels={"app": "web"},
        annotations={"kubernetes.io/description": "x"},
        finalizers=["example.com/cleanup", "foregroundDeletion"],
        ownerReferences=[OwnerReference(apiVersion="apps/v1", kind="ReplicaSet", name="web", uid="u1", controller=True)],
        generation=1,
        deletionGracePeriodSeconds=0,
    )
    assert validate_object_meta(meta, namespaced=True) == []


def test_object_meta_name_or_generate_name_required() -> None:
    errs = validate_object_meta(ObjectMeta(namespace="default"), namespaced=True)
    assert [str(e) for e in errs] == ["metadata.name: Required value: name or generateName is required"]
    assert validate_object_meta(ObjectMeta(generateName="web-", namespace="default"), namespaced=True) == []
    assert validate_object_meta(None, namespaced=False)[0].field == "metadata.name"


@pytest.mark.parametrize(("prefix", "ok"), [("web-", True), ("web", True), ("w", True), ("-", False), ("Web-", False), ("web--", True), ("web.-", True), ("web..-", False)])
def test_object_meta_generate_name_is_a_prefix(prefix: str, ok: bool) -> None:
    errs = validate_object_meta(ObjectMeta(generateName=prefix), namespaced=False)
    assert (errs == []) is ok
    if not ok:
        assert errs[0].field == "metadata.generateName"
        assert errs[0].value == prefix


def test_mask_trailing_dash() -> None:
    assert mask_trailing_dash("web-") == "weba"
    assert mask_trailing_dash("-") == "-"
    assert mask_trailing_dash("web") == "web"


def test_object_meta_name_and_custom_validator() -> None:
    errs = validate_object_meta(ObjectMeta(name="Web", namespace="default"), namespaced=True)
    assert [str(e) for e in errs] == ['metadata.name: Invalid value: "Web": ' + SUBDOMAIN_MSG]
    errs = validate_object_meta(
        ObjectMeta(name="1svc", namespace="default"), namespaced=True, name_validator=is_dns1035_label
    )
    assert [str(e) for e in errs] == ['metadata.name: Invalid value: "1svc": ' + DNS1035_MSG]
    assert validate_object_meta(ObjectMeta(name="a.b", namespace="default"), namespaced=True) == []


def test_object_meta_namespace_rules() -> None:
    assert _paths(validate_object_meta(ObjectMeta(name="a"), namespaced=True)) == [(REQUIRED, "metadata.namespace")]
    errs = validate_object_meta(ObjectMeta(name="a", namespace="a.b"), namespaced=True)
    assert [str(e) for e in errs] == ['metadata.namespace: Invalid value: "a.b": must not contain dots']
    errs = validate_object_meta(ObjectMeta(name="a", namespace="default"), namespaced=False)
    assert [str(e) for e in errs] == ["metadata.namespace: Forbidden: not allowed on this type"]


def test_object_meta_nonnegative_numbers() -> None:
    meta = ObjectMeta(name="a", generation=-1, deletionGracePeriodSeconds=-5)
    errs = validate_object_meta(meta, namespaced=False)
    assert [str(e) for e in errs] == [
        "metadata.generation: Invalid value: -1: must be greater than or equal to 0",
        "metadata.deletionGracePeriodSeconds: Invalid value: -5: must be greater than or equal to 0",
    ]


def test_object_meta_labels_annotations_and_custom_path() -> None:
    meta = ObjectMeta(name="a", labels={"a b": "c"}, annotations={"x/y/z": ""})
    errs = validate_object_meta(meta, namespaced=False, path="spec.template.metadata")
    assert _paths(errs) == [
        (INVALID, "spec.template.metadata.labels"),
        (INVALID, "spec.template.metadata.annotations"),
    ]


def test_object_meta_owner_references() -> None:
    refs = [
        OwnerReference(apiVersion="", kind="", name="", uid=""),
        OwnerReference(apiVersion="apps/v1", kind="ReplicaSet", name="a", uid="1", controller=True),
        OwnerReference(apiVersion="apps/v1", kind="StatefulSet", name="b", uid="2", controller=True),
        OwnerReference(apiVersion="v1", kind="Event", name="e", uid="3"),
        OwnerReference(apiVersion="a/b/c", kind="K", name="n", uid="4"),
    ]
    errs = validate_object_meta(ObjectMeta(name="a", ownerReferences=refs), namespaced=False)
    p = "metadata.ownerReferences"
    assert [str(e) for e in errs] == [
        f'{p}.apiVersion: Invalid value: "": version must not be empty',
        f'{p}.kind: Invalid value: "": kind must not be empty',
        f'{p}.name: Invalid value: "": name must not be empty',
        f'{p}.uid: Invalid value: "": uid must not be empty',
        errs[4].field + ": " + errs[4].message,
        errs[5].field + ": " + errs[5].message,
        f'{p}.apiVersion: Invalid value: "a/b/c": version must not be empty',
    ]
    assert errs[4].field == p
    assert errs[4].message.endswith(
        'Only one reference can have Controller set to true. Found "true" in references for '
        "ReplicaSet/a and StatefulSet/b"
    )
    assert errs[5].message.endswith("/v1, Kind=Event is disallowed from being an owner")


def test_object_meta_finalizers() -> None:
    errs = validate_object_meta(ObjectMeta(name="a", finalizers=["ok/x", "bad name"]), namespaced=False)
    assert [str(e) for e in errs] == ['metadata.finalizers: Invalid value: "bad name": ' + QNAME_MSG]
    errs = validate_object_meta(ObjectMeta(name="a", finalizers=["orphan", "foregroundDeletion"]), namespaced=False)
    assert [e.message for e in errs] == [
        'Invalid value: ["orphan", "foregroundDeletion"]: finalizer orphan and foregroundDeletion cannot be both set'
    ]


# --- label selectors ------------------------------------------------------------------


def _req(key: str, operator: str, values: list[str] | None = None) -> LabelSelectorRequirement:
    return LabelSelectorRequirement(key=key, operator=operator, values=values)


def test_label_selector_valid() -> None:
    selector = LabelSelector(
        matchLabels={"app": "web"},
        matchExpressions=[
            _req("tier", "In", ["a", "b"]),
            _req("env", "NotIn", ["prod"]),
            _req("x", "Exists"),
            _req("y", "DoesNotExist", []),
        ],
    )
    assert validate_label_selector(selector, "spec.selector") == []
    assert validate_label_selector(None, "spec.selector") == []
    assert validate_label_selector(LabelSelector(), "spec.selector") == []


def test_label_selector_invalid() -> None:
    selector = LabelSelector(
        matchLabels={"app": "-web"},
        matchExpressions=[
            _req("tier", "In"),
            _req("x", "Exists", ["a"]),
            _req("bad key", "Equals", ["ok", "bad value"]),
        ],
    )
    errs = validate_label_selector(selector, "spec.selector")
    assert [str(e) for e in errs] == [
        'spec.selector.matchLabels: Invalid value: "-web": ' + LABEL_VALUE_MSG,
        "spec.selector.matchExpressions[0].values: Required value: "
        "must be specified when `operator` is 'In' or 'NotIn'",
        "spec.selector.matchExpressions[1].values: Forbidden: "
        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        'spec.selector.matchExpressions[2].operator: Invalid value: "Equals": not a valid selector operator',
        'spec.selector.matchExpressions[2].key: Invalid value: "bad key": ' + QNAME_MSG,
        'spec.selector.matchExpressions[2].values[1]: Invalid value: "bad value": ' + LABEL_VALUE_MSG,
    ]


# --- quantities --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "100m", "1.5Gi", "2e3", 3, 0.5])
def test_quantity_nonnegative_valid(value: str | int | float) -> None:
    assert validate_quantity_nonnegative(value, "spec.containers[0].resources.requests[cpu]") == []


def test_quantity_nonnegative_rejects_negative_with_canonical_value() -> None:
    errs = validate_quantity_nonnegative("-0.5", "spec.containers[0].resources.requests[cpu]")
    assert [str(e) for e in errs] == [
        'spec.containers[0].resources.requests[cpu]: Invalid value: "-500m": must be greater than or equal to 0'
    ]


def test_quantity_nonnegative_rejects_garbage() -> None:
    errs = validate_quantity_nonnegative("lots", "spec.hard[pods]")
    assert len(errs) == 1
    assert errs[0].type == INVALID
    assert errs[0].field == "spec.hard[pods]"
    assert "quantities must match the regular expression" in errs[0].message
