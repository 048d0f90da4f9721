"""Turn a request's method and path into Kubernetes request attributes.

The same attributes drive routing, authorization (RBAC matches verb, group,
resource, subresource, namespace, name) and metrics, so they are computed once,
by one pure function, the way the Kubernetes RequestInfoFactory does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Verbs for requests that name a single object vs a collection.
_SINGLE = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "POST": "create"}
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_COLLECTION = {"GET": "list", "POST": "create", "DELETE": "deletecollection", "PUT": "update",
               "PATCH": "patch"}


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What a request asks for, in RBAC's vocabulary."""

    path: str
    verb: str
    is_resource_request: bool = False
    api_prefix: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str | None = None
    resource: str = ""
    subresource: str | None = None
    name: str | None = None

    @property
    def group_version(self) -> str:
        return f"{self.api_group}/{self.api_version}" if self.api_group else self.api_version


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "t", "yes")


def parse_request(method: str, path: str, query: Mapping[str, str] | None = None) -> RequestInfo:
    """Classify ``method path?query``; non-API paths come back with is_resource_request False."""
    query = query or {}
    method = method.upper()
    parts = [p for p in path.strip("/").split("/") if p]
    non_resource = RequestInfo(path=path, verb=method.lower())
    if not parts or parts[0] not in ("api", "apis"):
        return non_resource
    prefix = parts[0]
    rest = parts[1:]
    if prefix == "api":
        if not rest:
            return non_resource
        group, version, rest = "", rest[0], rest[1:]
    else:
        if len(rest) < 2:
            return non_resource
        group, version, rest = rest[0], rest[1], rest[2:]
    if not rest:
        return non_resource  # discovery document for the group-version

    legacy_watch = rest[0] == "watch"
    if legacy_watch:
        rest = rest[1:]
        if not rest:
            return non_resource

    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 2:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]  # /namespaces/{ns}/{resource}[/{name}[/{subresource}]]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = "/".join(rest[2:]) if len(rest) > 2 else None

    if name is None:
        verb = _COLLECTION.get(method, method.lower())
    else:
        verb = _SINGLE.get(method, method.lower())
    if method == "GET" and (legacy_watch or _truthy(query.get("watch"))):
        verb = "watch"
    return RequestInfo(
        path=path,
        verb=verb,
        is_resource_request=True,
        api_prefix=prefix,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
    )
