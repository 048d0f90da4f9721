"""From request bytes to a defaulted, valid wire object — or a precise error.

Bad input never reaches the store: malformed JSON/YAML and wrong types are 400
BadRequest, unknown or duplicate fields follow ``fieldValidation``
(Strict: 400, Warn: a ``Warning`` header, Ignore: dropped), missing or invalid
values are 422 Invalid with one cause per field, as in Kubernetes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson
import yaml
from pydantic import ValidationError

from kcore.api.registry import KindInfo
from kcore.api.validation import FieldError
from kcore.apiserver import errors
from kcore.apiserver.protobuf import CONTENT_TYPE as PROTOBUF
from kcore.apiserver.protobuf import ProtobufDecodeError, decode_kubernetes_protobuf

JSON_TYPES = frozenset({
    "", "application/json", "application/json-patch+json", "application/merge-patch+json",
    "application/strategic-merge-patch+json", "*/*",
})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml",
                        "application/apply-patch+yaml"})
FIELD_VALIDATION = ("Strict", "Warn", "Ignore")


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_body(raw: bytes, content_type: str | None) -> Any:
    """Decode a JSON or YAML body; anything else is 415."""
    kind = media_type(content_type)
    if kind in JSON_TYPES:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if kind == "":
                # The Python client sends bodies without a Content-Type; JSON is the default,
                # but a YAML document is accepted too.
                return _parse_yaml(raw)
            raise errors.bad_request(f"couldn't get version/kind; json parse error: {exc}") from None
    if kind in YAML_TYPES:
        return _parse_yaml(raw)
    if kind == PROTOBUF:
        # kubectl's typed commands (create deployment, auth can-i, ...) send protobuf.
        try:
            return decode_kubernetes_protobuf(raw)
        except ProtobufDecodeError as exc:
            if "no protobuf schema" in str(exc):
                raise errors.unsupported_media_type(kind) from None
            raise errors.bad_request(f"invalid protobuf body: {exc}") from None
    raise errors.unsupported_media_type(kind)


def _parse_yaml(raw: bytes) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error converting YAML to JSON: {exc}") from None


def duplicate_fields(raw: bytes, content_type: str | None) -> list[str]:
    """Paths of JSON keys that appear twice in one object (YAML: same check on mappings)."""
    found: list[str] = []
    if media_type(content_type) in YAML_TYPES:
        return _yaml_duplicates(raw)

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                found.append(key)
            seen.add(key)
        return dict(pairs)

    try:
        json.loads(raw, object_pairs_hook=hook)
    except ValueError:
        return []
    return found


def _yaml_duplicates(raw: bytes) -> list[str]:
    found: list[str] = []
    try:
        node = yaml.compose(raw)
    except yaml.YAMLError:
        return []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in current.value:
                key = getattr(key_node, "value", None)
                if key in seen:
                    found.append(str(key))
                seen.add(key)
                stack.append(value_node)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
    return found


def loc_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _drop(data: Any, loc: tuple[int | str, ...]) -> None:
    for part in loc[:-1]:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(data, dict):
        data.pop(loc[-1], None)


def _clean_loc(loc: tuple[int | str, ...], data: Any) -> tuple[int | str, ...]:
    """Drop pydantic's union-member markers (``int``, ``str``, ``function-after[...]``) from a loc."""
    cleaned: list[int | str] = []
    current = data
    for part in loc:
        if isinstance(current, dict) and isinstance(part, str) and part in current:
            cleaned.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            cleaned.append(part)
            current = current[part]
        elif isinstance(current, dict) and isinstance(part, str):
            cleaned.append(part)  # a missing key (required field) or unknown field
            current = None
        # else: a marker pydantic added; skip it
    return tuple(cleaned)


