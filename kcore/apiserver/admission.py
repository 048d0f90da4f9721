"""Admission: the steps every write passes between decoding and the store.

Built-in steps run first (namespace lifecycle, service-account defaulting,
default tolerations), then every ``kcore.admission`` plugin: all mutating hooks,
then all validating hooks. A plugin rejects by returning a reason, which the
client sees in a 403 Forbidden ``Status``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from kcore.api.registry import KindInfo
from kcore.apiserver import errors

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

Obj = dict[str, Any]


@dataclass
class AdmissionRequest:
    """What is being written, by whom. Passed to ``kcore_admission_*`` hooks."""

    operation: str  # CREATE | UPDATE | DELETE | CONNECT
    info: KindInfo
    namespace: str | None
    name: str | None
    object: Obj | None
    old_object: Obj | None = None
    subresource: str | None = None
    user: str = ""
    groups: tuple[str, ...] = ()
    dry_run: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.info.kind


NamespaceLookup = Callable[[str], Awaitable[Obj | None]]


def _forbidden(req: AdmissionRequest, reason: str) -> errors.ApiError:
    name = req.name or ((req.object or {}).get("metadata") or {}).get("name") or ""
    resource = req.info.plural if not req.info.group else f"{req.info.plural}.{req.info.group}"
    subject = f'{resource} "{name}"' if name else resource
    return errors.forbidden(f"{subject} is forbidden: {reason}", name=name or None,
                            group=req.info.group, kind=req.info.plural)


async def namespace_lifecycle(req: AdmissionRequest, lookup: NamespaceLookup) -> None:
    """Objects go only into namespaces that exist and are not terminating; system
    namespaces cannot be deleted."""
    if req.info.kind == "Namespace" and not req.info.group:
        if req.operation == "DELETE" and req.name in SYSTEM_NAMESPACES:
            raise _forbidden(req, "this namespace may not be deleted")
        return
    if not req.info.namespaced or req.operation != "CREATE" or not req.namespace:
        return
    namespace = await lookup(req.namespace)
    if namespace is None:
        raise errors.not_found("namespaces", "", req.namespace)
    terminating = (namespace.get("metadata") or {}).get("deletionTimestamp") or \
        (namespace.get("status") or {}).get("phase") == "Terminating"
    if terminating and req.info.kind != "Event":
        raise _forbidden(req, f"unable to create new content in namespace {req.namespace} "
                              f"because it is being terminated")


def default_service_account(req: AdmissionRequest) -> None:
    """Pods run as the namespace's ``default`` ServiceAccount unless they say otherwise."""
    if req.operation != "CREATE" or req.info.kind != "Pod" or req.info.group or req.subresource:
        return
    spec = (req.object or {}).setdefault("spec", {})
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec.get("serviceAccount") or "default"
    spec.setdefault("serviceAccount", spec["serviceAccountName"])


def default_tolerations(req: AdmissionRequest, seconds: int = 300) -> None:
    """Pods tolerate not-ready/unreachable nodes for ``seconds`` (DefaultTolerationSeconds)."""
    if req.operation != "CREATE" or req.info.kind != "Pod" or req.info.group or req.subresource:
        return
    spec = (req.object or {}).setdefault("spec", {})
    tolerations = spec.setdefault("tolerations", [])
    for taint in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        covered = any(
            (t.get("key") == taint or (t.get("operator") == "Exists" and not t.get("key")))
            and t.get("effect") in (None, "", "NoExecute")
            for t in tolerations
        )
        if not covered:
            tolerations.append({"key": taint, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": seconds})


def node_restriction(req: AdmissionRequest) -> None:
    """A node may create or change only its own Node and Lease (NodeRestriction).

    Authorization cannot see the name of an object being created; admission can.
    """
    if not req.user.startswith("system:node:") or "system:nodes" not in req.groups:
        return
    node = req.user.removeprefix("system:node:")
    name = req.name or ((req.object or {}).get("metadata") or {}).get("name")
    kind = (req.info.group, req.info.kind)
    if kind == ("", "Node") and name != node:
        raise _forbidden(req, f'node "{node}" is not allowed to modify node "{name}"')
    if kind == ("coordination.k8s.io", "Lease") and (name != node or req.namespace != "kube-node-lease"):
        raise _forbidden(req, f'node "{node}" is not allowed to modify lease {req.namespace}/{name}')
    if kind == ("", "Pod") and req.operation == "CREATE":
        bound = ((req.object or {}).get("spec") or {}).get("nodeName")
        if bound != node:
            raise _forbidden(req, f'node "{node}" can only create pods bound to itself')


class AdmissionChain:
    """Runs the built-in steps and the plugin hooks in a fixed order."""

    def __init__(self, *, namespace_lookup: NamespaceLookup, hook: Any = None,
                 toleration_seconds: int = 300) -> None:
        self.namespace_lookup = namespace_lookup
        self.hook = hook  # the plugin host's hook relay (pm.hook), or None
        self.toleration_seconds = toleration_seconds

    async def mutate(self, req: AdmissionRequest) -> None:
        """Built-in mutations, then each plugin's; a plugin may return a replacement object."""
        await self.mutate_builtin(req)
        self.mutate_plugins(req)

    async def mutate_builtin(self, req: AdmissionRequest) -> None:
        """The built-in steps; what they add is valid by construction."""
        await namespace_lifecycle(req, self.namespace_lookup)
        node_restriction(req)
        default_service_account(req)
        default_tolerations(req, self.toleration_seconds)

    def mutate_plugins(self, req: AdmissionRequest) -> None:
        """Every ``kcore_admission_mutate`` plugin in turn."""
        if self.hook is not None and req.object is not None:
            # One plugin after the other, each seeing the previous one's result.
            for impl in reversed(self.hook.kcore_admission_mutate.get_hookimpls()):
                replacement = impl.function(request=req)
                if isinstance(replacement, dict):
                    req.object = replacement

    async def validate(self, req: AdmissionRequest) -> None:
        """Every plugin's validation; the first rejection reason wins."""
        if self.hook is None:
            return
        for reason in self.hook.kcore_admission_validate(request=req):
            if reason:
                raise _forbidden(req, str(reason))
