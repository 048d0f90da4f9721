"""Wire authentication and authorization into the API server.

The authenticator and the authorizer chain (privileged groups, Node, RBAC) are
pure; this module feeds them: the client certificate and bearer token of each
request, and RBAC objects and pod-to-node bindings kept current from the API
server's own watch caches.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from kcore.api.registry import KindRegistry
from kcore.apiserver import errors
from kcore.apiserver.authn import (
    ANONYMOUS,
    AUTHENTICATED,
    SA_GROUP,
    AuthenticationError,
    Authenticator,
    UserInfo,
    parse_service_account_username,
)
from kcore.apiserver.rbac import (
    InMemoryRBACLister,
    RequestAttributes,
    default_authorizer,
    forbidden_status_message,
    subject_access_review,
)
from kcore.apiserver.requestinfo import RequestInfo
from kcore.apiserver.resources import ResourceStore
from kcore.apiserver.watchcache import WatchCaches
from kcore.log import get_logger

log = get_logger("apiserver-auth")

RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
RBAC_API = "rbac.authorization.k8s.io/v1"


class PodBindings:
    """Which node each pod is bound to, and what its pods reference (Node authorizer input)."""

    def __init__(self) -> None:
        self._node_of: dict[tuple[str, str], str] = {}
        self._refs: dict[tuple[str, str], set[tuple[str, str, str]]] = {}

    def update(self, pod: dict[str, Any] | None, key: tuple[str, str]) -> None:
        if pod is None or not (pod.get("spec") or {}).get("nodeName"):
            self._node_of.pop(key, None)
            self._refs.pop(key, None)
            return
        spec = pod["spec"]
        self._node_of[key] = spec["nodeName"]
        refs: set[tuple[str, str, str]] = set()
        namespace = key[0]
        for volume in spec.get("volumes") or []:
            if (volume.get("configMap") or {}).get("name"):
                refs.add(("configmaps", namespace, volume["configMap"]["name"]))
            if (volume.get("secret") or {}).get("secretName"):
                refs.add(("secrets", namespace, volume["secret"]["secretName"]))
            if (volume.get("persistentVolumeClaim") or {}).get("claimName"):
                refs.add(("persistentvolumeclaims", namespace, volume["persistentVolumeClaim"]["claimName"]))
        for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            for env in container.get("env") or []:
                source = env.get("valueFrom") or {}
                if (source.get("configMapKeyRef") or {}).get("name"):
                    refs.add(("configmaps", namespace, source["configMapKeyRef"]["name"]))
                if (source.get("secretKeyRef") or {}).get("name"):
                    refs.add(("secrets", namespace, source["secretKeyRef"]["name"]))
            for env_from in container.get("envFrom") or []:
                if (env_from.get("configMapRef") or {}).get("name"):
                    refs.add(("configmaps", namespace, env_from["configMapRef"]["name"]))
                if (env_from.get("secretRef") or {}).get("name"):
                    refs.add(("secrets", namespace, env_from["secretRef"]["name"]))
        if spec.get("serviceAccountName"):
            refs.add(("serviceaccounts", namespace, spec["serviceAccountName"]))
        self._refs[key] = refs

    def pod_node(self, namespace: str, name: str) -> str | None:
        return self._node_of.get((namespace, name))

    def referenced(self, node: str, resource: str, namespace: str, name: str) -> bool:
        wanted = (resource, namespace, name)
        return any(wanted in refs for key, refs in self._refs.items() if self._node_of.get(key) == node)


class ApiSecurity:
    """Authentication and authorization callables for ``ApiServer``, kept current by watches."""

    def __init__(self, authenticator: Authenticator, registry: KindRegistry) -> None:
        self.authenticator = authenticator
        self.registry = registry
        self.rbac = InMemoryRBACLister()
        self.pods = PodBindings()
        self.authorizer = default_authorizer(self.rbac, pod_node=self.pods.pod_node,
                                             referenced=self.pods.referenced)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, resources: ResourceStore, caches: WatchCaches) -> None:
        """Load RBAC objects and pod bindings, then follow their changes."""
        for kind_name in RBAC_KINDS:
            info = self.registry.get(RBAC_API, kind_name)
            page = await resources.list(info, None)
            for obj in page.items:
                self.rbac.upsert(obj)
            self._tasks.append(asyncio.create_task(
                self._follow(caches, info, int(page.resource_version), self._apply_rbac)))
        pods = self.registry.get("v1", "Pod")
        page = await resources.list(pods, None)
        for obj in page.items:
            self.pods.update(obj, (obj["metadata"]["namespace"], obj["metadata"]["name"]))
        self._tasks.append(asyncio.create_task(
            self._follow(caches, pods, int(page.resource_version), self._apply_pod)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def _apply_rbac(self, event_type: str, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            meta = obj["metadata"]
            self.rbac.delete(obj["kind"], meta.get("namespace"), meta["name"])
        else:
            self.rbac.upsert(obj)

    def _apply_pod(self, event_type: str, obj: dict[str, Any]) -> None:
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        self.pods.update(None if event_type == "DELETED" else obj, key)

    async def _follow(self, caches: WatchCaches, info: Any, revision: int, apply: Any) -> None:
        cache = caches.for_kind(info)
        while True:
            try:
                async for event in cache.watch(revision):
                    apply(event.type, event.object)
                    revision = event.revision
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - fall back to a fresh start point
                log.warning("auth watch restarted", kind=info.kind, error=str(exc))
                revision = await caches.store.current_revision()
                await asyncio.sleep(0.1)

    # ---- the two callables ApiServer takes ---------------------------------------

    def authenticate(self, request: web.Request) -> UserInfo:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        try:
            user = self.authenticator.authenticate(peer or None, request.headers.get("Authorization"))
        except AuthenticationError as exc:
            raise errors.unauthorized(f"Unauthorized: {exc}") from None
        return user or ANONYMOUS

    async def authorize(self, user: UserInfo, info: RequestInfo) -> None:
        attrs = attributes(user, info)
        decision = self.authorizer.authorize(attrs)
        if not decision.allowed:
            raise errors.forbidden(forbidden_status_message(attrs, decision.reason),
                                   name=info.name, group=info.api_group, kind=info.resource or None)

    async def impersonate(self, user: UserInfo, request: web.Request) -> UserInfo:
        """Honour ``Impersonate-User``/``-Group`` (kubectl ``--as``/``--as-group``) when the
        caller may impersonate: verb ``impersonate`` on users, groups or serviceaccounts."""
        target = request.headers.get("Impersonate-User")
        groups = request.headers.getall("Impersonate-Group", [])
        if not target:
            if groups:
                raise errors.bad_request("requested impersonation of groups without a user")
            return user
        checks: list[RequestInfo] = []
        sa = parse_service_account_username(target)
        if sa is not None:
            checks.append(RequestInfo(path=request.path, verb="impersonate", is_resource_request=True,
                                      namespace=sa[0], resource="serviceaccounts", name=sa[1]))
        else:
            checks.append(RequestInfo(path=request.path, verb="impersonate", is_resource_request=True,
                                      resource="users", name=target))
        for group in groups:
            checks.append(RequestInfo(path=request.path, verb="impersonate", is_resource_request=True,
                                      resource="groups", name=group))
        for info in checks:
            attrs = attributes(user, info)
            if not self.authorizer.authorize(attrs).allowed:
                raise errors.forbidden(forbidden_status_message(attrs), name=info.name,
                                       kind=info.resource)
        implied = [AUTHENTICATED]
        if sa is not None and not groups:
            implied = [SA_GROUP, f"{SA_GROUP}:{sa[0]}", AUTHENTICATED]
        all_groups = tuple(dict.fromkeys([*groups, *implied]))
        return UserInfo(target, all_groups)

    async def self_subject_access_review(self, request: web.Request, info: RequestInfo,
                                         user: Any) -> web.StreamResponse:
        """POST selfsubjectaccessreviews: may the caller do X? (``kubectl auth can-i``)."""
        from kcore.apiserver.handlers import json_response

        if info.verb != "create":
            raise errors.method_not_allowed(f"{info.verb} is not supported on selfsubjectaccessreviews")
        from kcore.apiserver.decode import parse_body

        body = parse_body(await request.read(), request.headers.get("Content-Type"))
        spec = (body or {}).get("spec") or {} if isinstance(body, dict) else {}
        status = subject_access_review(self.authorizer, user or ANONYMOUS, spec)
        return json_response({"kind": "SelfSubjectAccessReview",
                              "apiVersion": "authorization.k8s.io/v1",
                              "metadata": {"creationTimestamp": None}, "spec": spec,
                              "status": status}, status=201)


def attributes(user: UserInfo, info: RequestInfo) -> RequestAttributes:
    return RequestAttributes(
        user=user, verb=info.verb, namespace=info.namespace, api_group=info.api_group,
        resource=info.resource, subresource=info.subresource, name=info.name, path=info.path,
        resource_request=info.is_resource_request,
    )
