"""OpenAPI v3 documents generated from the pydantic models in the kinds registry.

kubectl fetches ``/openapi/v3`` and then one document per group-version: ``explain``
reads field docs from it, and ``create``/``apply`` look in it for a PATCH operation
that carries ``x-kubernetes-group-version-kind`` and a ``fieldValidation`` parameter
before they send ``fieldValidation=Strict``. Schema names follow Kubernetes
(``io.k8s.api.apps.v1.Deployment``) so tools that know the real names find them.

The models are walked directly (not through ``model_json_schema``) because the
Kubernetes shape needs package-qualified names, ``$ref``s wrapped in ``allOf`` next
to a description, and the IntOrString/Quantity conventions. Documents are large, so
they are built once per registry contents and memoized as dicts and as JSON bytes.
"""

from __future__ import annotations

import enum
import hashlib
import re
import threading
import types
import typing
import weakref
from typing import Any, Literal, Union

import orjson
from pydantic import BaseModel

from kcore.api.registry import KindInfo, KindRegistry
from kcore.apiserver.patch.merge_keys import patch_tag

__all__ = [
    "INT_OR_STRING",
    "QUANTITY",
    "OBJECT_META",
    "schema_name",
    "openapi_v3_index",
    "openapi_v3_document",
    "openapi_v3_document_bytes",
    "openapi_path_key",
]

META_PKG = "io.k8s.apimachinery.pkg.apis.meta.v1"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
OBJECT_META = f"{META_PKG}.ObjectMeta"
STATUS = f"{META_PKG}.Status"
DELETE_OPTIONS = f"{META_PKG}.DeleteOptions"
PATCH = f"{META_PKG}.Patch"
SCALE = "io.k8s.api.autoscaling.v1.Scale"

_REF_PREFIX = "#/components/schemas/"

_COMMON_DOCS = {
    "apiVersion": (
        "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
        "recognized schemas to the latest internal value, and may reject unrecognized values. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
    ),
    "kind": (
        "Kind is a string value representing the REST resource this object represents. Servers may infer this "
        "from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
    ),
    "metadata": (
        "Standard object's metadata. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
    ),
}

_FIXED_SCHEMAS: dict[str, dict[str, Any]] = {
    INT_OR_STRING: {
        "description": "IntOrString is a type that can hold an int32 or a string. When used in JSON or YAML "
        "marshalling and unmarshalling, it produces or consumes the inner type.",
        "format": "int-or-string",
        "oneOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
    },
    QUANTITY: {
        "description": "Quantity is a fixed-point representation of a number, written as a string with an "
        "optional suffix: binary SI (Ki, Mi, Gi, Ti, Pi, Ei), decimal SI (m, k, M, G, T, P, E) or a decimal "
        "exponent (e3). Examples: 100m, 1.5Gi, 2.",
        "oneOf": [{"type": "string"}, {"type": "number"}],
    },
    DELETE_OPTIONS: {
        "description": "DeleteOptions may be provided when deleting an API object.",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string", "description": _COMMON_DOCS["apiVersion"]},
            "kind": {"type": "string", "description": _COMMON_DOCS["kind"]},
            "dryRun": {
                "type": "array",
                "items": {"type": "string", "default": ""},
                "description": "When present, indicates that modifications should not be persisted. "
                "Valid value: All.",
            },
            "gracePeriodSeconds": {
                "type": "integer",
                "format": "int64",
                "description": "The duration in seconds before the object should be deleted.",
            },
            "orphanDependents": {"type": "boolean", "description": "Deprecated: use propagationPolicy."},
            "preconditions": {
                "type": "object",
                "description": "Must be fulfilled before a deletion is carried out.",
                "properties": {"resourceVersion": {"type": "string"}, "uid": {"type": "string"}},
            },
            "propagationPolicy": {
                "type": "string",
                "description": "Whether and how garbage collection will be performed: Orphan, Background "
                "or Foreground.",
            },
        },
        "x-kubernetes-group-version-kind": [{"group": "", "kind": "DeleteOptions", "version": "v1"}],
    },
    PATCH: {
        "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
        "type": "object",
    },
    SCALE: {
        "description": "Scale represents a scaling request for a resource.",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string", "description": _COMMON_DOCS["apiVersion"]},
            "kind": {"type": "string", "description": _COMMON_DOCS["kind"]},
            "metadata": {"description": _COMMON_DOCS["metadata"], "allOf": [{"$ref": _REF_PREFIX + OBJECT_META}]},
            "spec": {
                "description": "Defines the behavior of the scale.",
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer", "format": "int32", "description": "Desired number of instances."}
                },
            },
            "status": {
                "description": "Current status of the scale.",
                "type": "object",
                "required": ["replicas"],
                "properties": {
                    "replicas": {"type": "integer", "format": "int32", "description": "Actual number of instances."},
                    "selector": {"type": "string", "description": "Label query over pods, in label selector form."},
                },
            },
        },
        "x-kubernetes-group-version-kind": [{"group": "autoscaling", "kind": "Scale", "version": "v1"}],
    },
}

