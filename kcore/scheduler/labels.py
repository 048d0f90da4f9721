"""Label and node-selector matching, compiled once per cycle into predicates.

Why compile: a pod's selector is checked against hundreds of nodes (or pods) per
cycle; turning it into a closure once keeps the per-node work to dict lookups.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

Labels = Mapping[str, str]
LabelPredicate = Callable[[Labels], bool]


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def requirement(key: str, operator: str, values: Sequence[str] | None) -> LabelPredicate:
    """One node-selector or label-selector expression as a predicate.

    Operators: In, NotIn (also true when the label is absent), Exists,
    DoesNotExist, Gt and Lt (the label and the one value compared as integers).
    An unknown operator matches nothing.
    """
    vals = frozenset(values or ())
    if operator == "In":
        return lambda labels: labels.get(key) in vals
    if operator == "NotIn":
        return lambda labels: labels.get(key) not in vals
    if operator == "Exists":
        return lambda labels: key in labels
    if operator == "DoesNotExist":
        return lambda labels: key not in labels
    if operator in ("Gt", "Lt"):
        bound = _int_or_none(next(iter(vals))) if len(vals) == 1 else None
        if bound is None:
            return lambda labels: False
        if operator == "Gt":
            return lambda labels: (v := _int_or_none(labels.get(key))) is not None and v > bound
        return lambda labels: (v := _int_or_none(labels.get(key))) is not None and v < bound
    return lambda labels: False


def all_of(predicates: Sequence[LabelPredicate]) -> LabelPredicate:
    preds = tuple(predicates)
    if len(preds) == 1:
        return preds[0]
    return lambda labels: all(p(labels) for p in preds)


def label_selector(selector: Any) -> LabelPredicate:
    """A ``metav1.LabelSelector`` as a predicate: None matches nothing, ``{}`` everything."""
    if selector is None:
        return lambda labels: False
    preds: list[LabelPredicate] = []
    for key, value in (selector.matchLabels or {}).items():
        preds.append(lambda labels, k=key, v=value: labels.get(k) == v)
    for expr in selector.matchExpressions or ():
        preds.append(requirement(expr.key, expr.operator, expr.values))
    if not preds:
        return lambda labels: True
    return all_of(preds)


NodePredicate = Callable[[str, Labels], bool]
"""(node name, node labels) -> matches."""


def node_selector_term(term: Any) -> NodePredicate:
    """One ``NodeSelectorTerm``: its expressions and fields ANDed; an empty term matches nothing."""
    label_preds = [requirement(e.key, e.operator, e.values) for e in term.matchExpressions or ()]
    field_preds: list[LabelPredicate] = []
    for f in term.matchFields or ():
        if f.key != "metadata.name":  # the only field Kubernetes supports
            field_preds.append(lambda fields: False)
        else:
            field_preds.append(requirement("metadata.name", f.operator, f.values))
    if not label_preds and not field_preds:
        return lambda name, labels: False
    labels_ok = all_of(label_preds) if label_preds else (lambda labels: True)
    if not field_preds:
        return lambda name, labels: labels_ok(labels)
    fields_ok = all_of(field_preds)
    return lambda name, labels: labels_ok(labels) and fields_ok({"metadata.name": name})


def node_selector(selector: Any) -> NodePredicate:
    """A ``NodeSelector``: its terms ORed."""
    terms = [node_selector_term(t) for t in selector.nodeSelectorTerms or ()]
    return lambda name, labels: any(t(name, labels) for t in terms)


def pod_node_matcher(pod: Any) -> NodePredicate | None:
    """The pod's ``nodeSelector`` AND required node affinity, or None if it has neither."""
    spec = pod.spec
    checks: list[NodePredicate] = []
    if spec.nodeSelector:
        wanted = tuple(spec.nodeSelector.items())
        checks.append(lambda name, labels: all(labels.get(k) == v for k, v in wanted))
    affinity = spec.affinity.nodeAffinity if spec.affinity is not None else None
    required = affinity.requiredDuringSchedulingIgnoredDuringExecution if affinity is not None else None
    if required is not None:
        checks.append(node_selector(required))
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda name, labels: all(c(name, labels) for c in checks)
