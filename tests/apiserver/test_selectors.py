"""Label and field selectors behave like Kubernetes' labels.Parse / fields.ParseSelector."""

from __future__ import annotations

import pytest

from kcore.apiserver.selectors import (
    SelectorError,
    check_field_selector,
    object_fields,
    parse_field_selector,
    parse_label_selector,
    selector_from_label_selector,
    selector_from_set,
    supported_field_labels,
)

WEB = {"app": "web", "tier": "frontend", "env": "prod"}
DB = {"app": "db", "env": "dev"}


@pytest.mark.parametrize(
    ("text", "web", "db", "none"),
    [
        ("", True, True, True),
        ("app=web", True, False, False),
        ("app==web", True, False, False),
        ("app!=web", False, True, True),
        ("app in (web,db)", True, True, False),
        ("app notin (web)", False, True, True),
        ("tier", True, False, False),
        ("!tier", False, True, True),
        ("app=web,env=prod", True, False, False),
        ("app=web,env=dev", False, False, False),
        ("  env in ( prod , dev ) , !tier ", False, True, False),
        ("app in (web,db),tier notin (backend)", True, True, False),
        ("env=", False, False, False),
    ],
)
def test_label_selector_matching(text: str, web: bool, db: bool, none: bool) -> None:
    sel = parse_label_selector(text)
    assert sel.matches(WEB) is web
    assert sel.matches(DB) is db
    assert sel.matches(None) is none


def test_empty_label_selector_is_empty() -> None:
    assert parse_label_selector("").is_empty()
    assert parse_label_selector(None).is_empty()
    assert not parse_label_selector("a").is_empty()


def test_prefixed_keys_and_gt_lt() -> None:
    sel = parse_label_selector("app.kubernetes.io/name=web,replicas>2")
    assert sel.matches({"app.kubernetes.io/name": "web", "replicas": "3"})
    assert not sel.matches({"app.kubernetes.io/name": "web", "replicas": "2"})
    assert parse_label_selector("n<5").matches({"n": "4"})
    assert not parse_label_selector("n<5").matches({"n": "x"})


def test_canonical_string_sorts_keys_and_values() -> None:
    assert str(parse_label_selector("b=2,a in (z,y),!c")) == "a in (y,z),b=2,!c"


@pytest.mark.parametrize(
    "text",
    ["app=web,", "app in web", "app in (web", "=web", "app=a=b", "app in ()", "-bad=x", "app=bad value", "a/b/c=x",
     "a>x", "app===x", "x,,y"],
)
def test_label_selector_errors(text: str) -> None:
    with pytest.raises(SelectorError, match="unable to parse requirement"):
        parse_label_selector(text)


def test_label_selector_error_names_what_was_expected() -> None:
    with pytest.raises(SelectorError) as exc:
        parse_label_selector("app in web")
    assert "found 'web', expected: '('" in str(exc.value)


def test_selector_from_api_label_selector() -> None:
    sel = selector_from_label_selector(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "staging"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "tier", "operator": "Exists"},
                {"key": "zone", "operator": "NotIn", "values": ["b"]},
            ],
        }
    )
    assert sel.matches(WEB)
    assert not sel.matches({**WEB, "canary": "1"})
    assert not sel.matches({**WEB, "env": "dev"})
    assert not sel.matches({**WEB, "zone": "b"})
    assert not sel.matches({"app": "web", "env": "prod"})  # tier missing
    assert str(sel) == "app=web,!canary,env in (prod,staging),tier,zone notin (b)"


def test_nil_and_empty_api_selector_match_everything() -> None:
    assert selector_from_label_selector(None).matches(DB)
    assert selector_from_label_selector({}).matches(None)
    assert selector_from_label_selector({"matchLabels": {}}).is_empty()


