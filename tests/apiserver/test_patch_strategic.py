"""Strategic merge patch, replaying what kubectl and the Python client send."""

from __future__ import annotations

import copy
import importlib
import json
import pkgutil
from typing import Any

import pytest

import kcore.api
from kcore.api.apps_v1 import Deployment
from kcore.api.base import KubeModel
from kcore.api.core_v1 import Node, Service
from kcore.api.core_v1_pod import Pod
from kcore.apiserver.patch import PatchError, PatchSchema, apply_strategic_merge_patch, schema_for_model
from kcore.apiserver.patch.merge_keys import PATCH_TAGS

DEPLOY = schema_for_model(Deployment)
POD = schema_for_model(Pod)


def _all_models() -> dict[str, type[KubeModel]]:
    found: dict[str, type[KubeModel]] = {}
    for info in pkgutil.iter_modules(kcore.api.__path__):
        module = importlib.import_module(f"kcore.api.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, KubeModel):
                found[value.__name__] = value
    return found


# --- schema -------------------------------------------------------------------


def test_every_patch_tag_names_a_real_field_of_the_right_shape() -> None:
    models = _all_models()
    for (cls_name, field), (strategy, key) in PATCH_TAGS.items():
        assert cls_name in models, cls_name
        node = schema_for_model(models[cls_name]).field(field)
        if "merge" in strategy.split(","):
            assert node.kind == "list", (cls_name, field)
            assert node.list_type == ("map" if key else "set"), (cls_name, field)
            assert node.merge_key == key
            if key:
                assert node.elem.kind == "struct"
                assert key in node.elem.model.model_fields, (cls_name, field, key)
        else:
            assert node.kind == "struct" and node.retain_keys, (cls_name, field)


def test_schema_follows_kubernetes_tags() -> None:
    pod_spec = POD.field("spec")
    containers = pod_spec.field("containers")
    assert (containers.list_type, containers.merge_key) == ("map", "name")
    assert containers.elem.field("ports").merge_key == "containerPort"
    assert containers.elem.field("volumeMounts").merge_key == "mountPath"
    assert pod_spec.field("ephemeralContainers").elem.field("env").merge_key == "name"
    assert pod_spec.field("volumes").retain_keys
    assert pod_spec.field("tolerations").list_type == "atomic"
    assert containers.elem.field("args").list_type == "atomic"
    assert POD.field("status").field("containerStatuses").list_type == "atomic"
    assert POD.field("status").field("conditions").merge_key == "type"
    assert POD.field("metadata").field("finalizers").list_type == "set"
    assert POD.field("metadata").field("ownerReferences").merge_key == "uid"
    assert POD.field("metadata").field("labels").kind == "map"
    assert schema_for_model(Node).field("spec").field("taints").list_type == "atomic"
    assert schema_for_model(Node).field("status").field("addresses").merge_key == "type"
    assert schema_for_model(Service).field("spec").field("ports").merge_key == "port"
    assert DEPLOY.field("spec").field("strategy").retain_keys
    assert DEPLOY.field("spec").field("template").field("spec").field("containers").merge_key == "name"
    assert DEPLOY.field("no-such-field").kind == "any"
    assert schema_for_model(Deployment) is DEPLOY


# --- kubectl apply (client-side) -------------------------------------------------


def _live_deployment() -> dict[str, Any]:
    last = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "containers": [
                        {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}, {"containerPort": 443}]},
                        {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "infinity"]},
                    ]
                },
            },
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "nginx",
            "namespace": "default",
            "uid": "u-1",
            "resourceVersion": "41",
            "generation": 1,
            "labels": {"app": "nginx"},
            "annotations": {
                "deployment.kubernetes.io/revision": "1",
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps(last) + "\n",
            },
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "nginx"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "revisionHistoryLimit": 10,
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1.25",
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [
                                {"containerPort": 80, "protocol": "TCP"},
                                {"containerPort": 443, "protocol": "TCP"},
                            ],
                            "terminationMessagePath": "/dev/termination-log",
                        },
                        {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "infinity"]},
                    ],
                    "restartPolicy": "Always",
                    "dnsPolicy": "ClusterFirst",
                },
            },
        },
        "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]},
    }


