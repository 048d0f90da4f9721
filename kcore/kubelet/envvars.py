"""A container's environment, built the way the kubelet builds it.

Pure functions: ConfigMaps and Secrets arrive through lookup callables, so the
kubelet passes informer-cache reads and tests pass dicts. Order follows the
kubelet: HOSTNAME, service variables, then ``envFrom``, then ``env`` (later wins),
and each ``$(VAR)`` refers only to what was defined before it.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from kcore.api.quantity import parse_quantity

if TYPE_CHECKING:
    from kcore.api.core_v1 import Container, Pod, Service

# (namespace, name) -> the object's ``data`` mapping, or None when it does not exist.
DataLookup = Callable[[str, str], Mapping[str, str] | None]

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_FIELD_INDEX = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")
_MASTER_SERVICES = frozenset({"kubernetes"})


class EnvError(Exception):
    """A reference the container needs is missing or invalid.

    The kubelet reports it as the waiting reason ``CreateContainerConfigError``
    with this message, as Kubernetes does.
    """

    reason = "CreateContainerConfigError"


def expand(text: str, lookup: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: ``$$`` escapes, unknown references stay verbatim."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close < 0:
                out.append(text[i:])
                break
            name = text[i + 2:close]
            out.append(lookup[name] if name in lookup else text[i:close + 1])
            i = close + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def service_env(services: Iterable[Service], namespace: str, enable_service_links: bool = True) -> dict[str, str]:
    """Docker-link style variables for the pod's services (and always the API's own).

    Services of the pod's namespace count when service links are on; the
    ``kubernetes`` service of ``default`` always counts, unless the pod's
    namespace has a service of the same name.
    """
    chosen: dict[str, Service] = {}
    for svc in services:
        ns, name = svc.metadata.namespace or "default", svc.metadata.name or ""
        spec = svc.spec
        if spec is None or not spec.clusterIP or spec.clusterIP == "None":
            continue
        if ns == namespace and enable_service_links:
            chosen[name] = svc
        elif ns == "default" and name in _MASTER_SERVICES:
            chosen.setdefault(name, svc)
    env: dict[str, str] = {}
    for name in sorted(chosen):
        env.update(_one_service_env(chosen[name]))
    return env


def _one_service_env(svc: Service) -> dict[str, str]:
    assert svc.spec is not None
    prefix = (svc.metadata.name or "").upper().replace("-", "_")
    ip = svc.spec.clusterIP or ""
    ports = svc.spec.ports or []
    env = {f"{prefix}_SERVICE_HOST": ip}
    if not ports:
        return env
    env[f"{prefix}_SERVICE_PORT"] = str(ports[0].port)
    for port in ports:
        if port.name:
            env[f"{prefix}_SERVICE_PORT_{port.name.upper().replace('-', '_')}"] = str(port.port)
    first_proto = (ports[0].protocol or "TCP").lower()
    env[f"{prefix}_PORT"] = f"{first_proto}://{ip}:{ports[0].port}"
    for port in ports:
        proto = port.protocol or "TCP"
        base = f"{prefix}_PORT_{port.port}_{proto.upper()}"
        env[base] = f"{proto.lower()}://{ip}:{port.port}"
        env[f"{base}_PROTO"] = proto.lower()
        env[f"{base}_PORT"] = str(port.port)
        env[f"{base}_ADDR"] = ip
    return env


def field_value(pod: Pod, path: str) -> str:
    """The downward-API value of ``fieldRef.fieldPath``."""
    meta, spec, status = pod.metadata, pod.spec, pod.status
    m = _FIELD_INDEX.match(path)
    if m:
        source = (meta.labels if m.group(1) == "labels" else meta.annotations) or {}
        return source.get(m.group(2), "")
    simple: dict[str, Callable[[], str | None]] = {
        "metadata.name": lambda: meta.name,
        "metadata.namespace": lambda: meta.namespace,
        "metadata.uid": lambda: meta.uid,
        "spec.nodeName": lambda: spec.nodeName if spec else None,
        "spec.serviceAccountName": lambda: (spec.serviceAccountName or spec.serviceAccount) if spec else None,
        "status.hostIP": lambda: status.hostIP if status else None,
        "status.podIP": lambda: status.podIP if status else None,
        "status.hostIPs": lambda: ",".join(i.ip for i in (status.hostIPs or [])) if status else None,
        "status.podIPs": lambda: ",".join(i.ip for i in (status.podIPs or [])) if status else None,
    }
    if path not in simple:
        raise EnvError(f"unsupported fieldRef fieldPath {path!r}")
    return simple[path]() or ""


def resource_value(
    pod: Pod, container: Container, ref: Any, node_allocatable: Mapping[str, str] | None = None
) -> str:
    """The value of ``resourceFieldRef``: rounded up to whole divisors, as Kubernetes does.

    An unset limit reads as the node's allocatable amount (what the container may
    really use); an unset request falls back to the limit, else 0.
    """
    target = container
    if ref.containerName and ref.containerName != container.name:
        spec_containers = [*(pod.spec.containers if pod.spec else []), *((pod.spec.initContainers or []) if pod.spec else [])]
        found = [c for c in spec_containers if c.name == ref.containerName]
        if not found:
            raise EnvError(f"resourceFieldRef refers to unknown container {ref.containerName!r}")
        target = found[0]
    kind, _, resource = ref.resource.partition(".")
    if kind not in ("limits", "requests") or resource not in ("cpu", "memory", "ephemeral-storage"):
        raise EnvError(f"unsupported resourceFieldRef resource {ref.resource!r}")
    res = target.resources
    limits = dict((res.limits if res else None) or {})
    requests = dict((res.requests if res else None) or {})
    if kind == "limits":
        raw = limits.get(resource) or (node_allocatable or {}).get(resource)
    else:
        raw = requests.get(resource) or limits.get(resource)
    value = parse_quantity(str(raw)).value if raw is not None else Fraction(0)
    divisor = parse_quantity(str(ref.divisor)).value if ref.divisor else Fraction(1)
    if divisor == 0:
        raise EnvError(f"resourceFieldRef divisor for {ref.resource!r} is zero")
    return str(math.ceil(value / divisor))


def _lookup_key(
    kind: str, lookup: DataLookup, namespace: str, name: str | None, key: str, optional: bool, decode: bool
) -> str | None:
    data = lookup(namespace, name or "")
    if data is None:
        if optional:
            return None
        raise EnvError(f'{kind.lower()} "{name}" not found')
    if key not in data:
        if optional:
            return None
        raise EnvError(f"couldn't find key {key} in {kind} {namespace}/{name}")
    return _decode(data[key]) if decode else data[key]


def _decode(value: str) -> str:
    return base64.b64decode(value).decode("utf-8", "replace")


def build_env(
    pod: Pod,
    container: Container,
    *,
    get_configmap: DataLookup,
    get_secret: DataLookup,
    services: Iterable[Service] = (),
    node_allocatable: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The final environment of ``container`` in ``pod``, in definition order.

    ``get_secret`` returns a Secret's ``data`` (base64 values, as in the API).
    Raises ``EnvError`` for a missing non-optional reference.
    """
    namespace = pod.metadata.namespace or "default"
    spec = pod.spec
    enable_links = spec.enableServiceLinks if spec and spec.enableServiceLinks is not None else True
    env: dict[str, str] = {"HOSTNAME": (spec.hostname if spec and spec.hostname else pod.metadata.name) or ""}
    env.update(service_env(services, namespace, enable_links))

    for source in container.envFrom or []:
        prefix = source.prefix or ""
        if source.configMapRef is not None:
            ref, kind, lookup, decode = source.configMapRef, "ConfigMap", get_configmap, False
        elif source.secretRef is not None:
            ref, kind, lookup, decode = source.secretRef, "Secret", get_secret, True
        else:
            continue
        data = lookup(namespace, ref.name or "")
        if data is None:
            if ref.optional:
                continue
            raise EnvError(f'{kind.lower()} "{ref.name}" not found')
        for key, value in data.items():
            name = prefix + key
            if _ENV_NAME.match(name):  # Kubernetes skips invalid names (with an event)
                env[name] = _decode(value) if decode else value

    for var in container.env or []:
        if var.valueFrom is None:
            env[var.name] = expand(var.value or "", env)
            continue
        src = var.valueFrom
        value: str | None
        if src.fieldRef is not None:
            value = field_value(pod, src.fieldRef.fieldPath)
        elif src.resourceFieldRef is not None:
            value = resource_value(pod, container, src.resourceFieldRef, node_allocatable)
        elif src.configMapKeyRef is not None:
            r = src.configMapKeyRef
            value = _lookup_key("ConfigMap", get_configmap, namespace, r.name, r.key, bool(r.optional), False)
        elif src.secretKeyRef is not None:
            r2 = src.secretKeyRef
            value = _lookup_key("Secret", get_secret, namespace, r2.name, r2.key, bool(r2.optional), True)
        else:
            raise EnvError(f"env var {var.name!r} has an empty valueFrom")
        if value is not None:
            env[var.name] = value
    return env
