"""Server-side apply and managedFields bookkeeping."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kcore.api.apps_v1 import Deployment
from kcore.apiserver.patch import (
    ApplyConflictError,
    field_set,
    from_fields_v1,
    path_string,
    record_update,
    schema_for_model,
    server_side_apply,
    to_fields_v1,
)

SCHEMA = schema_for_model(Deployment)
T0, T1, T2, T3 = (f"2024-05-01T00:00:0{i}Z" for i in range(4))


def _config(replicas: int | None = 2, image: str = "nginx:1.25", env: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}
    if env:
        container["env"] = [{"name": "MODE", "value": "fast"}]
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": [container]}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": spec,
    }


def _entries(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["manager"]: e for e in obj["metadata"]["managedFields"]}


def _owns(obj: dict[str, Any], manager: str, *path: str) -> bool:
    entry = _entries(obj).get(manager)
    return entry is not None and tuple(path) in from_fields_v1(entry["fieldsV1"])


def test_apply_creates_with_managed_fields() -> None:
    obj = server_side_apply(None, _config(), "kubectl", force=False, schema=SCHEMA, now=T0)
    assert obj["spec"]["replicas"] == 2
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    (entry,) = obj["metadata"]["managedFields"]
    assert {k: entry[k] for k in ("manager", "operation", "apiVersion", "time", "fieldsType")} == {
        "manager": "kubectl",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "time": T0,
        "fieldsType": "FieldsV1",
    }
    fields = entry["fieldsV1"]
    assert fields["f:metadata"] == {"f:labels": {"f:app": {}}}
    assert "f:name" not in fields["f:metadata"] and "f:apiVersion" not in fields
    assert fields["f:spec"]["f:replicas"] == {}
    assert fields["f:spec"]["f:template"]["f:spec"]["f:containers"] == {
        'k:{"name":"nginx"}': {
            ".": {},
            "f:image": {},
            "f:name": {},
            "f:ports": {'k:{"containerPort":80}': {".": {}, "f:containerPort": {}}},
        }
    }


def test_apply_again_updates_changed_field() -> None:
    obj = server_side_apply(None, _config(), "kubectl", force=False, schema=SCHEMA, now=T0)
    obj["status"] = {"replicas": 2}  # written by a controller meanwhile
    obj2 = server_side_apply(obj, _config(image="nginx:1.26"), "kubectl", force=False, schema=SCHEMA, now=T1)
    assert obj2["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert obj2["status"] == {"replicas": 2}
    assert _entries(obj2)["kubectl"]["time"] == T1
    assert len(obj2["metadata"]["managedFields"]) == 1


def _scaled_by_other() -> dict[str, Any]:
    obj = server_side_apply(None, _config(), "kubectl", force=False, schema=SCHEMA, now=T0)
    scaled = copy.deepcopy(obj)
    scaled["spec"]["replicas"] = 5
    return record_update(obj, scaled, "kubectl-client-side-apply", schema=SCHEMA, now=T1)


def test_update_moves_ownership_to_the_writer() -> None:
    obj = _scaled_by_other()
    assert _owns(obj, "kubectl-client-side-apply", "f:spec", "f:replicas")
    assert not _owns(obj, "kubectl", "f:spec", "f:replicas")
    assert _owns(obj, "kubectl", "f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"nginx"}', "f:image")
    other = _entries(obj)["kubectl-client-side-apply"]
    assert other["operation"] == "Update" and other["time"] == T1
    assert other["fieldsV1"] == {"f:spec": {"f:replicas": {}}}


def test_conflicting_apply_is_rejected() -> None:
    obj = _scaled_by_other()
    with pytest.raises(ApplyConflictError) as info:
        server_side_apply(obj, _config(replicas=3), "kubectl", force=False, schema=SCHEMA, now=T2)
    assert info.value.conflicts == [(".spec.replicas", "kubectl-client-side-apply")]
    assert str(info.value) == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas'
    )


def test_forced_apply_takes_ownership() -> None:
    obj = _scaled_by_other()
    out = server_side_apply(obj, _config(replicas=3), "kubectl", force=True, schema=SCHEMA, now=T2)
    assert out["spec"]["replicas"] == 3
    assert _owns(out, "kubectl", "f:spec", "f:replicas")
    # The other manager owned nothing else, so its entry is gone.
    assert "kubectl-client-side-apply" not in _entries(out)


def test_apply_with_the_same_value_shares_ownership() -> None:
    obj = _scaled_by_other()
    out = server_side_apply(obj, _config(replicas=5), "kubectl", force=False, schema=SCHEMA, now=T2)
    assert _owns(out, "kubectl", "f:spec", "f:replicas")
    assert _owns(out, "kubectl-client-side-apply", "f:spec", "f:replicas")


def test_dropping_a_field_from_the_config_removes_it() -> None:
    obj = server_side_apply(None, _config(env=True), "kubectl", force=False, schema=SCHEMA, now=T0)
    assert obj["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "MODE", "value": "fast"}]
    out = server_side_apply(obj, _config(env=False, replicas=None), "kubectl", force=False, schema=SCHEMA, now=T1)
    container = out["spec"]["template"]["spec"]["containers"][0]
    assert container.get("env", []) == []
    assert "replicas" not in out["spec"]
    assert not _owns(out, "kubectl", "f:spec", "f:replicas")


def test_two_appliers_share_and_the_field_survives_one_dropping_it() -> None:
    obj = server_side_apply(None, _config(replicas=3), "alice", force=False, schema=SCHEMA, now=T0)
    bob_config = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"}, "spec": {"replicas": 3}}
    obj = server_side_apply(obj, bob_config, "bob", force=False, schema=SCHEMA, now=T1)
    assert _owns(obj, "alice", "f:spec", "f:replicas") and _owns(obj, "bob", "f:spec", "f:replicas")
    # Alice stops managing replicas: Bob still does, so the value stays.
    obj = server_side_apply(obj, _config(replicas=None), "alice", force=False, schema=SCHEMA, now=T2)
    assert obj["spec"]["replicas"] == 3
    assert not _owns(obj, "alice", "f:spec", "f:replicas") and _owns(obj, "bob", "f:spec", "f:replicas")
    # Bob changing it now is no conflict; Alice changing it back is.
    obj = server_side_apply(obj, {**bob_config, "spec": {"replicas": 4}}, "bob", force=False, schema=SCHEMA, now=T3)
    assert obj["spec"]["replicas"] == 4
    with pytest.raises(ApplyConflictError, match=r'conflict with "bob" using apps/v1: \.spec\.replicas'):
        server_side_apply(obj, _config(replicas=1), "alice", force=False, schema=SCHEMA, now=T3)


def test_dropping_a_container_removes_it_unless_another_manager_owns_part_of_it() -> None:
    config = _config()
    config["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    obj = server_side_apply(None, config, "kubectl", force=False, schema=SCHEMA, now=T0)
    out = server_side_apply(obj, _config(), "kubectl", force=False, schema=SCHEMA, now=T1)
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["nginx"]

    # If a controller set a field inside the sidecar, dropping it from the config
    # leaves the sidecar (with the controller's field) in place.
    touched = copy.deepcopy(obj)
    touched["spec"]["template"]["spec"]["containers"][1]["imagePullPolicy"] = "Always"
    touched = record_update(obj, touched, "controller", schema=SCHEMA, now=T1)
    out = server_side_apply(touched, _config(), "kubectl", force=False, schema=SCHEMA, now=T2)
    names = [c["name"] for c in out["spec"]["template"]["spec"]["containers"]]
    assert names == ["nginx", "sidecar"]
    assert out["spec"]["template"]["spec"]["containers"][1] == {"name": "sidecar", "imagePullPolicy": "Always"}


def test_multiple_conflicts_message() -> None:
    obj = server_side_apply(None, _config(), "kubectl", force=False, schema=SCHEMA, now=T0)
    changed = copy.deepcopy(obj)
    changed["spec"]["replicas"] = 9
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "other"
    changed = record_update(obj, changed, "kubectl-edit", schema=SCHEMA, now=T1)
    with pytest.raises(ApplyConflictError) as info:
        server_side_apply(changed, _config(), "kubectl", force=False, schema=SCHEMA, now=T2)
    assert str(info.value) == (
        "Apply failed with 2 conflicts:\n"
        'conflicts with "kubectl-edit" using apps/v1:\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="nginx"].image'
    )


def test_record_update_create_and_removal() -> None:
    created = record_update(None, _config(), "kubectl-create", schema=SCHEMA, now=T0)
    (entry,) = created["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl-create" and entry["operation"] == "Update"
    assert from_fields_v1(entry["fieldsV1"]) == field_set(_config(), SCHEMA) - {
        ("f:apiVersion",),
        ("f:kind",),
        ("f:metadata", "f:name"),
        ("f:metadata", "f:namespace"),
    }
    # Status writer on the status subresource gets its own entry.
    with_status = copy.deepcopy(created)
    with_status["status"] = {"replicas": 2}
    with_status = record_update(created, with_status, "kube-controller-manager", subresource="status", schema=SCHEMA, now=T1)
    status_entry = _entries(with_status)["kube-controller-manager"]
    assert status_entry["subresource"] == "status"
    assert status_entry["fieldsV1"] == {"f:status": {"f:replicas": {}}}
    # Removing a label takes it out of every set; no change leaves things alone.
    unlabeled = copy.deepcopy(with_status)
    del unlabeled["metadata"]["labels"]
    unlabeled = record_update(with_status, unlabeled, "someone", schema=SCHEMA, now=T2)
    assert "someone" not in _entries(unlabeled)
    assert not _owns(unlabeled, "kubectl-create", "f:metadata", "f:labels", "f:app")
    same = record_update(unlabeled, copy.deepcopy(unlabeled), "kubectl-create", schema=SCHEMA, now=T3)
    assert same["metadata"]["managedFields"] == unlabeled["metadata"]["managedFields"]


def test_client_can_reset_managed_fields() -> None:
    created = record_update(None, _config(), "kubectl-create", schema=SCHEMA, now=T0)
    reset = copy.deepcopy(created)
    reset["metadata"]["managedFields"] = []
    out = record_update(created, reset, "kubectl-edit", schema=SCHEMA, now=T1)
    assert "managedFields" not in out["metadata"]


def test_fields_v1_round_trip_and_paths() -> None:
    config = _config(env=True)
    config["metadata"]["finalizers"] = ["example.com/f"]
    paths = field_set(config, SCHEMA)
    rendered = to_fields_v1(paths)
    assert rendered["f:metadata"]["f:finalizers"] == {'v:"example.com/f"': {}}
    assert from_fields_v1(rendered) == paths
    assert path_string(("f:metadata", "f:finalizers", 'v:"example.com/f"')) == '.metadata.finalizers[="example.com/f"]'
    assert (
        path_string(("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"nginx"}', "f:env"))
        == '.spec.template.spec.containers[name="nginx"].env'
    )


def test_apply_does_not_mutate_inputs() -> None:
    live = _scaled_by_other()
    config = _config(replicas=5, image="x")
    before = copy.deepcopy(live), copy.deepcopy(config)
    out = server_side_apply(live, config, "kubectl", force=True, schema=SCHEMA, now=T2)
    out["spec"]["template"]["spec"]["containers"][0]["ports"].append({"containerPort": 1})
    assert (live, config) == before