# Schemas that fixed schemas refer to and must therefore travel with them.
_FIXED_DEPENDENCIES: dict[str, tuple[str, ...]] = {SCALE: (OBJECT_META,)}

# ------------------------------------------------------------------------- naming


def _group_package(group: str, version: str) -> str:
    """``apps``/``v1`` -> ``io.k8s.api.apps.v1``; the first DNS label names the Go package."""
    return f"io.k8s.api.{group.split('.')[0] if group else 'core'}.{version}"


_MODULE_RE = re.compile(r"^([a-z]+)_(v\d+(?:alpha\d+|beta\d+)?)(?:_.*)?$")


class _Namer:
    """Gives every model class a unique Kubernetes-style schema name."""

    def __init__(self, registry: KindRegistry) -> None:
        self._module_pkg: dict[str, str] = {}
        self._names: dict[type, str] = {}
        self._taken: dict[str, type] = {}
        self._kind_of: dict[type, KindInfo] = {}
        for info in registry.kinds():
            pkg = _group_package(info.group, info.version)
            self._module_pkg.setdefault(info.model.__module__, pkg)
            self._kind_of.setdefault(info.model, info)
            if info.list_model is not None:
                self._module_pkg.setdefault(info.list_model.__module__, pkg)

    def package(self, model: type) -> str:
        module = model.__module__
        if module == "kcore.api.meta":
            return META_PKG
        if module in self._module_pkg:
            return self._module_pkg[module]
        tail = module.rsplit(".", 1)[-1]
        m = _MODULE_RE.match(tail)
        if module.startswith("kcore.api.") and m:
            return f"io.k8s.api.{m.group(1)}.{m.group(2)}"
        return "io.kcore." + module.replace("_", "-")

    def name(self, model: type) -> str:
        if model in self._names:
            return self._names[model]
        base = f"{self.package(model)}.{model.__name__}"
        candidate, n = base, 2
        while candidate in self._taken and self._taken[candidate] is not model:
            candidate, n = f"{base}{n}", n + 1
        self._taken[candidate] = model
        self._names[model] = candidate
        return candidate


def schema_name(registry: KindRegistry, model: type) -> str:
    """The components/schemas name of ``model`` (e.g. ``io.k8s.api.core.v1.Pod``)."""
    return _Namer(registry).name(model)


# ------------------------------------------------------------------------- schemas


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF_PREFIX + name}


def _is_quantity(metadata: typing.Iterable[Any]) -> bool:
    for m in metadata:
        func = getattr(m, "func", None)
        if func is not None and getattr(func, "__module__", "") == "kcore.api.quantity":
            return True
    return False


