"""The real kubectl against a tiny server built only from discovery, openapi and tables.

Proves that what the modules produce is what kubectl understands: api-resources
(legacy and aggregated discovery), explain (OpenAPI v3 field docs) and get (Tables,
including -o wide and label columns from PartialObjectMetadata).
"""

from __future__ import annotations

import re

import asyncio
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from kcore.api.registry import KindRegistry, builtin_registry
from kcore.apiserver import discovery, openapi, tables

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
NOW = datetime.now(timezone.utc)


def _ts(delta: timedelta) -> str:
    return (NOW - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


PODS: list[dict[str, Any]] = [
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-1",
            "namespace": "default",
            "uid": "u1",
            "resourceVersion": "11",
            "creationTimestamp": _ts(timedelta(minutes=5)),
            "labels": {"app": "web"},
        },
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "nginx"}, {"name": "d", "image": "busybox"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.7",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "c", "ready": True, "restartCount": 0, "state": {"running": {}}},
                {"name": "d", "ready": True, "restartCount": 0, "state": {"running": {}}},
            ],
        },
    },
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "crash-2",
            "namespace": "default",
            "uid": "u2",
            "resourceVersion": "12",
            "creationTimestamp": _ts(timedelta(hours=3)),
            "labels": {"app": "crash"},
        },
        "spec": {"nodeName": "node-b", "containers": [{"name": "c", "image": "bad"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.8",
            "containerStatuses": [
                {
                    "name": "c",
                    "ready": False,
                    "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                }
            ],
        },
    },
]


@dataclass
class FakeServer:
    registry: KindRegistry
    aggregated: bool = True
    requests: list[tuple[str, str, str]] = field(default_factory=list)


def _json(body: Any, status: int = 200, content_type: str = "application/json") -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers={"Content-Type": content_type})


def _make_app(state: FakeServer) -> web.Application:
    reg = state.registry

    async def handle(request: web.Request) -> web.Response:
        path = request.path.rstrip("/") or "/"
        accept = request.headers.get("Accept", "")
        state.requests.append((request.method, request.path_qs, accept))
        parts = [p for p in path.split("/") if p]
        if path == "/version":
            return _json(discovery.version_info())
        if path in ("/api", "/apis"):
            legacy = path == "/api"
            if state.aggregated and discovery.wants_aggregated(accept):
                return _json(
                    discovery.aggregated_discovery(reg, legacy=legacy),
                    content_type=discovery.AGGREGATED_DISCOVERY_CONTENT_TYPE,
                )
            if legacy:
                return _json(discovery.api_versions(f"{request.host}"))
            return _json(discovery.api_group_list(reg))
        if parts[:1] == ["api"] and len(parts) == 2:
            body = discovery.api_resource_list(reg, "", parts[1])
            return _json(body) if body else _json({"kind": "Status"}, 404)
        if parts[:1] == ["apis"] and len(parts) == 3:
            body = discovery.api_resource_list(reg, parts[1], parts[2])
            return _json(body) if body else _json({"kind": "Status"}, 404)
        if path == "/openapi/v3":
            return _json(openapi.openapi_v3_index(reg))
        if parts[:2] == ["openapi", "v3"]:
            rest = parts[2:]
            group, version = ("", rest[1]) if rest[0] == "api" else (rest[1], rest[2])
            raw = openapi.openapi_v3_document_bytes(reg, group, version)
            if raw is None:
                return _json({"kind": "Status"}, 404)
            return web.Response(body=raw, headers={"Content-Type": "application/json"})
        if path == "/api/v1/namespaces/default/pods":
            if "as=Table" in accept:
                include = request.query.get("includeObject", "Metadata")
                return _json(
                    tables.render_table("Pod", "v1", PODS, include_object=include, now=datetime.now(timezone.utc), resource_version="12")  # type: ignore[arg-type]
                )
            return _json({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "12"}, "items": PODS})
        return _json(
            {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"},
            404,
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeServer, str]]:
    state = FakeServer(builtin_registry())
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(_make_app(state), access_log=None)
    started = threading.Event()
    port_box: list[int] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port_box.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    yield state, f"http://127.0.0.1:{port_box[0]}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _kubectl(server_url: str, tmp_path: Path, *args: str) -> str:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: t
  cluster:
    server: {server_url}
contexts:
- name: t
  context:
    cluster: t
    user: u
    namespace: default
current-context: t
users:
- name: u
  user: {{}}