def test_kubectl_apply_of_changed_deployment() -> None:
    live = _live_deployment()
    before = copy.deepcopy(live)
    # What kubectl 1.32 sends after: image 1.25 -> 1.26, replicas 2 -> 3, port 443
    # dropped, env FOO added.
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"new":"config"}\n'}},
        "spec": {
            "replicas": 3,
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
                    "containers": [
                        {
                            "$setElementOrder/ports": [{"containerPort": 80}],
                            "env": [{"name": "FOO", "value": "bar"}],
                            "image": "nginx:1.26",
                            "name": "nginx",
                            "ports": [{"$patch": "delete", "containerPort": 443}],
                        }
                    ],
                }
            },
        },
    }
    out = apply_strategic_merge_patch(live, patch, DEPLOY)
    assert live == before
    assert out["spec"]["replicas"] == 3
    nginx, sidecar = out["spec"]["template"]["spec"]["containers"]
    assert nginx == {
        "name": "nginx",
        "image": "nginx:1.26",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "terminationMessagePath": "/dev/termination-log",
        "env": [{"name": "FOO", "value": "bar"}],
    }
    assert sidecar == before["spec"]["template"]["spec"]["containers"][1]
    annotations = out["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/last-applied-configuration"] == '{"new":"config"}\n'
    assert annotations["deployment.kubernetes.io/revision"] == "1"
    # Server-side state the patch does not mention survives.
    assert out["status"] == before["status"]
    assert out["spec"]["strategy"] == before["spec"]["strategy"]
    assert out["metadata"]["uid"] == "u-1"


def test_kubectl_apply_reorders_and_adds_containers() -> None:
    live = _live_deployment()
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "init-proxy"}, {"name": "sidecar"}, {"name": "nginx"}],
                    "containers": [{"name": "init-proxy", "image": "envoy:1"}],
                }
            }
        }
    }
    out = apply_strategic_merge_patch(live, patch, DEPLOY)
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["init-proxy", "sidecar", "nginx"]


