"""The real kubectl against a real ``kcore up``: reads, watches, writes, errors, auth.

Every test works in its own namespace (created with a manifest) on one shared cluster.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from support.cluster import RunningCluster
from support.kubectl import Kubectl

_counter = itertools.count()

# The Deployment, Service and ConfigMap examples from the Kubernetes documentation
# (nginx Deployment with an explicit ``command``).
DOCS_MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        command: ["nginx", "-g", "daemon off;"]
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  selector:
    app: nginx
  ports:
    - protocol: TCP
      port: 80
      targetPort: 9376
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: game-demo
data:
  player_initial_lives: "3"
  ui_properties_file_name: "user-interface.properties"
  game.properties: |
    enemy.types=aliens,monsters
    player.maximum-lives=5
"""


def deployment(name: str, *, image: str = "nginx:1.14.2", replicas: int = 2,
               labels: str = "") -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}{labels}}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: nginx
        image: {image}
        ports:
        - containerPort: 80
"""


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "labels": labels or {}}, "data": data})


@pytest.fixture
def ns(kubectl: Kubectl) -> str:
    name = f"e2e-{next(_counter)}"
    kubectl("create", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
    return name


def create(kubectl: Kubectl, ns: str, manifest: str) -> str:
    return kubectl("create", "-n", ns, "-f", "-", input=manifest)


def table(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines()]


# ------------------------------------------------------------------------ discovery


def test_api_resources_lists_core_and_apps_kinds(kubectl: Kubectl) -> None:
    rows = {row[0]: row for row in table(kubectl("api-resources"))}
    assert rows["pods"][1:] == ["po", "v1", "true", "Pod"]
    assert rows["deployments"][1:] == ["deploy", "apps/v1", "true", "Deployment"]
    assert rows["namespaces"][1:] == ["ns", "v1", "false", "Namespace"]
    out = kubectl("api-resources", "--api-group=apps", "-o", "name")
    assert "deployments.apps" in out.split()


# ------------------------------------------------------------------------------ get


def test_get_default_and_wide_columns(kubectl: Kubectl, ns: str) -> None:
    create(kubectl, ns, deployment("web", replicas=3))
    rows = table(kubectl("get", "deployments", "-n", ns))
    assert rows[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows[1][0] == "web" and rows[1][1].endswith("/3")
    wide = table(kubectl("get", "deploy", "web", "-n", ns, "-o", "wide"))
    assert wide[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES",
                       "SELECTOR"]
    assert wide[1][5:] == ["nginx", "nginx:1.14.2", "app=web"]


def test_get_output_formats(kubectl: Kubectl, ns: str) -> None:
    create(kubectl, ns, configmap("one", a="1"))
    create(kubectl, ns, configmap("two", b="2"))
    as_yaml = kubectl("get", "cm", "one", "-n", ns, "-o", "yaml")
    assert "kind: ConfigMap" in as_yaml and "name: one" in as_yaml and f"namespace: {ns}" in as_yaml
    as_json = json.loads(kubectl("get", "cm", "-n", ns, "-o", "json"))
    assert as_json["kind"] == "List"
    assert {item["metadata"]["name"] for item in as_json["items"]} >= {"one", "two"}
    assert all(item["kind"] == "ConfigMap" for item in as_json["items"])
    assert set(kubectl("get", "cm", "-n", ns, "-o", "name").split()) >= {"configmap/one",
                                                                         "configmap/two"}
    names = kubectl("get", "cm", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}")
    assert set(names.split()) >= {"one", "two"}
    assert kubectl("get", "cm", "one", "-n", ns, "-o", "jsonpath={.data.a}") == "1"


def test_get_all_namespaces(kubectl: Kubectl, ns: str) -> None:
    other = f"{ns}-b"
    kubectl("create", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {other}\n")
    create(kubectl, ns, configmap("here"))
    create(kubectl, other, configmap("there"))
    rows = table(kubectl("get", "configmaps", "-A"))
    assert rows[0][:3] == ["NAMESPACE", "NAME", "DATA"]
    assert [ns, "here"] in [row[:2] for row in rows]
    assert [other, "there"] in [row[:2] for row in rows]


def test_get_with_label_and_field_selectors(kubectl: Kubectl, ns: str) -> None:
    create(kubectl, ns, configmap("x1", {"app": "x"}))
    create(kubectl, ns, configmap("x2", {"app": "x", "tier": "db"}))
    create(kubectl, ns, configmap("y1", {"app": "y"}))
    assert kubectl("get", "cm", "-n", ns, "-l", "app=x", "-o", "name").split() == [
        "configmap/x1", "configmap/x2"]
    assert kubectl("get", "cm", "-n", ns, "-l", "app=x,tier!=db", "-o", "name").split() == [
        "configmap/x1"]
    assert kubectl("get", "cm", "-n", ns, "-l", "app in (y)", "-o", "name").split() == ["configmap/y1"]
    assert kubectl("get", "cm", "-n", ns, "--field-selector", "metadata.name=y1",
                   "-o", "name").split() == ["configmap/y1"]
    rows = table(kubectl("get", "cm", "-n", ns, "--field-selector", "metadata.name=x2"))
    assert [row[0] for row in rows] == ["NAME", "x2"]
    empty = kubectl.run("get", "cm", "-n", ns, "-l", "app=none")
    assert empty.stdout == "" and "No resources found" in empty.stderr


def test_get_sort_by(kubectl: Kubectl, ns: str) -> None:
    for name in ("mango", "apple", "zucchini", "kiwi"):
        create(kubectl, ns, configmap(name))
    rows = table(kubectl("get", "cm", "-n", ns, "--sort-by=.metadata.name"))
    assert rows[0][0] == "NAME"
    assert [row[0] for row in rows[1:]] == ["apple", "kiwi", "mango", "zucchini"]


def test_get_watch_sees_changes_made_meanwhile(kubectl: Kubectl, ns: str) -> None:
    create(kubectl, ns, configmap("before"))
    with kubectl.stream("get", "configmaps", "-n", ns, "-w", "--output-watch-events") as watch:
        watch.wait_for(lambda line: line.split()[:2] == ["ADDED", "before"])
        create(kubectl, ns, configmap("during", a="1"))
        watch.wait_for(lambda line: line.split()[:2] == ["ADDED", "during"])
        kubectl("label", "cm", "during", "-n", ns, "seen=yes")
        watch.wait_for(lambda line: line.split()[:2] == ["MODIFIED", "during"])
        kubectl("delete", "cm", "during", "-n", ns)
        watch.wait_for(lambda line: line.split()[:2] == ["DELETED", "during"])
    assert watch.lines[0].split()[:4] == ["EVENT", "NAME", "DATA", "AGE"]


# --------------------------------------------------------------------------- create


def test_create_docs_manifest_then_duplicate_is_already_exists(kubectl: Kubectl, ns: str) -> None:
    out = create(kubectl, ns, DOCS_MANIFEST)
    assert out.split("\n")[:3] == ["deployment.apps/nginx-deployment created",
                                    "service/my-service created", "configmap/game-demo created"]
    command = kubectl("get", "deploy", "nginx-deployment", "-n", ns,
                      "-o", "jsonpath={.spec.template.spec.containers[0].command}")
    assert json.loads(command) == ["nginx", "-g", "daemon off;"]
    svc = json.loads(kubectl("get", "svc", "my-service", "-n", ns, "-o", "json"))
    assert svc["spec"]["ports"][0]["targetPort"] == 9376 and svc["spec"]["type"] == "ClusterIP"
    assert "enemy.types=aliens" in kubectl("get", "cm", "game-demo", "-n", ns,
                                           "-o", "jsonpath={.data.game\\.properties}")
    again = kubectl.run("create", "-n", ns, "-f", "-", input=DOCS_MANIFEST, check=False)
    assert again.returncode == 1
    assert ('Error from server (AlreadyExists): error when creating "STDIN": deployments.apps '
            '"nginx-deployment" already exists') in again.stderr
    assert 'services "my-service" already exists' in again.stderr
    assert 'configmaps "game-demo" already exists' in again.stderr


def test_create_with_unknown_field_is_a_strict_validation_error(kubectl: Kubectl, ns: str) -> None:
    manifest = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  colour: red\n"
                "data:\n  a: b\n")
    result = kubectl.run("create", "-n", ns, "-f", "-", input=manifest, check=False)
    assert result.returncode == 1
    assert "Error from server (BadRequest)" in result.stderr
    assert 'unknown field "metadata.colour"' in result.stderr
    assert kubectl.run("get", "cm", "bad", "-n", ns, check=False).returncode == 1


def test_errors_are_printed_like_kubernetes(kubectl: Kubectl, ns: str) -> None:
    result = kubectl.run("get", "deployment", "ghost", "-n", ns, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == 'Error from server (NotFound): deployments.apps "ghost" not found'
    result = kubectl.run("delete", "configmap", "ghost", "-n", ns, check=False)
    assert 'Error from server (NotFound): configmaps "ghost" not found' in result.stderr


# ---------------------------------------------------------------------------- apply


def test_client_side_apply_twice_patches_with_last_applied(kubectl: Kubectl, ns: str) -> None:
    assert kubectl("apply", "-n", ns, "-f", "-",
                   input=deployment("web")).strip() == "deployment.apps/web created"
    first = json.loads(kubectl("get", "deploy", "web", "-n", ns, "-o", "json"))
    last_applied = json.loads(first["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"])
    assert last_applied["spec"]["replicas"] == 2
    out = kubectl("apply", "-n", ns, "-f", "-", input=deployment("web", image="nginx:1.16.1", replicas=4))
    assert out.strip() == "deployment.apps/web configured"
    second = json.loads(kubectl("get", "deploy", "web", "-n", ns, "-o", "json"))
    assert second["spec"]["replicas"] == 4
    container = second["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.16.1"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert second["metadata"]["generation"] == first["metadata"]["generation"] + 1
    last_applied = json.loads(second["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"])
    assert last_applied["spec"]["replicas"] == 4
    assert last_applied["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.16.1"


def test_client_side_apply_of_an_unchanged_manifest_sends_no_patch(kubectl: Kubectl, ns: str) -> None:
    # kubectl computes the three-way strategic merge patch from the OpenAPI v3 schema: it
    # is empty (and nothing is sent) only if the schema carries the patch merge keys
    # (containers merge on "name"), or the defaulted container fields look like changes.
    manifest = deployment("same")
    kubectl("apply", "-n", ns, "-f", "-", input=manifest)
    # The controllers write status meanwhile, so compare the generation (spec changes only).
    before = kubectl("get", "deploy", "same", "-n", ns, "-o", "jsonpath={.metadata.generation}")
    out = kubectl("apply", "-n", ns, "-f", "-", input=manifest)
    assert out.strip() == "deployment.apps/same unchanged"
    assert kubectl("get", "deploy", "same", "-n", ns,
                   "-o", "jsonpath={.metadata.generation}") == before == "1"


def test_server_side_apply_conflicts_and_force(kubectl: Kubectl, ns: str) -> None:
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  color: blue\n"
    out = kubectl("apply", "--server-side", "-n", ns, "-f", "-", input=manifest)
    assert out.strip() == "configmap/ssa serverside-applied"
    changed = manifest.replace("blue", "red")
    result = kubectl.run("apply", "--server-side", "--field-manager=other", "-n", ns, "-f", "-",
                         input=changed, check=False)
    assert result.returncode == 1
    assert 'Apply failed with 1 conflict: conflict with "kubectl"' in result.stderr
    assert ".data.color" in result.stderr
    assert kubectl("get", "cm", "ssa", "-n", ns, "-o", "jsonpath={.data.color}") == "blue"
    kubectl("apply", "--server-side", "--field-manager=other", "--force-conflicts", "-n", ns,
            "-f", "-", input=changed)
    obj = json.loads(kubectl("get", "cm", "ssa", "-n", ns, "-o", "json", "--show-managed-fields"))
    assert obj["data"]["color"] == "red"
    owners = [entry["manager"] for entry in obj["metadata"]["managedFields"]
              if "f:color" in json.dumps(entry.get("fieldsV1", {}))]
    assert owners == ["other"]


def test_diff_shows_the_change_and_exits_1(kubectl: Kubectl, ns: str) -> None:
    kubectl("apply", "-n", ns, "-f", "-", input=deployment("web"))
    same = kubectl.run("diff", "-n", ns, "-f", "-", input=deployment("web"), check=False)
    assert same.returncode == 0, same.stderr
    changed = kubectl.run("diff", "-n", ns, "-f", "-", input=deployment("web", replicas=7), check=False)
    assert changed.returncode == 1, changed.stderr
    assert "-  replicas: 2" in changed.stdout and "+  replicas: 7" in changed.stdout
    # diff is a dry run: nothing changed on the server
    assert kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}") == "2"


# --------------------------------------------------------------- label/annotate/patch


def test_label_and_annotate_add_and_remove(kubectl: Kubectl, ns: str) -> None:
    create(kubectl, ns, configmap("cm", {"keep": "me"}))
    assert kubectl("label", "cm", "cm", "-n", ns, "tier=front").strip() == "configmap/cm labeled"
    assert kubectl("annotate", "cm", "cm", "-n", ns, "note=hello world").strip() == "configmap/cm annotated"
    meta = json.loads(kubectl("get", "cm", "cm", "-n", ns, "-o", "json"))["metadata"]
    assert meta["labels"] == {"keep": "me", "tier": "front"}
    assert meta["annotations"]["note"] == "hello world"
    over = kubectl.run("label", "cm", "cm", "-n", ns, "tier=back", check=False)
    assert over.returncode == 1 and "already has a value (front)" in over.stderr
    kubectl("label", "cm", "cm", "-n", ns, "tier=back", "--overwrite")
    assert kubectl("get", "cm", "-n", ns, "-l", "tier=back", "-o", "name").split() == ["configmap/cm"]
    assert kubectl("label", "cm", "cm", "-n", ns, "tier-").strip() == "configmap/cm unlabeled"
    kubectl("annotate", "cm", "cm", "-n", ns, "note-")
    meta = json.loads(kubectl("get", "cm", "cm", "-n", ns, "-o", "json"))["metadata"]
    assert meta["labels"] == {"keep": "me"}
    assert "note" not in (meta.get("annotations") or {})


def test_patch_merge_json_and_strategic(kubectl: Kubectl, ns: str) -> None:
    create(kubectl, ns, configmap("cm", a="1"))
    create(kubectl, ns, deployment("web"))
    kubectl("patch", "cm", "cm", "-n", ns, "--type", "merge", "-p", '{"data":{"b":"2","a":null}}')
    kubectl("patch", "cm", "cm", "-n", ns, "--type", "json",
            "-p", '[{"op":"add","path":"/data/c","value":"3"},{"op":"replace","path":"/data/b","value":"22"}]')
    assert json.loads(kubectl("get", "cm", "cm", "-n", ns, "-o", "jsonpath={.data}")) == {"b": "22", "c": "3"}
    failed = kubectl.run("patch", "cm", "cm", "-n", ns, "--type", "json",
                         "-p", '[{"op":"test","path":"/data/c","value":"nope"}]', check=False)
    assert failed.returncode == 1 and 'test "/data/c"' in failed.stderr
    assert json.loads(kubectl("get", "cm", "cm", "-n", ns, "-o", "jsonpath={.data}")) == {"b": "22", "c": "3"}
    # default strategic merge: containers merge on name, so ports survive an image change
    out = kubectl("patch", "deploy", "web", "-n", ns,
                  "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.17"}]}}}}')
    assert out.strip() == "deployment.apps/web patched"
    spec = json.loads(kubectl("get", "deploy", "web", "-n", ns, "-o", "json"))["spec"]["template"]["spec"]
    assert [(c["name"], c["image"]) for c in spec["containers"]] == [("nginx", "nginx:1.17")]
    assert spec["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    kubectl("patch", "deploy", "web", "-n", ns,
            "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}')
    names = kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.template.spec.containers[*].name}")
    assert sorted(names.split()) == ["nginx", "sidecar"]


def test_scale_deployment(kubectl: Kubectl, ns: str) -> None:
    create(kubectl, ns, deployment("web"))
    assert kubectl("scale", "deployment", "web", "-n", ns, "--replicas=5").strip() == "deployment.apps/web scaled"
    assert kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}") == "5"
    stale = kubectl.run("scale", "deployment", "web", "-n", ns, "--current-replicas=2", "--replicas=1",
                        check=False)
    assert stale.returncode == 1
    assert kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}") == "5"


# --------------------------------------------------------------------------- delete


def owned_configmap(name: str, owner: dict, *, finalizer: str | None = None) -> str:
    meta = owner["metadata"]
    return json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "finalizers": [finalizer] if finalizer else [],
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": meta["name"], "uid": meta["uid"],
                                          "blockOwnerDeletion": True}]}})


def test_delete_background_removes_dependents(kubectl: Kubectl, ns: str) -> None:
    create(kubectl, ns, deployment("bg"))
    owner = json.loads(kubectl("get", "deploy", "bg", "-n", ns, "-o", "json"))
    create(kubectl, ns, owned_configmap("bg-child", owner))
    assert kubectl("delete", "deploy", "bg", "-n", ns, timeout=30).strip() == 'deployment.apps "bg" deleted'
    assert kubectl.run("get", "deploy", "bg", "-n", ns, check=False).returncode == 1
    kubectl("wait", "--for=delete", "configmap/bg-child", "-n", ns, "--timeout=30s", timeout=40)


def test_delete_orphan_keeps_dependents(kubectl: Kubectl, ns: str) -> None:
    create(kubectl, ns, deployment("orphan"))
    owner = json.loads(kubectl("get", "deploy", "orphan", "-n", ns, "-o", "json"))
    create(kubectl, ns, owned_configmap("orphan-child", owner))
    # kubectl waits until the garbage collector has orphaned the child and let the owner go
    out = kubectl("delete", "deploy", "orphan", "-n", ns, "--cascade=orphan", "--timeout=30s", timeout=40)
    assert out.strip() == 'deployment.apps "orphan" deleted'
    assert kubectl.run("get", "deploy", "orphan", "-n", ns, check=False).returncode == 1
    child = json.loads(kubectl("get", "cm", "orphan-child", "-n", ns, "-o", "json"))
    assert not child["metadata"].get("ownerReferences")
    assert not child["metadata"].get("deletionTimestamp")


def test_delete_foreground_waits_for_blocking_dependents(kubectl: Kubectl, ns: str) -> None:
    create(kubectl, ns, deployment("fg"))
    owner = json.loads(kubectl("get", "deploy", "fg", "-n", ns, "-o", "json"))
    # a dependent that cannot go until its own finalizer is removed holds the owner back
    create(kubectl, ns, owned_configmap("fg-child", owner, finalizer="example.com/hold"))
    out = kubectl("delete", "deploy", "fg", "-n", ns, "--cascade=foreground", "--wait=false", timeout=30)
    assert out.strip() == 'deployment.apps "fg" deleted'
    meta = json.loads(kubectl("get", "deploy", "fg", "-n", ns, "-o", "json"))["metadata"]
    assert "foregroundDeletion" in meta["finalizers"]
    assert meta["deletionTimestamp"]
    # the collector deletes the dependent first (it stays, finalized) ...
    kubectl("wait", "--for=jsonpath={.metadata.deletionTimestamp}", "configmap/fg-child", "-n", ns,
            "--timeout=30s", timeout=40)
    assert kubectl("get", "deploy", "fg", "-n", ns, "-o", "jsonpath={.metadata.finalizers}")
    # ... and lets the owner go once the dependent is gone
    kubectl("patch", "cm", "fg-child", "-n", ns, "--type", "merge", "-p", '{"metadata":{"finalizers":null}}')
    kubectl("wait", "--for=delete", "deployment/fg", "-n", ns, "--timeout=30s", timeout=40)


# ------------------------------------------------------------------ describe/explain


def test_describe_pod_shows_its_events(kubectl: Kubectl, ns: str) -> None:
    create(kubectl, ns, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: nginx\n  labels: {app: nginx}\n"
                        "spec:\n  containers:\n  - name: nginx\n    image: nginx:1.14.2\n")
    uid = kubectl("get", "pod", "nginx", "-n", ns, "-o", "jsonpath={.metadata.uid}")
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "nginx.1"},
             "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "nginx", "namespace": ns,
                                "uid": uid},
             "reason": "Scheduled", "message": f"Successfully assigned {ns}/nginx to node-1",
             "type": "Normal", "source": {"component": "default-scheduler"}, "count": 1,
             "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:00:00Z"}
    create(kubectl, ns, json.dumps(event))
    # an event for another object must not show up
    other = {**event, "metadata": {"name": "other.1"}, "reason": "Unrelated",
             "involvedObject": {**event["involvedObject"], "name": "other", "uid": "0000"}}
    create(kubectl, ns, json.dumps(other))
    out = kubectl("describe", "pod", "nginx", "-n", ns)
    fields = dict(line.split(":", 1) for line in out.splitlines() if line and not line[0].isspace()
                  and ":" in line)
    assert fields["Name"].strip() == "nginx"
    assert fields["Namespace"].strip() == ns
    assert fields["Labels"].strip() == "app=nginx"
    assert fields["Status"].strip() in ("Pending", "Running", "Failed")  # a kubelet may run it
    events = out.split("Events:", 1)[1]
    assert "Scheduled" in events and f"Successfully assigned {ns}/nginx to node-1" in events
    assert "default-scheduler" in events
    assert "Unrelated" not in events


def test_describe_deployment(kubectl: Kubectl, ns: str) -> None:
    create(kubectl, ns, deployment("web", replicas=3, labels=", team: blue"))
    out = kubectl("describe", "deployment", "web", "-n", ns)
    lines = [line.split(None, 1) for line in out.splitlines() if line and not line[0].isspace()]
    fields = {parts[0]: (parts[1] if len(parts) > 1 else "") for parts in lines}
    assert fields["Name:"] == "web"
    assert fields["Namespace:"] == ns
    assert fields["Labels:"] == "app=web"
    assert "team=blue" in out
    assert fields["Selector:"] == "app=web"
    assert fields["Replicas:"].startswith("3 desired")
    assert fields["StrategyType:"] == "RollingUpdate"
    assert "nginx:1.14.2" in out


def test_explain_prints_field_docs(kubectl: Kubectl) -> None:
    out = kubectl("explain", "deployment.spec.strategy")
    assert "KIND:       Deployment" in out
    assert "FIELD: strategy <DeploymentStrategy>" in out
    assert "rollingUpdate\t<RollingUpdateDeployment>" in out
    assert "type\t<string>" in out
    pods = kubectl("explain", "pods.spec.containers.image")
    assert "FIELD: image <string>" in pods


# ----------------------------------------------------------------------------- auth


def test_auth_can_i_as_admin_and_impersonated(kubectl: Kubectl) -> None:
    yes = kubectl.run("auth", "can-i", "create", "pods", check=False)
    assert (yes.returncode, yes.stdout.strip()) == (0, "yes"), yes.stderr
    no = kubectl.run("auth", "can-i", "create", "pods", "--as=jane", check=False)
    assert no.returncode == 1, no.stderr
    assert no.stdout.strip().startswith("no"), no.stdout + no.stderr


def test_impersonated_requests_are_authorized_as_the_target(kubectl: Kubectl, ns: str) -> None:
    result = kubectl.run("get", "pods", "-n", ns, "--as=jane", check=False)
    assert result.returncode == 1
    assert ('Error from server (Forbidden): pods is forbidden: User "jane" cannot list resource '
            f'"pods" in API group "" in the namespace "{ns}"') in result.stderr
    assert kubectl.run("get", "pods", "-n", ns, "--as=jane", "--as-group=system:masters",
                       check=False).returncode == 0


def test_unknown_credentials_are_rejected(cluster: RunningCluster, tmp_path: Path) -> None:
    def config(user: dict[str, str]) -> Path:
        path = tmp_path / "kubeconfig.yaml"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "k", "cluster": {"server": cluster.url, "insecure-skip-tls-verify": True}}],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}))
        return path

    bogus = Kubectl(config({"token": "not-a-real-token"}), tmp_path / "cache-bogus")
    result = bogus.run("get", "pods", check=False)
    assert result.returncode == 1
    assert "You must be logged in to the server" in result.stderr


# ------------------------------------------------- typed commands (protobuf bodies)


def test_typed_create_commands(kubectl: Kubectl, ns: str) -> None:
    out = kubectl("create", "deployment", "typed", "-n", ns, "--image=nginx:1.14.2", "--replicas=2")
    assert out.strip() == "deployment.apps/typed created"
    dep = json.loads(kubectl("get", "deploy", "typed", "-n", ns, "-o", "json"))
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["selector"]["matchLabels"] == {"app": "typed"}
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.14.2"
    kubectl("create", "configmap", "typed", "-n", ns, "--from-literal=k=v", "--from-literal=x=y")
    assert json.loads(kubectl("get", "cm", "typed", "-n", ns, "-o", "jsonpath={.data}")) == {"k": "v", "x": "y"}
    kubectl("create", "secret", "generic", "typed", "-n", ns, "--from-literal=password=s3cr3t")
    assert kubectl("get", "secret", "typed", "-n", ns, "-o", "jsonpath={.data.password}") == "czNjcjN0"
    kubectl("create", "namespace", f"{ns}-typed")
    assert kubectl("get", "ns", f"{ns}-typed", "-o", "name").strip() == f"namespace/{ns}-typed"
    kubectl("run", "typed-pod", "-n", ns, "--image=busybox", "--restart=Never", "--", "sleep", "3600")
    pod = json.loads(kubectl("get", "pod", "typed-pod", "-n", ns, "-o", "json"))
    assert pod["spec"]["containers"][0]["args"] == ["sleep", "3600"]
    assert pod["spec"]["restartPolicy"] == "Never"
