"""Discovery bodies: /version, /api, /apis, per-group-version resource lists, aggregated v2.

kubectl learns every resource name, short name, scope and verb from these documents
(``kubectl api-resources`` uses nothing else), so they are derived from the kinds
registry alone. The server only wires routes and picks the body by Accept header:
an aggregated body must go out with :data:`AGGREGATED_DISCOVERY_CONTENT_TYPE`
exactly, or kubectl silently finds no resource types.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, Iterable

from kcore.api.registry import KindInfo, KindRegistry

__all__ = [
    "AGGREGATED_DISCOVERY_CONTENT_TYPE",
    "SERVER_MAJOR",
    "SERVER_MINOR",
    "GIT_VERSION",
    "SubresourceInfo",
    "subresource_info",
    "version_info",
    "api_versions",
    "api_group_list",
    "api_group",
    "api_resource_list",
    "aggregated_discovery",
    "wants_aggregated",
    "storage_version_hash",
]

AGGREGATED_DISCOVERY_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

SERVER_MAJOR = "1"
SERVER_MINOR = "32"
GIT_VERSION = "v1.32.0-kcore"


def version_info() -> dict[str, str]:
    """The /version body; the kubectl dispatcher picks its build from major/minor."""
    return {
        "major": SERVER_MAJOR,
        "minor": SERVER_MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


@dataclass(frozen=True)
class SubresourceInfo:
    """What a subresource answers with and accepts; ``group``/``version`` None means the parent's."""

    kind: str | None
    """Response kind; None means the parent's kind."""
    verbs: tuple[str, ...]
    group: str | None = None
    version: str | None = None


# Subresources whose response kind or verbs differ from "same kind, get/patch/update".
_SUBRESOURCES: dict[str, SubresourceInfo] = {
    "status": SubresourceInfo(None, ("get", "patch", "update")),
    "scale": SubresourceInfo("Scale", ("get", "patch", "update"), "autoscaling", "v1"),
    "log": SubresourceInfo("Pod", ("get",)),
    "binding": SubresourceInfo("Binding", ("create",)),
    "eviction": SubresourceInfo("Eviction", ("create",), "policy", "v1"),
    "exec": SubresourceInfo("PodExecOptions", ("create", "get")),
    "attach": SubresourceInfo("PodAttachOptions", ("create", "get")),
    "portforward": SubresourceInfo("PodPortForwardOptions", ("create", "get")),
    "ephemeralcontainers": SubresourceInfo(None, ("get", "patch", "update")),
    "resize": SubresourceInfo(None, ("get", "patch", "update")),
    "finalize": SubresourceInfo(None, ("update",)),
    "token": SubresourceInfo("TokenRequest", ("create",), "authentication.k8s.io", "v1"),
    "approval": SubresourceInfo(None, ("get", "patch", "update")),
}

_PROXY_KINDS = {"Pod": "PodProxyOptions", "Node": "NodeProxyOptions", "Service": "ServiceProxyOptions"}
_PROXY_VERBS = ("create", "delete", "get", "patch", "update")


def subresource_info(info: KindInfo, sub: str) -> SubresourceInfo:
    """Response kind (with group/version filled in) and verbs of ``<plural>/<sub>``."""
    if sub == "proxy":
        spec = SubresourceInfo(_PROXY_KINDS.get(info.kind, info.kind), _PROXY_VERBS)
    else:
        spec = _SUBRESOURCES.get(sub, SubresourceInfo(None, ("get", "patch", "update")))
    return SubresourceInfo(
        kind=spec.kind or info.kind,
        verbs=spec.verbs,
        group=info.group if spec.group is None else spec.group,
        version=info.version if spec.version is None else spec.version,
    )


def storage_version_hash(info: KindInfo) -> str:
    """An opaque, stable hash of the storage version (clients only compare it for changes)."""
    digest = hashlib.sha256(f"{info.group}/{info.version}/{info.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def api_versions(server_address: str) -> dict[str, Any]:
    """The /api body (APIVersions)."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _named_groups(registry: KindRegistry) -> list[tuple[str, list[str]]]:
    return [(g, versions) for g, versions in registry.group_versions().items() if g]


def _group_body(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": dict(entries[0])}


def api_group_list(registry: KindRegistry) -> dict[str, Any]:
    """The /apis body (APIGroupList): every named group, preferred version first."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_body(g, versions) for g, versions in _named_groups(registry)],
    }


