"""Validation primitives with Kubernetes' rules and wording.

``is_*`` functions return a list of messages (empty when valid), like
apimachinery's ``pkg/util/validation``; ``validate_*`` functions return
``FieldError`` lists, like ``field.ErrorList``. The messages match Kubernetes'
so users (and kubectl) see the text they already know, and the API server
turns an ``ObjectValidationError`` into a 422 ``Status`` with one cause per error.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kcore.api.meta import LabelSelector, ObjectMeta, Status, StatusCause, StatusDetails
from kcore.api.quantity import parse_quantity

__all__ = [
    "FieldError",
    "ObjectValidationError",
    "REQUIRED",
    "INVALID",
    "NOT_SUPPORTED",
    "TOO_LONG",
    "TOO_MANY",
    "DUPLICATE",
    "FORBIDDEN",
    "TYPE_INVALID",
    "NOT_FOUND",
    "INTERNAL",
    "child",
    "index",
    "key",
    "required",
    "invalid",
    "not_supported",
    "too_long",
    "too_many",
    "duplicate",
    "forbidden",
    "type_invalid",
    "not_found",
    "internal",
    "is_dns1123_subdomain",
    "is_dns1123_label",
    "is_dns1035_label",
    "is_qualified_name",
    "is_valid_label_value",
    "is_valid_port_num",
    "is_valid_port_name",
    "is_c_identifier",
    "is_env_var_name",
    "is_valid_ip",
    "is_valid_cidr",
    "mask_trailing_dash",
    "validate_labels",
    "validate_annotations",
    "validate_object_meta",
    "validate_owner_references",
    "validate_finalizers",
    "validate_label_selector",
    "validate_quantity_nonnegative",
    "validate_nonnegative",
]

# --- field errors -----------------------------------------------------------

# Cause reasons (``field.ErrorType`` values), sent as ``StatusCause.reason``.
NOT_FOUND = "FieldValueNotFound"
REQUIRED = "FieldValueRequired"
DUPLICATE = "FieldValueDuplicate"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
INTERNAL = "InternalError"
TYPE_INVALID = "FieldValueTypeInvalid"

# The words each reason prints as (``ErrorType.String()``).
_TYPE_TEXT: dict[str, str] = {
    NOT_FOUND: "Not found",
    REQUIRED: "Required value",
    DUPLICATE: "Duplicate value",
    INVALID: "Invalid value",
    NOT_SUPPORTED: "Unsupported value",
    FORBIDDEN: "Forbidden",
    TOO_LONG: "Too long",
    TOO_MANY: "Too many",
    INTERNAL: "Internal error",
    TYPE_INVALID: "Invalid value",
}
# Reasons whose body never shows the offending value.
_VALUELESS = frozenset({REQUIRED, FORBIDDEN, TOO_LONG, INTERNAL})
_OMIT = object()


@dataclass(frozen=True)
class FieldError:
    """One problem at one field; ``message`` is Kubernetes' ``ErrorBody()``."""

    type: str
    field: str
    message: str
    value: Any = None

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def to_cause(self) -> StatusCause:
        """The ``StatusCause`` the API server puts in a 422 answer."""
        return StatusCause(reason=self.type, message=self.message, field=self.field)