@pytest.mark.parametrize(
    "bad",
    [
        {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
        {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
        {"matchExpressions": [{"key": "a", "operator": "Like", "values": ["x"]}]},
        {"matchLabels": {"a": "not valid"}},
    ],
)
def test_invalid_api_selectors(bad: dict) -> None:
    with pytest.raises(SelectorError):
        selector_from_label_selector(bad)


def test_selector_from_set() -> None:
    sel = selector_from_set({"app": "web"})
    assert sel.matches(WEB) and not sel.matches(DB)
    assert selector_from_set(None).is_empty()


# --------------------------------------------------------------------- fields


def test_field_selector_operators() -> None:
    fields = {"metadata.name": "a", "spec.nodeName": "n1"}
    assert parse_field_selector("metadata.name=a").matches(fields)
    assert parse_field_selector("metadata.name==a").matches(fields)
    assert not parse_field_selector("metadata.name!=a").matches(fields)
    assert parse_field_selector("metadata.name=a,spec.nodeName=n1").matches(fields)
    assert not parse_field_selector("metadata.name=a,spec.nodeName=n2").matches(fields)
    assert parse_field_selector("spec.nodeName!=").matches(fields)
    assert parse_field_selector("status.podIP=").matches(fields)  # missing reads as ""
    assert parse_field_selector("").is_empty()


def test_field_selector_escapes_and_pinned_value() -> None:
    sel = parse_field_selector(r"metadata.name=a\,b,spec.nodeName=x\=y")
    assert sel.matches({"metadata.name": "a,b", "spec.nodeName": "x=y"})
    assert sel.requires_exact("metadata.name") == "a,b"
    assert parse_field_selector("metadata.name!=a").requires_exact("metadata.name") is None


@pytest.mark.parametrize("text", ["metadata.name", "=x", r"a=b\q"])
def test_field_selector_errors(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_field_selector(text)


def test_pod_fields() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"nodeName": "n1", "restartPolicy": "Always", "hostNetwork": True, "serviceAccountName": "sa",
                 "schedulerName": "default-scheduler"},
        "status": {"phase": "Running", "podIP": "10.0.0.1"},
    }
    f = object_fields("Pod", pod)
    assert f["metadata.name"] == "p" and f["metadata.namespace"] == "ns"
    assert f["spec.nodeName"] == "n1"
    assert f["spec.hostNetwork"] == "true"
    assert f["status.phase"] == "Running" and f["status.podIP"] == "10.0.0.1"
    assert f["status.nominatedNodeName"] == ""
    assert parse_field_selector("spec.nodeName=n1,status.phase!=Failed").matches(f)
    assert object_fields("Pod", {"metadata": {"name": "q"}})["spec.hostNetwork"] == "false"


def test_event_fields_like_kubectl_describe() -> None:
    ev = {
        "metadata": {"name": "e", "namespace": "ns"},
        "involvedObject": {"kind": "Pod", "namespace": "ns", "name": "p", "uid": "u1", "fieldPath": "spec.containers{c}"},
        "reason": "Pulled",
        "type": "Normal",
        "source": {"component": "kubelet"},
        "reportingComponent": "kubelet",
    }
    f = object_fields("Event", ev)
    sel = parse_field_selector("involvedObject.namespace=ns,involvedObject.uid=u1,involvedObject.name=p")
    assert sel.matches(f)
    assert f["source"] == "kubelet" and f["reportingComponent"] == "kubelet" and f["type"] == "Normal"
    assert f["involvedObject.fieldPath"] == "spec.containers{c}"
    assert object_fields("Event", {"reportingComponent": "ctl"})["source"] == "ctl"


def test_other_kind_fields() -> None:
    assert object_fields("Secret", {"type": "kubernetes.io/tls"})["type"] == "kubernetes.io/tls"
    assert object_fields("Node", {"spec": {"unschedulable": True}})["spec.unschedulable"] == "true"
    assert object_fields("Node", {})["spec.unschedulable"] == "false"
    assert object_fields("Namespace", {"status": {"phase": "Terminating"}})["status.phase"] == "Terminating"
    assert object_fields("ReplicaSet", {"status": {"replicas": 3}})["status.replicas"] == "3"
    assert object_fields("ReplicationController", {})["status.replicas"] == "0"
    assert object_fields("Job", {"status": {"succeeded": 2}})["status.successful"] == "2"
    assert set(object_fields("ConfigMap", {"metadata": {"name": "c"}})) == {"metadata.name", "metadata.namespace"}


def test_unsupported_field_label_is_rejected() -> None:
    check_field_selector("Pod", parse_field_selector("spec.nodeName=n1,metadata.name=x"))
    with pytest.raises(SelectorError, match=r"^field label not supported: spec\.foo$"):
        check_field_selector("Pod", parse_field_selector("spec.foo=x"))
    with pytest.raises(SelectorError, match="field label not supported: spec.nodeName"):
        check_field_selector("ConfigMap", parse_field_selector("spec.nodeName=x"))
    assert "involvedObject.uid" in supported_field_labels("Event")