def api_group(registry: KindRegistry, group: str) -> dict[str, Any] | None:
    """The /apis/<group> body (APIGroup), or None when the group is not served."""
    versions = registry.group_versions().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_body(group, versions)}


def _kinds_of(registry: KindRegistry, group: str, version: str) -> list[KindInfo]:
    return sorted(
        (k for k in registry.kinds() if k.group == group and k.version == version),
        key=lambda k: k.plural,
    )


def _resource_entry(info: KindInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    entry["storageVersionHash"] = storage_version_hash(info)
    return entry


def _subresource_entry(info: KindInfo, sub: str) -> dict[str, Any]:
    spec = subresource_info(info, sub)
    entry: dict[str, Any] = {
        "name": f"{info.plural}/{sub}",
        "singularName": "",
        "namespaced": info.namespaced,
        "kind": spec.kind,
        "verbs": list(spec.verbs),
    }
    if spec.group != info.group or spec.version != info.version:
        entry["group"] = spec.group
        entry["version"] = spec.version
    return entry


def api_resource_list(registry: KindRegistry, group: str, version: str) -> dict[str, Any] | None:
    """The /api/v1 or /apis/<g>/<v> body (APIResourceList); None when nothing is served there."""
    kinds = _kinds_of(registry, group, version)
    if not kinds:
        return None
    resources: list[dict[str, Any]] = []
    for info in kinds:
        resources.append(_resource_entry(info))
        resources.extend(_subresource_entry(info, sub) for sub in sorted(info.subresources))
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _aggregated_resource(info: KindInfo) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": info.plural,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        entry["shortNames"] = list(info.short_names)
    if info.categories:
        entry["categories"] = list(info.categories)
    subs = []
    for sub in sorted(info.subresources):
        spec = subresource_info(info, sub)
        subs.append(
            {
                "subresource": sub,
                "responseKind": {"group": spec.group, "version": spec.version, "kind": spec.kind},
                "verbs": list(spec.verbs),
            }
        )
    if subs:
        entry["subresources"] = subs
    return entry


def _aggregated_group(registry: KindRegistry, group: str, versions: Iterable[str]) -> dict[str, Any]:
    return {
        "metadata": {"name": group, "creationTimestamp": None},
        "versions": [
            {
                "version": v,
                "resources": [_aggregated_resource(k) for k in _kinds_of(registry, group, v)],
                "freshness": "Current",
            }
            for v in versions
        ],
    }


def aggregated_discovery(registry: KindRegistry, *, legacy: bool) -> dict[str, Any]:
    """An ``apidiscovery.k8s.io/v2`` APIGroupDiscoveryList: the core group for /api, the rest for /apis."""
    groups = registry.group_versions()
    if legacy:
        items = [_aggregated_group(registry, "", groups[""])] if "" in groups else []
    else:
        items = [_aggregated_group(registry, g, versions) for g, versions in _named_groups(registry)]
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }


def _media_params(media_range: str) -> tuple[str, dict[str, str]]:
    parts = [p.strip() for p in media_range.split(";")]
    params: dict[str, str] = {}
    for p in parts[1:]:
        key, _, value = p.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return parts[0].lower(), params


def wants_aggregated(accept_header: str | None) -> bool:
    """True when the Accept header offers aggregated discovery v2 (with a non-zero q)."""
    if not accept_header:
        return False
    for media_range in accept_header.split(","):
        mtype, params = _media_params(media_range)
        if mtype not in ("application/json", "application/*", "*/*"):
            continue
        if (
            params.get("g") == "apidiscovery.k8s.io"
            and params.get("v") == "v2"
            and params.get("as") == "APIGroupDiscoveryList"
        ):
            try:
                if float(params.get("q", "1")) <= 0:
                    continue
            except ValueError:
                continue
            return True
    return False
