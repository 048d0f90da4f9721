"""Label and field selectors, parsed from query strings and matched against wire dicts.

The grammar and the meaning follow Kubernetes' ``labels.Parse`` and
``fields.ParseSelector`` so that ``kubectl get -l 'env in (a,b),!canary'`` and
``--field-selector spec.nodeName=n1`` select exactly what a real API server would.

An *empty* selector matches everything. That is the right meaning for
``labelSelector=`` on a list and for an empty ``{}`` LabelSelector, but workload
controllers treat a *nil* ``spec.selector`` as "select nothing": that rule belongs to
the caller, which should not call :func:`selector_from_label_selector` with ``None``
when it means nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = [
    "SelectorError",
    "Requirement",
    "LabelSelector",
    "FieldRequirement",
    "FieldSelector",
    "parse_label_selector",
    "selector_from_label_selector",
    "selector_from_set",
    "parse_field_selector",
    "object_fields",
    "supported_field_labels",
    "check_field_selector",
]


class SelectorError(ValueError):
    """A selector that cannot be parsed or uses an unsupported field; the API answers 400."""


# --------------------------------------------------------------------- labels

_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

# Operators as Kubernetes names them (selection.Operator); "=" and "==" are both Equals.
IN, NOT_IN, EQUALS, NOT_EQUALS, EXISTS, DOES_NOT_EXIST, GT, LT = (
    "in",
    "notin",
    "=",
    "!=",
    "exists",
    "!",
    "gt",
    "lt",
)


def _validate_key(key: str) -> None:
    """Label keys are qualified names: an optional DNS-subdomain prefix and a 63-char name."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        raise SelectorError(f"unable to parse requirement: invalid label key {key!r}: prefix part must be non-empty")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN_RE.match(prefix)):
        raise SelectorError(
            f"unable to parse requirement: invalid label key {key!r}: prefix part must be a lowercase RFC 1123 subdomain"
        )
    if not name or len(name) > 63 or not _NAME_RE.match(name):
        raise SelectorError(
            f"unable to parse requirement: invalid label key {key!r}: name part must consist of alphanumeric "
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character (at most 63)"
        )


def _validate_value(value: str) -> None:
    if value and (len(value) > 63 or not _NAME_RE.match(value)):
        raise SelectorError(
            f"unable to parse requirement: invalid label value {value!r}: a valid label must be an empty string or "
            "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
            "character (at most 63)"
        )


@dataclass(frozen=True)
class Requirement:
    """One ANDed term of a label selector: ``key op values``."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes semantics: ``!=`` and ``notin`` also match when the label is absent."""
        present = self.key in labels
        value = labels.get(self.key)
        op = self.operator
        if op in (IN, EQUALS):
            return present and value in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return not present or value not in self.values
        if op == EXISTS:
            return present
        if op == DOES_NOT_EXIST:
            return not present
        if op in (GT, LT):
            if not present:
                return False
            try:
                have = int(str(value))
            except ValueError:
                return False
            want = int(self.values[0])
            return have > want if op == GT else have < want
        return False

    def __str__(self) -> str:
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return "!" + self.key
        if self.operator in (IN, NOT_IN):
            return f"{self.key} {self.operator} ({','.join(sorted(self.values))})"
        if self.operator == GT:
            return f"{self.key}>{self.values[0]}"
        if self.operator == LT:
            return f"{self.key}<{self.values[0]}"
        return f"{self.key}{self.operator}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    """ANDed requirements; no requirements selects everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def is_empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        """The canonical string kubectl shows in the Selector column (requirements sorted by key)."""
        return ",".join(str(r) for r in sorted(self.requirements, key=lambda r: r.key))


_TOKEN_RE = re.compile(r"\s*(\(|\)|,|==|=|!=|!|>|<|[^\s(),=!<>]+)")