class _SchemaBuilder:
    """Walks models into ``components.schemas``, collecting every schema it refers to."""

    def __init__(self, namer: _Namer, gvk_of: dict[type, list[dict[str, str]]]) -> None:
        self.namer = namer
        self.gvk_of = gvk_of
        self.schemas: dict[str, dict[str, Any]] = {}

    def add_fixed(self, name: str) -> None:
        if name in self.schemas:
            return
        if name == OBJECT_META:
            from kcore.api.meta import ObjectMeta

            self.model_ref(ObjectMeta)
            return
        self.schemas[name] = _FIXED_SCHEMAS[name]
        for dep in _FIXED_DEPENDENCIES.get(name, ()):
            self.add_fixed(dep)

    def model_ref(self, model: type[BaseModel]) -> str:
        name = self.namer.name(model)
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder: breaks recursion
            self.schemas[name] = self._model_schema(model)
        return name

    def _model_schema(self, model: type[BaseModel]) -> dict[str, Any]:
        schema: dict[str, Any] = {}
        doc = model.__dict__.get("__doc__")
        if doc:
            schema["description"] = " ".join(doc.split())
        schema["type"] = "object"
        props: dict[str, Any] = {}
        required: list[str] = []
        for fname, finfo in model.model_fields.items():
            wire = finfo.alias or fname
            prop = self.type_schema(finfo.annotation, finfo.metadata)
            desc = finfo.description or _COMMON_DOCS.get(wire)
            if desc:
                desc = " ".join(desc.split())
                if "$ref" in prop:
                    prop = {"description": desc, "allOf": [prop]}
                else:
                    prop = {"description": desc, **prop}
            tag = patch_tag([cls.__name__ for cls in model.__mro__], wire)
            if tag is not None:
                # kubectl's client-side apply builds strategic merge patches from these.
                strategy, merge_key = tag
                prop["x-kubernetes-patch-strategy"] = strategy
                if merge_key is not None:
                    prop["x-kubernetes-patch-merge-key"] = merge_key
            props[wire] = prop
            if finfo.is_required():
                required.append(wire)
        if props:
            schema["properties"] = props
        if required:
            schema["required"] = required
        gvk = self.gvk_of.get(model)
        if gvk:
            schema["x-kubernetes-group-version-kind"] = gvk
        return schema

    def type_schema(self, tp: Any, metadata: typing.Iterable[Any] = ()) -> dict[str, Any]:
        if _is_quantity(metadata):
            self.add_fixed(QUANTITY)
            return _ref(QUANTITY)
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:
            return self.type_schema(args[0], list(metadata) + list(args[1:]))
        if origin in (Union, types.UnionType):
            members = [a for a in args if a is not type(None)]
            plain = {a for a in members if a in (int, str)}
            if plain == {int, str}:
                self.add_fixed(INT_OR_STRING)
                return _ref(INT_OR_STRING)
            if len(members) == 1:
                return self.type_schema(members[0], metadata)
            if set(members) <= {int, float}:
                return {"type": "number", "format": "double"}
            return {"oneOf": [self.type_schema(m) for m in members]}
        if origin in (list, tuple, set, frozenset, typing.Sequence):
            item = args[0] if args else Any
            return {"type": "array", "items": self.type_schema(item)}
        if origin in (dict, typing.Mapping):
            value = args[1] if len(args) == 2 else Any
            if value is Any:
                return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            return {"type": "object", "additionalProperties": self.type_schema(value)}
        if origin is Literal:
            values = list(args)
            base = self.type_schema(type(values[0])) if values else {"type": "string"}
            return {**base, "enum": values}
        if tp is Any or tp is object:
            return {"x-kubernetes-preserve-unknown-fields": True}
        if isinstance(tp, type):
            if issubclass(tp, BaseModel):
                return _ref(self.model_ref(tp))
            if issubclass(tp, enum.Enum):
                return {"type": "string", "enum": [e.value for e in tp]}
            if tp is bool:
                return {"type": "boolean"}
            if tp is int:
                return {"type": "integer", "format": "int32"}
            if tp is float:
                return {"type": "number", "format": "double"}
            if tp is str:
                return {"type": "string"}
            if tp is bytes:
                return {"type": "string", "format": "byte"}
            if tp is dict:
                return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            if tp is list:
                return {"type": "array", "items": {"x-kubernetes-preserve-unknown-fields": True}}
        return {"type": "string"}


# ------------------------------------------------------------------------- paths


def _param(name: str, where: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "description": description}
    if required:
        p["required"] = True
    p["schema"] = {**schema, "uniqueItems": True} if where == "query" else dict(schema)
    return p


_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_INT = {"type": "integer"}