def _render_value(value: Any) -> str:
    """A bad value as Go's ``%q``/``%v`` would print it in an error body."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _body(kind: str, value: Any, detail: str) -> str:
    text = _TYPE_TEXT.get(kind, kind)
    if kind not in _VALUELESS and value is not _OMIT:
        text = f"{text}: {_render_value(value)}"
    return f"{text}: {detail}" if detail else text


def _error(kind: str, path: str, value: Any, detail: str) -> FieldError:
    return FieldError(kind, path, _body(kind, value, detail), None if value is _OMIT else value)


def required(path: str, detail: str = "") -> FieldError:
    return _error(REQUIRED, path, _OMIT, detail)


def invalid(path: str, value: Any, detail: str = "") -> FieldError:
    return _error(INVALID, path, value, detail)


def not_supported(path: str, value: Any, supported: Iterable[str]) -> FieldError:
    quoted = ", ".join(json.dumps(v) for v in supported)
    return _error(NOT_SUPPORTED, path, value, f"supported values: {quoted}" if quoted else "")


def too_long(path: str, value: Any, max_length: int) -> FieldError:
    return _error(TOO_LONG, path, value, f"must have at most {max_length} bytes")


def too_many(path: str, actual: int, max_items: int) -> FieldError:
    return _error(TOO_MANY, path, actual, f"must have at most {max_items} items")


def duplicate(path: str, value: Any) -> FieldError:
    return _error(DUPLICATE, path, value, "")


def forbidden(path: str, detail: str) -> FieldError:
    return _error(FORBIDDEN, path, _OMIT, detail)


def type_invalid(path: str, value: Any, detail: str) -> FieldError:
    return _error(TYPE_INVALID, path, value, detail)


def not_found(path: str, value: Any) -> FieldError:
    return _error(NOT_FOUND, path, value, "")


def internal(path: str, detail: str) -> FieldError:
    return _error(INTERNAL, path, _OMIT, detail)


def child(path: str, *names: str) -> str:
    """``child("spec", "template", "spec")`` -> ``"spec.template.spec"``."""
    return ".".join(p for p in (path, *names) if p)


def index(path: str, i: int) -> str:
    """``index("spec.containers", 0)`` -> ``"spec.containers[0]"``."""
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    """``key("data", "a.txt")`` -> ``"data[a.txt]"``."""
    return f"{path}[{k}]"


class ObjectValidationError(Exception):
    """Carries every FieldError found, so the API server can answer 422 with causes."""

    def __init__(self, kind: str, name: str | None, errors: list[FieldError], group: str = "") -> None:
        self.kind = kind
        self.name = name
        self.group = group
        self.errors = list(errors)
        super().__init__(self.message)

    @property
    def qualified_kind(self) -> str:
        """``GroupKind.String()``: ``Deployment.apps``, or just ``Pod`` for core."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def message(self) -> str:
        """``NewInvalid``'s message: duplicates dropped, brackets only for several."""
        head = f"{self.qualified_kind} {json.dumps(self.name or '')} is invalid"
        texts = list(dict.fromkeys(str(e) for e in self.errors))
        if not texts:
            return head
        if len(texts) == 1:
            return f"{head}: {texts[0]}"
        return f"{head}: [{', '.join(texts)}]"

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> Status:
        """The 422 ``Status`` body (reason ``Invalid``) with one cause per error."""
        return Status(
            status="Failure",
            message=self.message,
            reason="Invalid",
            code=422,
            details=StatusDetails(
                name=self.name or None,
                group=self.group or None,
                kind=self.kind,
                causes=[e.to_cause() for e in self.errors],
            ),
        )


# --- string formats -----------------------------------------------------------


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _empty_error() -> str:
    return "must be non-empty"


def _regex_error(message: str, pattern: str, *examples: str) -> str:
    """Kubernetes' ``RegexError``: the rule, examples, then the regex."""
    if not examples:
        return f"{message} (regex used for validation is '{pattern}')"
    # Each example ends with "', " and they are joined by " or ", hence the
    # double space Kubernetes prints ("'MyName',  or 'my.name',  or ...").
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{pattern}')"


_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_MAX = 63
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MAX = 253
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_DNS1035_LABEL_MAX = 63
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_QNAME_MAX = 63
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MAX = 63
_C_IDENTIFIER_FMT = "[A-Za-z_][A-Za-z0-9_]*"
_ENV_VAR_NAME_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_ENV_VAR_NAME_MSG = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
    "or '.', and must not start with a digit"
)