"""
    )
    cache = tmp_path / f"cache-{len(list(tmp_path.iterdir()))}"
    proc = subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, f"kubectl {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _api_resources_rows(out: str) -> dict[str, list[str]]:
    lines = out.strip().splitlines()
    header = lines[0]
    starts = [header.index(col) for col in ("NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND")]
    rows: dict[str, list[str]] = {}
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [len(line) + 1])]
        rows[cells[0]] = cells
    return rows


@pytest.mark.parametrize("aggregated", [True, False], ids=["aggregated", "legacy"])
def test_api_resources(server: tuple[FakeServer, str], tmp_path: Path, aggregated: bool) -> None:
    state, url = server
    state.aggregated = aggregated
    state.requests.clear()
    rows = _api_resources_rows(_kubectl(url, tmp_path, "api-resources"))
    assert rows["pods"] == ["pods", "po", "v1", "true", "Pod"]
    assert rows["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert rows["nodes"] == ["nodes", "no", "v1", "false", "Node"]
    assert rows["cronjobs"] == ["cronjobs", "cj", "batch/v1", "true", "CronJob"]
    assert rows["clusterroles"][2:] == ["rbac.authorization.k8s.io/v1", "false", "ClusterRole"]
    assert rows["horizontalpodautoscalers"][1:3] == ["hpa", "autoscaling/v2"]
    assert "pods/log" not in rows  # subresources are not resources
    fetched = {p.split("?")[0] for _, p, _ in state.requests}
    if aggregated:
        assert "/apis/apps/v1" not in fetched, "aggregated discovery should make per-group fetches unnecessary"
    else:
        assert "/apis/apps/v1" in fetched and "/api/v1" in fetched


def test_api_resources_wide_shows_verbs_and_categories(server: tuple[FakeServer, str], tmp_path: Path) -> None:
    state, url = server
    state.aggregated = True
    out = _kubectl(url, tmp_path, "api-resources", "-o", "wide", "--api-group=apps")
    line = next(ln for ln in out.splitlines() if ln.startswith("deployments "))
    assert "create,delete,deletecollection,get,list,patch,update,watch" in line
    assert line.rstrip().endswith("all")


def test_explain_deployment_strategy(server: tuple[FakeServer, str], tmp_path: Path) -> None:
    state, url = server
    state.aggregated = True
    out = _kubectl(url, tmp_path, "explain", "deployment.spec.strategy")
    assert "GROUP:      apps" in out and "KIND:       Deployment" in out
    assert "The strategy used to replace existing pods with new ones." in out
    assert "rollingUpdate\t<RollingUpdateDeployment>" in out
    assert '"RollingUpdate" (default) replaces pods gradually' in out
    assert any(p.startswith("/openapi/v3/apis/apps/v1?hash=") for _, p, _ in state.requests)


def test_explain_pod_containers(server: tuple[FakeServer, str], tmp_path: Path) -> None:
    _, url = server
    out = _kubectl(url, tmp_path, "explain", "pods.spec.containers")
    assert "KIND:       Pod" in out and "VERSION:    v1" in out
    assert "FIELD: containers <[]Container>" in out
    assert "name\t<string> -required-" in out
    assert "image\t<string>" in out
    assert "resources\t<ResourceRequirements>" in out


def test_explain_recursive_int_or_string(server: tuple[FakeServer, str], tmp_path: Path) -> None:
    _, url = server
    out = _kubectl(url, tmp_path, "explain", "deployment.spec.strategy.rollingUpdate")
    assert "maxSurge\t<IntOrString>" in out
    assert "maxUnavailable\t<IntOrString>" in out


def _table_lines(out: str) -> list[list[str]]:
    return [ln.split() for ln in out.strip().splitlines()]


def test_get_pods_table(server: tuple[FakeServer, str], tmp_path: Path) -> None:
    _, url = server
    lines = _table_lines(_kubectl(url, tmp_path, "get", "pods"))
    assert lines[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1][:4] == ["web-1", "2/2", "Running", "0"]
    # Created 5 minutes before the fixture ran; allow for a slow machine.
    assert re.fullmatch(r"4m5\ds|5m(\d+s)?", lines[1][4]), lines[1][4]
    assert lines[2][:4] == ["crash-2", "0/1", "CrashLoopBackOff", "4"]
    assert lines[2][4] == "3h"


def test_get_pods_wide_and_labels(server: tuple[FakeServer, str], tmp_path: Path) -> None:
    _, url = server
    lines = _table_lines(_kubectl(url, tmp_path, "get", "pods", "-o", "wide", "--show-labels"))
    assert lines[0] == [
        "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE", "READINESS", "GATES", "LABELS",
    ]
    assert lines[1][5:] == ["10.0.0.7", "node-a", "<none>", "<none>", "app=web"]
    assert lines[2][5:] == ["10.0.0.8", "node-b", "<none>", "<none>", "app=crash"]


def test_get_pods_all_namespaces_column(server: tuple[FakeServer, str], tmp_path: Path) -> None:
    """The NAMESPACE column comes from the rows' PartialObjectMetadata."""
    _, url = server
    out = _kubectl(url, tmp_path, "get", "pods", "-L", "app")
    lines = _table_lines(out)
    assert lines[0][-1] == "APP"
    assert lines[1][-1] == "web" and lines[2][-1] == "crash"
