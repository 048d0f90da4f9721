"""The kinds registry: one entry per served kind, from which the API server derives
routes, discovery documents, OpenAPI and storage keys.

Adding a kind to kcore is one ``KindRegistry.register`` call. ``builtin_registry()``
returns a fresh registry holding every built-in kind, so tests and plugins may add
kinds (CRDs, plugin APIs) without touching shared state.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_VERBS: tuple[str, ...] = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)
"""The verbs of an ordinary resource, as discovery lists them."""


@dataclass(frozen=True)
class KindInfo:
    """Everything the API machinery needs to serve one kind at one group/version."""

    group: str
    """API group; "" for the core (legacy) group."""
    version: str
    kind: str
    plural: str
    """The resource name in URLs (``deployments``)."""
    singular: str
    namespaced: bool
    model: type
    """The pydantic model of one object."""
    list_model: type | None
    """The pydantic model of a list; None for create-only kinds such as Binding."""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    """Groupings for ``kubectl get <category>``, e.g. ("all",)."""
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = DEFAULT_VERBS
    defaulter: Callable[[Any], Any] | None = None
    """Fills unset fields in place (and returns the object)."""
    validator: Callable[[Any], list[Any]] | None = None
    """Returns the object's field errors; an empty list means valid."""

    @property
    def api_version(self) -> str:
        """The ``apiVersion`` of objects: "v1" for core, "apps/v1" otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def key_prefix(self) -> str:
        """Store key prefix of objects of this kind, as in etcd: ``/registry/apps/deployments/``."""
        return f"/registry/{self.group or 'core'}/{self.plural}/"

    def has_subresource(self, name: str) -> bool:
        return name in self.subresources


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key (ascending = most preferred first) following Kubernetes' version ordering.

    GA before beta before alpha, higher numbers first; non-conforming names last,
    alphabetically: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > foo.
    """
    m = _VERSION_RE.match(version)
    if m is None:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, "")


class KindRegistry:
    """The set of kinds served by one API server; lookups by apiVersion/kind, by
    resource path, or by the names a kubectl user types."""

    def __init__(self) -> None:
        self._kinds: list[KindInfo] = []
        self._by_gvk: dict[tuple[str, str, str], KindInfo] = {}
        self._by_gvr: dict[tuple[str, str, str], KindInfo] = {}

    def register(self, info: KindInfo) -> None:
        """Add a kind; a second kind with the same group/version/kind or resource is an error."""
        gvk = (info.group, info.version, info.kind)
        gvr = (info.group, info.version, info.plural)
        if gvk in self._by_gvk:
            raise ValueError(f"kind {info.kind} in {info.api_version} is already registered")
        if gvr in self._by_gvr:
            raise ValueError(f"resource {info.plural} in {info.api_version} is already registered")
        self._kinds.append(info)
        self._by_gvk[gvk] = info
        self._by_gvr[gvr] = info

    def get(self, api_version: str, kind: str) -> KindInfo:
        """The kind of an object with this ``apiVersion`` and ``kind``; KeyError if unknown."""
        group, _, version = api_version.rpartition("/")
        info = self._by_gvk.get((group, version, kind))
        if info is None:
            raise KeyError(f'no kind "{kind}" is registered for version "{api_version}"')
        return info

    def by_resource(self, group: str, version: str, plural: str) -> KindInfo | None:
        """The kind served at ``/apis/<group>/<version>/<plural>`` (``/api/v1/<plural>`` for core)."""
        return self._by_gvr.get((group, version, plural))

    def resolve(self, name: str) -> list[KindInfo]:
        """Kinds a kubectl-style resource name refers to.

        Accepts plural, singular, short name or kind, case-insensitively, optionally
        qualified by group (``deployments.apps``) or version and group
        (``deployment.v1.apps``). Core-group matches come first, then registration
        order; within a group the preferred version comes first.
        """
        needle = name.strip().lower()
        if not needle:
            return []
        matches = [info for info in self._kinds if self._names_match(info, needle)]
        if not matches and "." in needle:
            resource, qualifier = needle.split(".", 1)
            for info in self._kinds:
                if not self._names_match(info, resource):
                    continue
                if qualifier == info.group.lower():
                    matches.append(info)
                elif qualifier == f"{info.version}.{info.group}".lower():
                    matches.append(info)
        return sorted(
            matches,
            key=lambda i: (i.group != "", self._group_order(i.group), version_priority(i.version)),
        )

    def kinds(self) -> list[KindInfo]:
        """Every registered kind, in registration order."""
        return list(self._kinds)

    def group_versions(self) -> dict[str, list[str]]:
        """Group -> served versions, the preferred version first (discovery's order)."""
        result: dict[str, list[str]] = {}
        for info in self._kinds:
            versions = result.setdefault(info.group, [])
            if info.version not in versions:
                versions.append(info.version)
        for versions in result.values():
            versions.sort(key=version_priority)
        return result

    def __len__(self) -> int:
        return len(self._kinds)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(list(self._kinds))

    def __contains__(self, item: object) -> bool:
        return item in self._kinds

    @staticmethod
    def _names_match(info: KindInfo, needle: str) -> bool:
        return (
            needle == info.plural
            or needle == info.singular
            or needle == info.kind.lower()
            or needle in info.short_names
        )

    def _group_order(self, group: str) -> int:
        for index, info in enumerate(self._kinds):
            if info.group == group:
                return index
        return len(self._kinds)


