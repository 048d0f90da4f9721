"""The official ``kubernetes`` Python client against a real ``kcore up`` over HTTPS.

The client is strict: its response models raise on a missing required field, so every
object kcore returns (including the ones its controllers write) must be complete.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from support.cluster import RunningCluster, running_cluster

_names = itertools.count()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with running_cluster(tmp_path_factory.mktemp("pyclient")) as running:
        yield running


@pytest.fixture(scope="module")
def api_client(cluster: RunningCluster) -> Iterator[client.ApiClient]:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        yield api


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def ns(core: client.CoreV1Api) -> str:
    name = f"py-{next(_names)}"
    created = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    assert created.metadata.name == name and created.status.phase == "Active"
    return name


def nginx_pod(name: str, labels: dict[str, str] | None = None) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(containers=[client.V1Container(
            name="nginx", image="nginx:1.14.2",
            ports=[client.V1ContainerPort(container_port=80)],
            env=[client.V1EnvVar(name="MODE", value="test")])]))


def nginx_deployment(name: str, replicas: int = 2) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(
                    name="nginx", image="nginx:1.14.2",
                    ports=[client.V1ContainerPort(container_port=80)])]))))


def test_version_and_api_discovery(api_client: client.ApiClient) -> None:
    info = client.VersionApi(api_client).get_code()
    assert (info.major, info.minor) == ("1", "32")
    groups = client.ApisApi(api_client).get_api_versions()
    assert "apps" in {group.name for group in groups.groups}
    resources = client.CoreV1Api(api_client).get_api_resources()
    assert "pods" in {r.name for r in resources.resources}


def test_pod_crud(core: client.CoreV1Api, ns: str) -> None:
    created = core.create_namespaced_pod(ns, nginx_pod("web", {"app": "web"}))
    assert created.metadata.uid and isinstance(created.metadata.resource_version, str)
    assert created.spec.containers[0].image == "nginx:1.14.2"
    assert created.spec.containers[0].ports[0].protocol == "TCP"  # defaulted
    assert created.status.phase == "Pending"
    read = core.read_namespaced_pod("web", ns)
    assert read.metadata.uid == created.metadata.uid
    status = core.read_namespaced_pod_status("web", ns)  # a kubelet may have moved it on
    assert status.status.phase in ("Pending", "Running", "Succeeded", "Failed")
    core.create_namespaced_pod(ns, nginx_pod("other", {"app": "other"}))
    listed = core.list_namespaced_pod(ns, label_selector="app=web")
    assert [p.metadata.name for p in listed.items] == ["web"]
    assert isinstance(listed.metadata.resource_version, str)
    everywhere = core.list_pod_for_all_namespaces(label_selector="app in (web, other)")
    assert {(p.metadata.namespace, p.metadata.name) for p in everywhere.items} >= {(ns, "web"), (ns, "other")}
    # a dict body is sent as a strategic merge patch: containers merge on name
    patched = core.patch_namespaced_pod("web", ns, {
        "metadata": {"labels": {"patched": "yes"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.16.1"}]}})
    assert patched.metadata.labels == {"app": "web", "patched": "yes"}
    assert patched.spec.containers[0].image == "nginx:1.16.1"
    assert patched.spec.containers[0].env[0].value == "test"
    read.metadata.annotations = {"replaced": "true"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_pod("web", ns, read)  # read is from before the patch
    assert err.value.status == 409
    for _attempt in range(10):  # the kubelet may write the pod's status in between
        fresh = core.read_namespaced_pod("web", ns)
        fresh.metadata.annotations = {"replaced": "true"}
        try:
            replaced = core.replace_namespaced_pod("web", ns, fresh)
            break
        except ApiException as exc:
            if exc.status != 409:
                raise
    else:
        raise AssertionError("replace kept conflicting")
    assert replaced.metadata.annotations == {"replaced": "true"}
    assert replaced.metadata.labels == {"app": "web", "patched": "yes"}
    deleted = core.delete_namespaced_pod("web", ns, grace_period_seconds=0)
    assert deleted.metadata.name == "web"
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod("web", ns)
    assert err.value.status == 404


def test_replace_with_a_stale_resource_version_is_a_conflict(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="cm"), data={"a": "1"}))
    first = core.read_namespaced_config_map("cm", ns)
    first.data["a"] = "2"
    replaced = core.replace_namespaced_config_map("cm", ns, first)
    assert replaced.data == {"a": "2"}
    assert int(replaced.metadata.resource_version) > int(first.metadata.resource_version)
    first.data["a"] = "3"  # still carries the old resourceVersion
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("cm", ns, first)
    assert err.value.status == 409
    assert core.read_namespaced_config_map("cm", ns).data == {"a": "2"}


def test_configmap_crud(core: client.CoreV1Api, ns: str) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings", labels={"tier": "db"}),
                              data={"host": "db.local", "port": "5432"})
    created = core.create_namespaced_config_map(ns, body)
    assert created.data == {"host": "db.local", "port": "5432"}
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="unrelated")))
    assert [c.metadata.name for c in core.list_namespaced_config_map(ns, label_selector="tier=db").items] == [
        "settings"]
    assert [c.metadata.name for c in core.list_namespaced_config_map(
        ns, field_selector="metadata.name=unrelated").items] == ["unrelated"]
    patched = core.patch_namespaced_config_map("settings", ns, {"data": {"port": "6543", "host": None}})
    assert patched.data == {"port": "6543"}
    # a list body is a JSON patch
    patched = core.patch_namespaced_config_map("settings", ns, [
        {"op": "add", "path": "/data/user", "value": "admin"}])
    assert patched.data == {"port": "6543", "user": "admin"}
    patched.data = {"only": "this"}
    replaced = core.replace_namespaced_config_map("settings", ns, patched)
    assert replaced.data == {"only": "this"}
    core.delete_namespaced_config_map("settings", ns)
    assert [c.metadata.name for c in core.list_namespaced_config_map(ns).items] == ["unrelated"]


def test_service_crud(core: client.CoreV1Api, ns: str) -> None:
    svc = client.V1Service(
        metadata=client.V1ObjectMeta(name="web", labels={"app": "web"}),
        spec=client.V1ServiceSpec(selector={"app": "web"}, ports=[
            client.V1ServicePort(name="http", port=80, target_port=8080)]))
    created = core.create_namespaced_service(ns, svc)
    assert created.spec.type == "ClusterIP"
    assert created.spec.ports[0].protocol == "TCP" and created.spec.ports[0].target_port == 8080
    assert core.read_namespaced_service("web", ns).spec.selector == {"app": "web"}
    assert [s.metadata.name for s in core.list_namespaced_service(ns, label_selector="app=web").items] == ["web"]
    patched = core.patch_namespaced_service("web", ns, {"spec": {"ports": [
        {"port": 443, "name": "https", "targetPort": 8443}]}})
    # service ports merge on "port": the new one is added next to the old
    assert sorted(p.port for p in patched.spec.ports) == [80, 443]
    patched.spec.ports = [client.V1ServicePort(name="http", port=8080)]
    replaced = core.replace_namespaced_service("web", ns, patched)
    assert [p.port for p in replaced.spec.ports] == [8080]
    core.delete_namespaced_service("web", ns)
    assert core.list_namespaced_service(ns).items == []


def test_deployment_crud_and_scale(apps: client.AppsV1Api, core: client.CoreV1Api, ns: str) -> None:
    created = apps.create_namespaced_deployment(ns, nginx_deployment("web", replicas=2))
    assert created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"
    read = apps.read_namespaced_deployment("web", ns)
    assert read.spec.template.spec.containers[0].name == "nginx"
    assert apps.read_namespaced_deployment_status("web", ns).metadata.name == "web"
    assert [d.metadata.name for d in apps.list_namespaced_deployment(ns, label_selector="app=web").items] == ["web"]
    patched = apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {
        "containers": [{"name": "nginx", "image": "nginx:1.16.1"}]}}}})
    assert patched.spec.template.spec.containers[0].image == "nginx:1.16.1"
    assert patched.spec.template.spec.containers[0].ports[0].container_port == 80
    assert patched.metadata.generation == 2
    scale = apps.read_namespaced_deployment_scale("web", ns)
    assert scale.spec.replicas == 2
    scaled = apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 4}})
    assert scaled.spec.replicas == 4
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 4
    for _ in range(20):  # the deployment controller writes status meanwhile: retry on 409
        current = apps.read_namespaced_deployment("web", ns)
        current.spec.replicas = 1
        try:
            replaced = apps.replace_namespaced_deployment("web", ns, current)
            break
        except ApiException as exc:
            assert exc.status == 409
    assert replaced.spec.replicas == 1
    # whatever the controllers made of it deserializes too
    apps.list_namespaced_replica_set(ns)
    core.list_namespaced_pod(ns)
    apps.delete_namespaced_deployment("web", ns)
    with pytest.raises(ApiException) as err:
        apps.read_namespaced_deployment("web", ns)
    assert err.value.status == 404


def test_all_listed_objects_deserialize(core: client.CoreV1Api, apps: client.AppsV1Api,
                                        api_client: client.ApiClient) -> None:
    # strict models: a missing required field anywhere raises ValueError here
    core.list_namespace()
    core.list_node()
    core.list_event_for_all_namespaces()
    core.list_service_account_for_all_namespaces()
    core.list_config_map_for_all_namespaces()
    core.list_pod_for_all_namespaces()
    core.list_service_for_all_namespaces()
    core.list_endpoints_for_all_namespaces()
    apps.list_deployment_for_all_namespaces()
    apps.list_replica_set_for_all_namespaces()
    rbac = client.RbacAuthorizationV1Api(api_client)
    assert rbac.list_cluster_role().items
    rbac.list_cluster_role_binding()
    client.CoordinationV1Api(api_client).list_lease_for_all_namespaces()


def test_errors_are_api_exceptions_with_status(core: client.CoreV1Api, ns: str) -> None:
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("missing", ns)
    assert err.value.status == 404
    assert '"reason":"NotFound"' in err.value.body.replace(" ", "")
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dup"))
    core.create_namespaced_config_map(ns, body)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(ns, body)
    assert err.value.status == 409
    assert '"reason":"AlreadyExists"' in err.value.body.replace(" ", "")
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="Not_Valid")))
    assert err.value.status == 422
    assert '"reason":"Invalid"' in err.value.body.replace(" ", "")
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(ns, client.V1Pod(metadata=client.V1ObjectMeta(name="empty"),
                                                    spec=client.V1PodSpec(containers=[])))
    assert err.value.status == 422
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("x", "no-such-namespace")
    assert err.value.status == 404


def test_watch_sees_added_modified_deleted_in_order(core: client.CoreV1Api, ns: str) -> None:
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            core.create_namespaced_config_map(ns, client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="w"), data={"step": "1"}))
            core.patch_namespaced_config_map("w", ns, {"data": {"step": "2"}})
            core.patch_namespaced_config_map("w", ns, {"data": {"step": "3"}})
            core.delete_namespaced_config_map("w", ns)
        except BaseException as exc:  # surfaced by the test thread
            failures.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    seen: list[tuple[str, str | None]] = []
    versions: list[int] = []
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=20):
        obj = event["object"]
        assert isinstance(obj, client.V1ConfigMap)
        seen.append((event["type"], (obj.data or {}).get("step")))
        versions.append(int(obj.metadata.resource_version))
        if event["type"] == "DELETED":
            w.stop()
    thread.join()
    assert not failures, failures
    assert seen == [("ADDED", "1"), ("MODIFIED", "2"), ("MODIFIED", "3"), ("DELETED", "3")]
    assert versions == sorted(versions) and len(set(versions)) == 4


def test_watch_with_a_selector_and_from_now(core: client.CoreV1Api, ns: str) -> None:
    core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="old", labels={"watch": "me"})))
    start = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="ignored")))
    core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="new", labels={"watch": "me"})))
    w = watch.Watch()
    names = []
    for event in w.stream(core.list_namespaced_config_map, ns, label_selector="watch=me",
                          resource_version=start, timeout_seconds=20):
        names.append((event["type"], event["object"].metadata.name))
        w.stop()
    assert names == [("ADDED", "new")]


def test_kubeconfig_credentials_are_client_certificates(cluster: RunningCluster) -> None:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=cfg)
    assert cfg.host == cluster.url and cfg.cert_file and cfg.key_file
    cfg.cert_file = cfg.key_file = None
    with client.ApiClient(cfg) as anonymous:
        with pytest.raises(ApiException) as err:
            client.CoreV1Api(anonymous).list_namespaced_pod("default")
    assert err.value.status in (401, 403)