P_PRETTY = _param("pretty", "query", "If 'true', then the output is pretty printed.", _STR)
P_DRY_RUN = _param(
    "dryRun",
    "query",
    "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run "
    "stages will be processed",
    _STR,
)
P_FIELD_MANAGER = _param(
    "fieldManager", "query", "fieldManager is a name associated with the actor or entity that is making these changes.", _STR
)
P_FIELD_VALIDATION = _param(
    "fieldValidation",
    "query",
    "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate "
    "fields. Valid values are: - Ignore: ignores unknown or duplicate fields. - Warn: sends a warning for each "
    "unknown or duplicate field (the default). - Strict: fails the request on any unknown or duplicate field.",
    _STR,
)
P_FORCE = _param(
    "force",
    "query",
    "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other "
    "people. Force flag must be unset for non-apply patch requests.",
    _BOOL,
)
P_GRACE = _param("gracePeriodSeconds", "query", "The duration in seconds before the object should be deleted.", _INT)
P_PROPAGATION = _param(
    "propagationPolicy",
    "query",
    "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.",
    _STR,
)
P_ORPHAN = _param("orphanDependents", "query", "Deprecated: please use the PropagationPolicy.", _BOOL)
_LIST_PARAMS = [
    _param("allowWatchBookmarks", "query", "allowWatchBookmarks requests watch events with type \"BOOKMARK\".", _BOOL),
    _param("continue", "query", "The continue option should be set when retrieving more results from the server.", _STR),
    _param("fieldSelector", "query", "A selector to restrict the list of returned objects by their fields.", _STR),
    _param("labelSelector", "query", "A selector to restrict the list of returned objects by their labels.", _STR),
    _param("limit", "query", "limit is a maximum number of responses to return for a list call.", _INT),
    _param("resourceVersion", "query", "resourceVersion sets a constraint on what resource versions a request may be served from.", _STR),
    _param("resourceVersionMatch", "query", "resourceVersionMatch determines how resourceVersion is applied to list calls.", _STR),
    _param("sendInitialEvents", "query", "sendInitialEvents=true may be set together with watch=true.", _BOOL),
    _param("timeoutSeconds", "query", "Timeout for the list/watch call.", _INT),
    _param("watch", "query", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.", _BOOL),
]
P_NAMESPACE = _param("namespace", "path", "object name and auth scope, such as for teams and projects", _STR, True)

_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
_RESPONSE_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
_LIST_RESPONSE_TYPES = _RESPONSE_TYPES + (
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
)


def _content(ref_name: str, media_types: tuple[str, ...] = _RESPONSE_TYPES) -> dict[str, Any]:
    return {mt: {"schema": _ref(ref_name)} for mt in media_types}


def _responses(codes: dict[str, str], ref_name: str, media_types: tuple[str, ...] = _RESPONSE_TYPES) -> dict[str, Any]:
    out: dict[str, Any] = {code: {"description": text, "content": _content(ref_name, media_types)} for code, text in codes.items()}
    out["401"] = {"description": "Unauthorized"}
    return out


def _op_id(action: str, info: KindInfo, namespaced_path: bool, suffix: str = "") -> str:
    group = "".join(p.capitalize() for p in re.split(r"[.\-]", info.group.split(".k8s.io")[0])) if info.group else "Core"
    scope = "Namespaced" if namespaced_path else ""
    if action == "list" and info.namespaced and not namespaced_path:
        return f"list{group}{info.version.capitalize()}{info.kind}ForAllNamespaces"
    return f"{action}{group}{info.version.capitalize()}{scope}{info.kind}{suffix}"


def _operation(
    info: KindInfo,
    action: str,
    op_id: str,
    description: str,
    params: list[dict[str, Any]],
    responses: dict[str, Any],
    gvk: dict[str, str],
    request_body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    tag = (info.group.split(".k8s.io")[0].replace(".", "") or "core") + "_" + info.version
    op: dict[str, Any] = {
        "tags": [tag],
        "description": description,
        "operationId": op_id,
    }
    if params:
        op["parameters"] = params
    if request_body is not None:
        op["requestBody"] = request_body
    op["responses"] = responses
    op["x-kubernetes-action"] = action
    op["x-kubernetes-group-version-kind"] = gvk
    return op


def _kind_paths(info: KindInfo, kind_ref: str, list_ref: str | None) -> dict[str, dict[str, Any]]:
    """Every path of one resource (collection, item, status/scale) with Kubernetes' operations."""
    root = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
    gvk = {"group": info.group, "kind": info.kind, "version": info.version}
    verbs = set(info.verbs)
    ns = info.namespaced
    base = f"{root}/namespaces/{{namespace}}/{info.plural}" if ns else f"{root}/{info.plural}"
    scope_params = [P_NAMESPACE] if ns else []
    body = {"required": True, "content": {"*/*": {"schema": _ref(kind_ref)}}}
    patch_body = {"required": True, "content": {mt: {"schema": _ref(PATCH)} for mt in _PATCH_TYPES}}
    delete_body = {"content": {"*/*": {"schema": _ref(DELETE_OPTIONS)}}}
    write_params = [P_DRY_RUN, P_FIELD_MANAGER, P_FIELD_VALIDATION]
    paths: dict[str, dict[str, Any]] = {}

    collection: dict[str, Any] = {}
    if "list" in verbs and list_ref:
        collection["get"] = _operation(
            info, "list", _op_id("list", info, ns), f"list or watch objects of kind {info.kind}",
            list(_LIST_PARAMS), _responses({"200": "OK"}, list_ref, _LIST_RESPONSE_TYPES), gvk,
        )
    if "create" in verbs:
        collection["post"] = _operation(
            info, "post", _op_id("create", info, ns), f"create a {info.kind}", list(write_params),
            _responses({"200": "OK", "201": "Created", "202": "Accepted"}, kind_ref), gvk, body,
        )
    if "deletecollection" in verbs:
        collection["delete"] = _operation(
            info, "deletecollection", _op_id("deletecollection", info, ns, ""),
            f"delete collection of {info.kind}",
            [P_DRY_RUN, P_GRACE, P_ORPHAN, P_PROPAGATION] + list(_LIST_PARAMS),
            _responses({"200": "OK"}, STATUS), gvk, delete_body,
        )
    if collection:
        collection["parameters"] = scope_params + [P_PRETTY]
        paths[base] = collection

    if ns and "list" in verbs and list_ref:
        paths[f"{root}/{info.plural}"] = {
            "get": _operation(
                info, "list", _op_id("list", info, False), f"list or watch objects of kind {info.kind}",
                list(_LIST_PARAMS), _responses({"200": "OK"}, list_ref, _LIST_RESPONSE_TYPES), gvk,
            ),
            "parameters": [P_PRETTY],
        }

    item: dict[str, Any] = {}
    if "get" in verbs:
        item["get"] = _operation(
            info, "get", _op_id("read", info, ns), f"read the specified {info.kind}", [],
            _responses({"200": "OK"}, kind_ref), gvk,
        )
    if "update" in verbs:
        item["put"] = _operation(
            info, "put", _op_id("replace", info, ns), f"replace the specified {info.kind}", list(write_params),
            _responses({"200": "OK", "201": "Created"}, kind_ref), gvk, body,
        )
    if "patch" in verbs:
        item["patch"] = _operation(
            info, "patch", _op_id("patch", info, ns), f"partially update the specified {info.kind}",
            list(write_params) + [P_FORCE], _responses({"200": "OK", "201": "Created"}, kind_ref), gvk, patch_body,
        )
    if "delete" in verbs:
        item["delete"] = _operation(
            info, "delete", _op_id("delete", info, ns), f"delete a {info.kind}",
            [P_DRY_RUN, P_GRACE, P_ORPHAN, P_PROPAGATION],
            _responses({"200": "OK", "202": "Accepted"}, kind_ref), gvk, delete_body,
        )
    if item:
        name_param = _param("name", "path", f"name of the {info.kind}", _STR, True)
        item["parameters"] = [name_param] + scope_params + [P_PRETTY]
        paths[f"{base}/{{name}}"] = item

        for sub in ("status", "scale"):
            if sub not in info.subresources:
                continue
            ref_name = kind_ref if sub == "status" else SCALE
            sub_gvk = gvk if sub == "status" else {"group": "autoscaling", "kind": "Scale", "version": "v1"}
            suffix = "Status" if sub == "status" else "Scale"
            sub_body = {"required": True, "content": {"*/*": {"schema": _ref(ref_name)}}}
            paths[f"{base}/{{name}}/{sub}"] = {
                "get": _operation(
                    info, "get", _op_id("read", info, ns, suffix), f"read {sub} of the specified {info.kind}", [],
                    _responses({"200": "OK"}, ref_name), sub_gvk,
                ),
                "put": _operation(
                    info, "put", _op_id("replace", info, ns, suffix), f"replace {sub} of the specified {info.kind}",
                    list(write_params), _responses({"200": "OK", "201": "Created"}, ref_name), sub_gvk, sub_body,
                ),
                "patch": _operation(
                    info, "patch", _op_id("patch", info, ns, suffix),
                    f"partially update {sub} of the specified {info.kind}", list(write_params) + [P_FORCE],
                    _responses({"200": "OK", "201": "Created"}, ref_name), sub_gvk, patch_body,
                ),
                "parameters": [dict(name_param)] + scope_params + [P_PRETTY],
            }
    return paths


# ------------------------------------------------------------------------- documents


def openapi_path_key(group: str, version: str) -> str:
    """The key of a group-version in the /openapi/v3 index: ``api/v1`` or ``apis/apps/v1``."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _build_document(registry: KindRegistry, group: str, version: str) -> dict[str, Any] | None:
    kinds = [k for k in registry.kinds() if k.group == group and k.version == version]
    if not kinds:
        return None
    namer = _Namer(registry)
    gvk_of: dict[type, list[dict[str, str]]] = {}
    for info in registry.kinds():
        gvk_of.setdefault(info.model, []).append({"group": info.group, "kind": info.kind, "version": info.version})
        if info.list_model is not None:
            gvk_of.setdefault(info.list_model, []).append(
                {"group": info.group, "kind": info.list_kind, "version": info.version}
            )
    from kcore.api.meta import Status

    gvk_of.setdefault(Status, [{"group": "", "kind": "Status", "version": "v1"}])
    builder = _SchemaBuilder(namer, gvk_of)
    paths: dict[str, dict[str, Any]] = {}
    for name in (DELETE_OPTIONS, PATCH):
        builder.add_fixed(name)
    builder.model_ref(Status)
    for info in sorted(kinds, key=lambda k: k.plural):
        kind_ref = builder.model_ref(info.model)
        list_ref = builder.model_ref(info.list_model) if info.list_model is not None else None
        if "scale" in info.subresources:
            builder.add_fixed(SCALE)
        paths.update(_kind_paths(info, kind_ref, list_ref))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0-kcore"},
        "paths": paths,
        "components": {
            "schemas": dict(sorted(builder.schemas.items())),
            "securitySchemes": {
                "BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}
            },
        },
        "security": [{"BearerToken": []}],
    }


class _Cache:
    """Documents of one registry, valid while the registry holds the same kinds."""

    def __init__(self, signature: tuple[int, ...]) -> None:
        self.signature = signature
        self.docs: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.raw: dict[tuple[str, str], bytes | None] = {}


_CACHES: "weakref.WeakKeyDictionary[KindRegistry, _Cache]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _cache_for(registry: KindRegistry) -> _Cache:
    signature = tuple(id(k) for k in registry.kinds())
    with _LOCK:
        cache = _CACHES.get(registry)
        if cache is None or cache.signature != signature:
            cache = _Cache(signature)
            _CACHES[registry] = cache
        return cache


def openapi_v3_document(registry: KindRegistry, group: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI v3 document of one group-version (memoized; do not mutate), or None if not served."""
    cache = _cache_for(registry)
    key = (group, version)
    if key not in cache.docs:
        cache.docs[key] = _build_document(registry, group, version)
    return cache.docs[key]


def openapi_v3_document_bytes(registry: KindRegistry, group: str, version: str) -> bytes | None:
    """The same document serialized once, for serving (and hashing) without re-encoding."""
    cache = _cache_for(registry)
    key = (group, version)
    if key not in cache.raw:
        doc = openapi_v3_document(registry, group, version)
        cache.raw[key] = None if doc is None else orjson.dumps(doc)
    return cache.raw[key]


def openapi_v3_index(registry: KindRegistry) -> dict[str, Any]:
    """The /openapi/v3 body: each group-version's document URL, with a content hash clients cache by."""
    paths: dict[str, Any] = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            raw = openapi_v3_document_bytes(registry, group, version)
            if raw is None:
                continue
            digest = hashlib.sha512(raw).hexdigest().upper()
            key = openapi_path_key(group, version)
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}