_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)
_QNAME_RE = re.compile(_QNAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_ENV_VAR_NAME_RE = re.compile(_ENV_VAR_NAME_FMT)
_PORT_NAME_CHARSET_RE = re.compile("[-a-z0-9]+")
_PORT_NAME_LETTER_RE = re.compile("[a-z]")
_CIDR_PREFIX_RE = re.compile("[0-9]+")


def _matches(pattern: re.Pattern[str], value: str) -> bool:
    # fullmatch, not "$": "$" also matches before a trailing newline.
    return pattern.fullmatch(value) is not None


def is_dns1123_subdomain(value: str) -> list[str]:
    """Names of most objects (``IsDNS1123Subdomain``): at most 253 characters."""
    errs: list[str] = []
    if len(value) > _DNS1123_SUBDOMAIN_MAX:
        errs.append(_max_len_error(_DNS1123_SUBDOMAIN_MAX))
    if not _matches(_DNS1123_SUBDOMAIN_RE, value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1123_label(value: str) -> list[str]:
    """Namespaces and other names used as one DNS label: at most 63 characters."""
    errs: list[str] = []
    if len(value) > _DNS1123_LABEL_MAX:
        errs.append(_max_len_error(_DNS1123_LABEL_MAX))
    if not _matches(_DNS1123_LABEL_RE, value):
        if _matches(_DNS1123_SUBDOMAIN_RE, value):
            errs.append("must not contain dots")  # a subdomain, so only dots are wrong
        else:
            errs.append(_regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    """Service names: a DNS label that starts with a letter."""
    errs: list[str] = []
    if len(value) > _DNS1035_LABEL_MAX:
        errs.append(_max_len_error(_DNS1035_LABEL_MAX))
    if not _matches(_DNS1035_LABEL_RE, value):
        errs.append(_regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """Label and annotation keys, finalizers: ``[prefix/]name``."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + _empty_error())
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + _empty_error())
    elif len(name) > _QNAME_MAX:
        errs.append("name part " + _max_len_error(_QNAME_MAX))
    if not _matches(_QNAME_RE, name):
        errs.append("name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    """Label values: like a qualified name part, but may be empty."""
    errs: list[str] = []
    if len(value) > _LABEL_VALUE_MAX:
        errs.append(_max_len_error(_LABEL_VALUE_MAX))
    if not _matches(_LABEL_VALUE_RE, value):
        errs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def is_valid_port_num(port: int) -> list[str]:
    """A TCP/UDP port: 1..65535."""
    if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
        return []
    return ["must be between 1 and 65535, inclusive"]


def is_valid_port_name(name: str) -> list[str]:
    """Named ports follow IANA_SVC_NAME (RFC 6335)."""
    errs: list[str] = []
    if len(name) > 15:
        errs.append(_max_len_error(15))
    if not _matches(_PORT_NAME_CHARSET_RE, name):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if _PORT_NAME_LETTER_RE.search(name) is None:
        errs.append("must contain at least one letter (a-z)")
    if "--" in name:
        errs.append("must not contain consecutive hyphens")
    if name and (name[0] == "-" or name[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_env_var_name(value: str) -> list[str]:
    """Environment variable names (``IsEnvVarName``): dots and dashes allowed."""
    errs: list[str] = []
    if not _matches(_ENV_VAR_NAME_RE, value):
        errs.append(
            _regex_error(_ENV_VAR_NAME_MSG, _ENV_VAR_NAME_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1")
        )
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def is_c_identifier(value: str) -> list[str]:
    """Env var names, as the kcore contract names it.

    Kubernetes validates env var names with ``IsEnvVarName`` (this function),
    which is looser than a real C identifier (``[A-Za-z_][A-Za-z0-9_]*``):
    ``MY.VAR`` and ``my-var`` are accepted, so manifests that work on
    Kubernetes work here. Prefer the clearer name ``is_env_var_name``.
    """
    return is_env_var_name(value)


def _is_ip(value: str) -> bool:
    # Go's net.ParseIP takes no IPv6 zone ("%eth0") and no surrounding blanks.
    if not value or "%" in value or value.strip() != value:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_valid_ip(value: str) -> list[str]:
    """An IPv4 or IPv6 address."""
    if _is_ip(value):
        return []
    return ["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]


def is_valid_cidr(value: str) -> list[str]:
    """``address/prefix``; host bits may be set, as with Go's ``ParseCIDR``."""
    address, slash, prefix = value.partition("/")
    ok = bool(slash) and _is_ip(address) and _matches(_CIDR_PREFIX_RE, prefix)
    if ok:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            ok = False
    return [] if ok else ["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"]


def mask_trailing_dash(name: str) -> str:
    """Make a ``generateName`` prefix checkable as a name: its trailing '-' is fine."""
    if len(name) > 1 and name.endswith("-"):
        return name[:-1] + "a"
    return name


# --- structures ---------------------------------------------------------------

_IS_NEGATIVE = "must be greater than or equal to 0"
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
_FINALIZER_ORPHAN = "orphan"
_FINALIZER_FOREGROUND = "foregroundDeletion"
# Kinds that may not own anything (``BannedOwners``).
_BANNED_OWNERS = frozenset({("", "v1", "Event")})


def validate_nonnegative(value: int | None, path: str) -> list[FieldError]:
    if value is not None and value < 0:
        return [invalid(path, value, _IS_NEGATIVE)]
    return []


def validate_labels(labels: Mapping[str, str] | None, path: str) -> list[FieldError]:
    """Keys are qualified names, values label values (errors at the map's path)."""
    errs: list[FieldError] = []
    for k, v in (labels or {}).items():
        errs.extend(invalid(path, k, m) for m in is_qualified_name(k))
        errs.extend(invalid(path, v, m) for m in is_valid_label_value(v))
    return errs


def validate_annotations(annotations: Mapping[str, str] | None, path: str) -> list[FieldError]:
    """Keys are qualified names (case-insensitive); keys+values total <= 256 KiB."""
    errs: list[FieldError] = []
    total = 0
    for k, v in (annotations or {}).items():
        errs.extend(invalid(path, k, m) for m in is_qualified_name(k.lower()))
        total += len(k.encode()) + len(v.encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(path, "", TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def _split_api_version(api_version: str) -> tuple[str, str]:
    """(group, version) like ``schema.ParseGroupVersion``; ("", "") when malformed."""
    if api_version in ("", "/"):
        return "", ""
    slashes = api_version.count("/")
    if slashes == 0:
        return "", api_version
    if slashes == 1:
        group, _, version = api_version.partition("/")
        return group, version
    return "", ""


def validate_owner_references(refs: Iterable[Any] | None, path: str) -> list[FieldError]:
    """Each reference complete; at most one with ``controller: true``."""
    errs: list[FieldError] = []
    first_controller = ""
    all_refs = list(refs or [])
    for ref in all_refs:
        group, version = _split_api_version(ref.apiVersion or "")
        if not version:
            errs.append(invalid(child(path, "apiVersion"), ref.apiVersion, "version must not be empty"))
        if not ref.kind:
            errs.append(invalid(child(path, "kind"), ref.kind, "kind must not be empty"))
        if not ref.name:
            errs.append(invalid(child(path, "name"), ref.name, "name must not be empty"))
        if not ref.uid:
            errs.append(invalid(child(path, "uid"), ref.uid, "uid must not be empty"))
        if (group, version, ref.kind) in _BANNED_OWNERS:
            gvk = f"{group}/{version}, Kind={ref.kind}"
            errs.append(invalid(path, _dump(ref), f"{gvk} is disallowed from being an owner"))
        if ref.controller:
            current = f"{ref.kind}/{ref.name}"
            if first_controller:
                errs.append(
                    invalid(
                        path,
                        [_dump(r) for r in all_refs],
                        "Only one reference can have Controller set to true. "
                        f'Found "true" in references for {first_controller} and {current}',
                    )
                )
            else:
                first_controller = current
    return errs


def _dump(model: Any) -> Any:
    to_dict = getattr(model, "to_dict", None)
    return to_dict() if callable(to_dict) else model


def validate_finalizers(finalizers: Iterable[str] | None, path: str) -> list[FieldError]:
    """Qualified names; ``orphan`` and ``foregroundDeletion`` exclude each other."""
    names = list(finalizers or [])
    errs: list[FieldError] = []
    for name in names:
        errs.extend(invalid(path, name, m) for m in is_qualified_name(name))
    if _FINALIZER_ORPHAN in names and _FINALIZER_FOREGROUND in names:
        errs.append(
            invalid(
                path,
                names,
                f"finalizer {_FINALIZER_ORPHAN} and {_FINALIZER_FOREGROUND} cannot be both set",
            )
        )
    return errs


def validate_object_meta(
    meta: ObjectMeta | None,
    *,
    namespaced: bool,
    path: str = "metadata",
    name_validator: Callable[[str], list[str]] = is_dns1123_subdomain,
) -> list[FieldError]:
    """``ValidateObjectMeta`` for a new object of a namespaced or cluster-scoped kind.

    ``name_validator`` is the kind's name rule (``is_dns1035_label`` for
    Services, ...); ``generateName`` is checked with it as a prefix.
    """
    meta = meta if meta is not None else ObjectMeta()
    errs: list[FieldError] = []
    if meta.generateName:
        errs.extend(
            invalid(child(path, "generateName"), meta.generateName, m)
            for m in name_validator(mask_trailing_dash(meta.generateName))
        )
    if meta.name:
        errs.extend(invalid(child(path, "name"), meta.name, m) for m in name_validator(meta.name))
    elif not meta.generateName:
        errs.append(required(child(path, "name"), "name or generateName is required"))
    if namespaced:
        if not meta.namespace:
            errs.append(required(child(path, "namespace")))
        else:
            errs.extend(
                invalid(child(path, "namespace"), meta.namespace, m) for m in is_dns1123_label(meta.namespace)
            )
    elif meta.namespace:
        errs.append(forbidden(child(path, "namespace"), "not allowed on this type"))
    errs.extend(validate_nonnegative(meta.generation, child(path, "generation")))
    errs.extend(validate_nonnegative(meta.deletionGracePeriodSeconds, child(path, "deletionGracePeriodSeconds")))
    errs.extend(validate_labels(meta.labels, child(path, "labels")))
    errs.extend(validate_annotations(meta.annotations, child(path, "annotations")))
    errs.extend(validate_owner_references(meta.ownerReferences, child(path, "ownerReferences")))
    errs.extend(validate_finalizers(meta.finalizers, child(path, "finalizers")))
    return errs


def validate_label_selector(selector: LabelSelector | None, path: str) -> list[FieldError]:
    """``matchLabels`` as labels; each ``matchExpressions`` entry well formed."""
    if selector is None:
        return []
    errs = validate_labels(selector.matchLabels, child(path, "matchLabels"))
    for i, req in enumerate(selector.matchExpressions or []):
        at = index(child(path, "matchExpressions"), i)
        values = req.values or []
        if req.operator in ("In", "NotIn"):
            if not values:
                errs.append(
                    required(child(at, "values"), "must be specified when `operator` is 'In' or 'NotIn'")
                )
        elif req.operator in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    forbidden(
                        child(at, "values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    )
                )
        else:
            errs.append(invalid(child(at, "operator"), req.operator, "not a valid selector operator"))
        errs.extend(invalid(child(at, "key"), req.key, m) for m in is_qualified_name(req.key))
        for j, value in enumerate(values):
            errs.extend(invalid(index(child(at, "values"), j), value, m) for m in is_valid_label_value(value))
    return errs


def validate_quantity_nonnegative(value: str | int | float, path: str) -> list[FieldError]:
    """A resource amount: a quantity, and not below zero."""
    try:
        quantity = parse_quantity(value)
    except (ValueError, TypeError) as exc:
        return [invalid(path, value, str(exc))]
    if quantity.nanos < 0:
        return [invalid(path, str(quantity), _IS_NEGATIVE)]
    return []