def _tokenize(s: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(s):
        if s[pos:].strip() == "":
            break
        m = _TOKEN_RE.match(s, pos)
        if m is None:  # pragma: no cover - the pattern accepts any non-space
            raise SelectorError(f"unable to parse requirement: unexpected character at {pos} in {s!r}")
        tokens.append(m.group(1))
        pos = m.end()
    return tokens


_OPERATOR_TOKENS = {"(", ")", ",", "==", "=", "!=", "!", ">", "<"}


def parse_label_selector(s: str | None) -> LabelSelector:
    """Parse the ``labelSelector`` query syntax (``a=b,c!=d,e in (f,g),!h``)."""
    if s is None or not s.strip():
        return LabelSelector()
    tokens = _tokenize(s)
    reqs: list[Requirement] = []
    i = 0

    def peek() -> str | None:
        return tokens[i] if i < len(tokens) else None

    def expect_identifier(what: str) -> str:
        nonlocal i
        tok = peek()
        if tok is None or tok in _OPERATOR_TOKENS:
            found = "end of string" if tok is None else f"'{tok}'"
            raise SelectorError(f"unable to parse requirement: found {found}, expected: {what}")
        i += 1
        return tok

    while True:
        negated = False
        if peek() == "!":
            negated = True
            i += 1
        key = expect_identifier("identifier")
        _validate_key(key)
        if negated:
            reqs.append(Requirement(key, DOES_NOT_EXIST))
        else:
            op = peek()
            if op is None or op == ",":
                reqs.append(Requirement(key, EXISTS))
            elif op in ("=", "=="):
                i += 1
                value = "" if peek() in (None, ",") else expect_identifier("identifier")
                _validate_value(value)
                reqs.append(Requirement(key, EQUALS, (value,)))
            elif op == "!=":
                i += 1
                value = "" if peek() in (None, ",") else expect_identifier("identifier")
                _validate_value(value)
                reqs.append(Requirement(key, NOT_EQUALS, (value,)))
            elif op in (">", "<"):
                i += 1
                value = expect_identifier("integer")
                if not re.fullmatch(r"-?\d+", value):
                    raise SelectorError(f"unable to parse requirement: for 'gt', 'lt' operators, the value must be an integer: {value!r}")
                reqs.append(Requirement(key, GT if op == ">" else LT, (value,)))
            elif op in (IN, NOT_IN):
                i += 1
                if peek() != "(":
                    found = "end of string" if peek() is None else f"'{peek()}'"
                    raise SelectorError(f"unable to parse requirement: found {found}, expected: '('")
                i += 1
                values: list[str] = []
                while True:
                    tok = peek()
                    if tok == ")" and not values:
                        break
                    if tok in (",", ")"):
                        values.append("")  # "a in (x,)" carries an empty value, as in Kubernetes
                    else:
                        values.append(expect_identifier("value or ')'"))
                    tok = peek()
                    if tok == ",":
                        i += 1
                        continue
                    if tok == ")":
                        break
                    found = "end of string" if tok is None else f"'{tok}'"
                    raise SelectorError(f"unable to parse requirement: found {found}, expected: ',' or ')'")
                i += 1  # ")"
                if not values:
                    raise SelectorError(f"unable to parse requirement: for '{op}' operator, values set can't be empty")
                for v in values:
                    _validate_value(v)
                reqs.append(Requirement(key, op, tuple(values)))
            else:
                raise SelectorError(
                    f"unable to parse requirement: found '{op}', expected: in, notin, =, ==, !=, gt, lt"
                )
        tok = peek()
        if tok is None:
            break
        if tok != ",":
            raise SelectorError(f"unable to parse requirement: found '{tok}', expected: ','")
        i += 1
        if peek() is None:
            raise SelectorError("unable to parse requirement: found end of string, expected: identifier")
    return LabelSelector(tuple(reqs))


_EXPRESSION_OPS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def selector_from_label_selector(d: Mapping[str, Any] | None) -> LabelSelector:
    """Convert an API ``LabelSelector`` (``matchLabels`` + ``matchExpressions``).

    ``None`` and ``{}`` both give the empty selector, which matches everything; a
    controller that must treat a nil selector as matching nothing checks for ``None``
    itself before calling this.
    """
    if not d:
        return LabelSelector()
    reqs: list[Requirement] = []
    for key, value in sorted((d.get("matchLabels") or {}).items()):
        _validate_key(key)
        _validate_value(str(value))
        reqs.append(Requirement(key, EQUALS, (str(value),)))
    for expr in d.get("matchExpressions") or []:
        key = str(expr.get("key", ""))
        op_name = str(expr.get("operator", ""))
        values = tuple(str(v) for v in (expr.get("values") or []))
        _validate_key(key)
        op = _EXPRESSION_OPS.get(op_name)
        if op is None:
            raise SelectorError(f"{op_name!r} is not a valid label selector operator")
        if op in (IN, NOT_IN) and not values:
            raise SelectorError(f"for 'in', 'notin' operators, values set can't be empty (key {key!r})")
        if op in (EXISTS, DOES_NOT_EXIST) and values:
            raise SelectorError(f"values set must be empty for exists and does not exist (key {key!r})")
        for v in values:
            _validate_value(v)
        reqs.append(Requirement(key, op, values))
    return LabelSelector(tuple(reqs))


def selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """Equality selector for a plain map (Service ``spec.selector``, RC ``spec.selector``)."""
    return LabelSelector(tuple(Requirement(k, EQUALS, (str(v),)) for k, v in sorted((labels or {}).items())))


# --------------------------------------------------------------------- fields


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" or "!="
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        have = fields.get(self.field, "")
        return have == self.value if self.operator == EQUALS else have != self.value


@dataclass(frozen=True)
class FieldSelector:
    """ANDed ``field op value`` terms; no terms selects everything."""

    requirements: tuple[FieldRequirement, ...] = field(default=())

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def is_empty(self) -> bool:
        return not self.requirements

    def fields(self) -> list[str]:
        return [r.field for r in self.requirements]

    def requires_exact(self, name: str) -> str | None:
        """The value an ``=`` term pins ``name`` to (lets the server narrow a watch by name)."""
        for r in self.requirements:
            if r.field == name and r.operator == EQUALS:
                return r.value
        return None


def _split_unescaped(s: str, sep: str) -> list[str]:
    """Split on ``sep`` not preceded by a backslash escape (fields.ParseSelector's escaping)."""
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            cur.append(s[i : i + 2])
            i += 2
            continue
        if c == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(s: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(s):
        if s[i] == "\\":
            if i + 1 >= len(s) or s[i + 1] not in "\\,=!":
                raise SelectorError(f"invalid field selector: invalid escape sequence in {s!r}")
            out.append(s[i + 1])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _find_unescaped(s: str, needle: str) -> int:
    i = 0
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s.startswith(needle, i):
            return i
        i += 1
    return -1


def parse_field_selector(s: str | None) -> FieldSelector:
    """Parse ``fieldSelector`` (``a=b``, ``a==b``, ``a!=b``, comma-ANDed, ``\\`` escapes)."""
    if s is None or not s.strip():
        return FieldSelector()
    reqs: list[FieldRequirement] = []
    for term in _split_unescaped(s, ","):
        if not term.strip():
            continue
        found = False
        for op_text, op in (("!=", NOT_EQUALS), ("==", EQUALS), ("=", EQUALS)):
            idx = _find_unescaped(term, op_text)
            if idx >= 0:
                name = term[:idx].strip()
                if not name:
                    raise SelectorError(f"invalid field selector: {s!r}: empty field name in {term!r}")
                reqs.append(FieldRequirement(name, op, _unescape(term[idx + len(op_text) :].strip())))
                found = True
                break
        if not found:
            raise SelectorError(f"invalid selector: {s!r}; can't understand {term!r}")
    return FieldSelector(tuple(reqs))


def _s(v: Any) -> str:
    """Go's formatting of a field value: bools lower-case, None as empty."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _get(obj: Mapping[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


# Per kind: the selectable field labels beyond metadata.name/namespace.
_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Event": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    "Secret": ("type",),
    "Node": ("spec.unschedulable",),
    "Namespace": ("status.phase",),
    "ReplicaSet": ("status.replicas",),
    "ReplicationController": ("status.replicas",),
    "Job": ("status.successful",),
}

_COMMON_FIELDS = ("metadata.name", "metadata.namespace")


def _reporting(event: Mapping[str, Any]) -> Any:
    """core/v1 calls it reportingComponent on the wire; events.k8s.io reportingController."""
    return event.get("reportingComponent") or event.get("reportingController")


def supported_field_labels(kind: str) -> frozenset[str]:
    """The field labels a ``fieldSelector`` may use for ``kind``."""
    return frozenset(_COMMON_FIELDS + _KIND_FIELDS.get(kind, ()))


def object_fields(kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The selectable fields of one object, as strings, the way Kubernetes' field sets expose them."""
    meta = obj.get("metadata") or {}
    out: dict[str, str] = {
        "metadata.name": _s(meta.get("name")),
        "metadata.namespace": _s(meta.get("namespace")),
    }
    for name in _KIND_FIELDS.get(kind, ()):
        if kind == "Event" and name == "source":
            # Kubernetes selects on source.component, falling back to reportingController.
            value: Any = _get(obj, "source.component") or _reporting(obj)
        elif kind == "Event" and name == "reportingComponent":
            value = _reporting(obj)
        elif kind == "Node" and name == "spec.unschedulable":
            value = bool(_get(obj, name))
        elif kind == "Pod" and name == "spec.hostNetwork":
            value = bool(_get(obj, name))
        elif kind == "Job" and name == "status.successful":
            value = _get(obj, "status.succeeded") or 0
        elif name == "status.replicas":
            value = _get(obj, name) or 0
        else:
            value = _get(obj, name)
        out[name] = _s(value)
    return out


def check_field_selector(kind: str, selector: FieldSelector) -> None:
    """Reject field labels the kind cannot select on, with Kubernetes' message."""
    allowed = supported_field_labels(kind)
    for name in selector.fields():
        if name not in allowed:
            raise SelectorError(f"field label not supported: {name}")