def prepare_object(
    info: KindInfo, obj: Any, *, field_validation: str = "Strict",
    duplicates: list[str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Parse with the kind's model, apply fieldValidation, default and validate.

    Returns the wire object and warnings for the ``Warning`` header.
    """
    if field_validation not in FIELD_VALIDATION:
        raise errors.bad_request(f'fieldValidation: Unsupported value: "{field_validation}": '
                                 f'supported values: "Ignore", "Strict", "Warn"')
    if not isinstance(obj, dict):
        raise errors.bad_request(f"{info.kind} in version \"{info.version}\" cannot be handled as "
                                 f"a {info.kind}: the body must be a JSON object")
    warnings: list[str] = []
    if duplicates:
        texts = [f'duplicate field "{d}"' for d in duplicates]
        if field_validation == "Strict":
            raise _cannot_handle(info, "strict decoding error: " + ", ".join(texts))
        if field_validation == "Warn":
            warnings.extend(texts)
    model, unknown = _validate_model(info, obj)
    if unknown:
        texts = [f'unknown field "{path}"' for path in unknown]
        if field_validation == "Strict":
            raise _cannot_handle(info, "strict decoding error: " + ", ".join(texts))
        if field_validation == "Warn":
            warnings.extend(texts)
    if info.defaulter is not None:
        info.defaulter(model)
    validate_model(info, model)
    wire = model.to_dict()
    meta = wire.get("metadata") or {}
    for key in ("labels", "annotations", "finalizers", "ownerReferences"):
        if key in meta and not meta[key]:
            del meta[key]  # Kubernetes omits empty metadata maps and lists
    return wire, warnings


def _cannot_handle(info: KindInfo, detail: str) -> errors.ApiError:
    return errors.bad_request(f'{info.kind} in version "{info.version}" cannot be handled as a '
                              f"{info.kind}: {detail}")


def _validate_model(info: KindInfo, obj: dict[str, Any]) -> tuple[Any, list[str]]:
    """The model instance plus the paths of unknown fields that were dropped."""
    data = obj
    unknown: list[str] = []
    for _attempt in range(64):
        try:
            return info.model.model_validate(data), unknown
        except ValidationError as exc:
            extra = [e for e in exc.errors() if e["type"] == "extra_forbidden"]
            if not extra:
                raise _model_error(info, data, exc) from None
            if data is obj:
                data = orjson.loads(orjson.dumps(obj))  # never mutate the caller's dict
            for error in extra:
                loc = _clean_loc(tuple(error["loc"]), data)
                unknown.append(loc_path(loc))
                _drop(data, loc)
    raise errors.bad_request("too many unknown fields")


def _model_error(info: KindInfo, data: dict[str, Any], exc: ValidationError) -> errors.ApiError:
    causes: list[dict[str, str]] = []
    type_errors: list[str] = []
    for error in exc.errors():
        path = loc_path(_clean_loc(tuple(error["loc"]), data))
        if error["type"] == "missing":
            causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": path})
        else:
            type_errors.append(f"{path}: {error['msg']}")
    if type_errors:
        return _cannot_handle(info, "; ".join(dict.fromkeys(type_errors)))
    name = (data.get("metadata") or {}).get("name") if isinstance(data.get("metadata"), dict) else None
    return errors.invalid(info.kind, info.group, name, causes)


def validate_model(info: KindInfo, model: Any) -> None:
    """Run the kind's validator; 422 Invalid with every cause."""
    if info.validator is None:
        return
    problems: list[FieldError] = info.validator(model)
    if problems:
        raise invalid_from(info, model.metadata.name if model.metadata else None, problems)


def invalid_from(info: KindInfo, name: str | None, problems: list[FieldError]) -> errors.ApiError:
    causes = [{"reason": p.type, "message": p.message, "field": p.field} for p in problems]
    return errors.invalid(info.kind, info.group, name, causes)


def revalidate(info: KindInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """Parse, default and validate an object that the server produced (after merge or admission)."""
    prepared, _ = prepare_object(info, obj, field_validation="Ignore")
    return prepared