# ---------------------------------------------------------------- built-in kinds

_STATUS = ("status",)
_STATUS_SCALE = ("status", "scale")
_ALL = ("all",)


def _builtin_kinds() -> list[KindInfo]:
    """KindInfo for every built-in kind; imports the models here to keep import order free of cycles."""
    from kcore.api import (
        apps_v1,
        authorization_v1,
        autoscaling,
        batch_v1,
        coordination_v1,
        core_v1,
        discovery_v1,
        rbac_v1,
        storage_v1,
    )
    from kcore.api.defaults_core import CORE_DEFAULTERS
    from kcore.api.defaults_workloads import WORKLOAD_DEFAULTERS
    from kcore.api.validate_core import CORE_VALIDATORS
    from kcore.api.validate_workloads import WORKLOAD_VALIDATORS

    defaulters = {**CORE_DEFAULTERS, **WORKLOAD_DEFAULTERS}
    validators = {**CORE_VALIDATORS, **WORKLOAD_VALIDATORS}

    def kind(
        module: Any,
        group: str,
        version: str,
        name: str,
        plural: str,
        *,
        namespaced: bool = True,
        short_names: tuple[str, ...] = (),
        categories: tuple[str, ...] = (),
        subresources: tuple[str, ...] = (),
        verbs: tuple[str, ...] = DEFAULT_VERBS,
        has_list: bool = True,
    ) -> KindInfo:
        return KindInfo(
            group=group,
            version=version,
            kind=name,
            plural=plural,
            singular=name.lower(),
            namespaced=namespaced,
            model=getattr(module, name),
            list_model=getattr(module, f"{name}List") if has_list else None,
            short_names=short_names,
            categories=categories,
            subresources=subresources,
            verbs=verbs,
            defaulter=defaulters.get(name),
            validator=validators.get(name),
        )

    core, apps, batch = core_v1, apps_v1, batch_v1
    rbac = "rbac.authorization.k8s.io"
    no_deletecollection = tuple(v for v in DEFAULT_VERBS if v != "deletecollection")
    return [
        # core/v1
        kind(core, "", "v1", "Namespace", "namespaces", namespaced=False, short_names=("ns",),
             subresources=("status", "finalize"), verbs=no_deletecollection),
        kind(core, "", "v1", "Node", "nodes", namespaced=False, short_names=("no",),
             subresources=("status", "proxy")),
        kind(core, "", "v1", "Pod", "pods", short_names=("po",), categories=_ALL,
             subresources=("status", "binding", "log", "eviction", "exec", "attach", "portforward",
                           "ephemeralcontainers", "proxy")),
        kind(core, "", "v1", "PodTemplate", "podtemplates"),
        kind(core, "", "v1", "Service", "services", short_names=("svc",), categories=_ALL,
             subresources=("status", "proxy")),
        kind(core, "", "v1", "Endpoints", "endpoints", short_names=("ep",)),
        kind(core, "", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
        kind(core, "", "v1", "Secret", "secrets"),
        kind(core, "", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",),
             subresources=("token",)),
        kind(core, "", "v1", "Event", "events", short_names=("ev",)),
        kind(core, "", "v1", "PersistentVolume", "persistentvolumes", namespaced=False,
             short_names=("pv",), subresources=_STATUS),
        kind(core, "", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short_names=("pvc",),
             subresources=_STATUS),
        kind(core, "", "v1", "ResourceQuota", "resourcequotas", short_names=("quota",),
             subresources=_STATUS),
        kind(core, "", "v1", "LimitRange", "limitranges", short_names=("limits",)),
        kind(core, "", "v1", "ReplicationController", "replicationcontrollers", short_names=("rc",),
             categories=_ALL, subresources=_STATUS_SCALE),
        kind(core, "", "v1", "Binding", "bindings", verbs=("create",), has_list=False),
        # apps/v1
        kind(apps, "apps", "v1", "Deployment", "deployments", short_names=("deploy",), categories=_ALL,
             subresources=_STATUS_SCALE),
        kind(apps, "apps", "v1", "ReplicaSet", "replicasets", short_names=("rs",), categories=_ALL,
             subresources=_STATUS_SCALE),
        kind(apps, "apps", "v1", "StatefulSet", "statefulsets", short_names=("sts",), categories=_ALL,
             subresources=_STATUS_SCALE),
        kind(apps, "apps", "v1", "DaemonSet", "daemonsets", short_names=("ds",), categories=_ALL,
             subresources=_STATUS),
        kind(apps, "apps", "v1", "ControllerRevision", "controllerrevisions"),
        # batch/v1
        kind(batch, "batch", "v1", "Job", "jobs", categories=_ALL, subresources=_STATUS),
        kind(batch, "batch", "v1", "CronJob", "cronjobs", short_names=("cj",), categories=_ALL,
             subresources=_STATUS),
        # autoscaling/v2
        kind(autoscaling, "autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
             short_names=("hpa",), categories=_ALL, subresources=_STATUS),
        # storage.k8s.io/v1
        kind(storage_v1, "storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False,
             short_names=("sc",)),
        # coordination.k8s.io/v1
        kind(coordination_v1, "coordination.k8s.io", "v1", "Lease", "leases"),
        # discovery.k8s.io/v1
        kind(discovery_v1, "discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
        # rbac.authorization.k8s.io/v1
        kind(rbac_v1, rbac, "v1", "Role", "roles"),
        kind(rbac_v1, rbac, "v1", "ClusterRole", "clusterroles", namespaced=False),
        kind(rbac_v1, rbac, "v1", "RoleBinding", "rolebindings"),
        kind(rbac_v1, rbac, "v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
        # authorization.k8s.io/v1 (answered by the authorizer, never stored)
        KindInfo(group="authorization.k8s.io", version="v1", kind="SelfSubjectAccessReview",
                 plural="selfsubjectaccessreviews", singular="selfsubjectaccessreview",
                 namespaced=False, model=authorization_v1.SelfSubjectAccessReview, list_model=None,
                 verbs=("create",),
                 validator=authorization_v1.validate_self_subject_access_review),
    ]


@functools.cache
def _cached_builtin_kinds() -> tuple[KindInfo, ...]:
    return tuple(_builtin_kinds())


def builtin_registry() -> KindRegistry:
    """A new registry holding every built-in kind (cheap: the KindInfo list is built once)."""
    registry = KindRegistry()
    for info in _cached_builtin_kinds():
        registry.register(info)
    return registry
