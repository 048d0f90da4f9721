"""Score helpers shared by score plugins."""

from __future__ import annotations

MAX_NODE_SCORE = 100


def default_normalize(scores: dict[str, int], *, reverse: bool = False) -> dict[str, int]:
    """Scale raw scores so the best is 100 (Kubernetes ``DefaultNormalizeScore``).

    With ``reverse``, a low raw score is good: it becomes ``100 - scaled``.
    All-zero raw scores become 0 (or 100 reversed).
    """
    highest = max(scores.values(), default=0)
    if highest == 0:
        return dict.fromkeys(scores, MAX_NODE_SCORE if reverse else 0)
    if reverse:
        return {n: MAX_NODE_SCORE - MAX_NODE_SCORE * s // highest for n, s in scores.items()}
    return {n: MAX_NODE_SCORE * s // highest for n, s in scores.items()}