def test_new_items_append_after_original_without_order_directive() -> None:
    live = _live_deployment()
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "zz", "image": "z"}, {"name": "nginx", "image": "n2"}]}}}}
    out = apply_strategic_merge_patch(live, patch, DEPLOY)
    containers = out["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["nginx", "sidecar", "zz"]
    assert containers[0]["image"] == "n2"


def test_set_element_order_keeps_server_only_items_in_place() -> None:
    obj = {"spec": {"containers": [{"name": "a"}, {"name": "server"}, {"name": "b"}]}}
    patch = {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}
    out = apply_strategic_merge_patch(obj, patch, POD)
    assert [c["name"] for c in out["spec"]["containers"]] == ["b", "server", "a"]


# --- kubectl patch / Python client ----------------------------------------------


def _pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "finalizers": ["a.example/one", "b.example/two"]},
        "spec": {
            "containers": [
                {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                {"name": "log", "image": "log:1"},
            ],
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    }


def test_patch_container_image_by_name() -> None:
    out = apply_strategic_merge_patch(_pod(), {"spec": {"containers": [{"name": "log", "image": "log:2"}]}}, POD)
    assert out["spec"]["containers"][1] == {"name": "log", "image": "log:2"}
    assert out["spec"]["containers"][0] == _pod()["spec"]["containers"][0]


def test_delete_container_and_env_var() -> None:
    patch = {
        "spec": {
            "containers": [
                {"name": "log", "$patch": "delete"},
                {"name": "app", "env": [{"name": "A", "$patch": "delete"}, {"name": "C", "value": "3"}]},
            ]
        }
    }
    out = apply_strategic_merge_patch(_pod(), patch, POD)
    assert out["spec"]["containers"] == [
        {"name": "app", "image": "app:1", "env": [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]}
    ]


def test_retain_keys_when_switching_to_recreate() -> None:
    live = _live_deployment()
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}}
    out = apply_strategic_merge_patch(live, patch, DEPLOY)
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    # $retainKeys also drops keys the patch does not null out explicitly.
    out = apply_strategic_merge_patch(live, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}, DEPLOY)
    assert out["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_switches_volume_source() -> None:
    patch = {"spec": {"volumes": [{"$retainKeys": ["configMap", "name"], "name": "data", "configMap": {"name": "cm"}}]}}
    out = apply_strategic_merge_patch(_pod(), patch, POD)
    assert out["spec"]["volumes"] == [{"name": "data", "configMap": {"name": "cm"}}]


def test_finalizers_merge_as_a_set_and_delete_from_primitive_list() -> None:
    out = apply_strategic_merge_patch(_pod(), {"metadata": {"finalizers": ["b.example/two", "c.example/three"]}}, POD)
    assert out["metadata"]["finalizers"] == ["a.example/one", "b.example/two", "c.example/three"]
    patch = {
        "metadata": {
            "$deleteFromPrimitiveList/finalizers": ["a.example/one"],
            "$setElementOrder/finalizers": ["c.example/three", "b.example/two"],
            "finalizers": ["c.example/three"],
        }
    }
    out = apply_strategic_merge_patch(_pod(), patch, POD)
    assert out["metadata"]["finalizers"] == ["c.example/three", "b.example/two"]


def test_atomic_lists_are_replaced() -> None:
    out = apply_strategic_merge_patch(_pod(), {"spec": {"tolerations": [{"key": "x", "operator": "Exists"}]}}, POD)
    assert out["spec"]["tolerations"] == [{"key": "x", "operator": "Exists"}]


def test_replace_directives() -> None:
    out = apply_strategic_merge_patch(
        _pod(), {"spec": {"containers": [{"name": "only", "image": "o:1"}, {"$patch": "replace"}]}}, POD
    )
    assert out["spec"]["containers"] == [{"name": "only", "image": "o:1"}]
    live = _live_deployment()
    out = apply_strategic_merge_patch(
        live, {"spec": {"template": {"metadata": {"labels": {"$patch": "replace", "v": "2"}}}}}, DEPLOY
    )
    assert out["spec"]["template"]["metadata"]["labels"] == {"v": "2"}


def test_delete_map_directive_and_null() -> None:
    live = _live_deployment()
    out = apply_strategic_merge_patch(live, {"spec": {"strategy": {"rollingUpdate": {"$patch": "delete"}}}}, DEPLOY)
    assert out["spec"]["strategy"] == {"type": "RollingUpdate"}
    out = apply_strategic_merge_patch(live, {"status": None, "metadata": {"labels": {"app": None}}}, DEPLOY)
    assert "status" not in out and out["metadata"]["labels"] == {}


def test_unknown_fields_merge_like_json_merge_patch() -> None:
    obj = {"spec": {"containers": [{"name": "a"}], "x-extra": {"k": 1, "l": [1, 2]}}}
    out = apply_strategic_merge_patch(obj, {"spec": {"x-extra": {"m": 2, "l": [3]}}}, POD)
    assert out["spec"]["x-extra"] == {"k": 1, "l": [3], "m": 2}


def test_status_conditions_merge_by_type() -> None:
    pod = {"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}}
    out = apply_strategic_merge_patch(pod, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, POD)
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"$foo": 1}, 'unknown strategic merge patch directive "$foo"'),
        ({"spec": {"$patch": "bogus"}}, 'unknown $patch directive "bogus" at .spec'),
        ({"spec": {"containers": [{"name": "app", "$patch": "explode"}]}}, 'at .spec.containers[name="app"]'),
        ({"spec": {"containers": [{"image": "x"}]}}, 'does not contain the merge key "name"'),
        ({"spec": {"containers": ["x"]}}, "items must be objects"),
        ({"spec": {"strategy": {"$retainKeys": "type"}}}, "$retainKeys at .spec.strategy must be a list"),
        ({"spec": {"$setElementOrder/containers": [{"image": "x"}]}}, "lacks the merge key"),
        ({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}, "must be a list"),
        ({"metadata": {"finalizers": [{"a": 1}]}}, "list of primitive values"),
    ],
)
def test_invalid_patches(patch: dict[str, Any], fragment: str) -> None:
    with pytest.raises(PatchError) as info:
        apply_strategic_merge_patch(_pod(), patch, POD)
    assert fragment in str(info.value)


def test_whole_object_directives_and_input_untouched() -> None:
    pod = _pod()
    before = copy.deepcopy(pod)
    patch = {"spec": {"containers": [{"name": "app", "env": [{"name": "Z", "value": "z"}]}]}}
    patch_before = copy.deepcopy(patch)
    out = apply_strategic_merge_patch(pod, patch, POD)
    out["spec"]["containers"][0]["env"].append({"name": "scribble"})
    out["metadata"]["finalizers"].append("scribble")
    assert pod == before and patch == patch_before
    assert apply_strategic_merge_patch(pod, {"$patch": "delete"}, POD) == {}
    assert apply_strategic_merge_patch(pod, {"$patch": "replace", "kind": "Pod"}, POD) == {"kind": "Pod"}
    with pytest.raises(PatchError, match="must be a JSON object"):
        apply_strategic_merge_patch(pod, [{"op": "add"}], POD)  # type: ignore[arg-type]


def test_schema_is_a_patch_schema() -> None:
    assert isinstance(DEPLOY, PatchSchema)
