"""A kcore score plugin: prefer nodes labelled ``example.com/preferred=true``."""

from typing import Any

from kcore import hookimpl

LABEL = "example.com/preferred"


class PreferLabel:
    """Scores 100 on nodes with the label set to "true", 0 elsewhere."""

    @hookimpl
    def kcore_scheduler_score(self, state: Any, pod: Any, node_info: Any) -> int:
        return 100 if node_info.labels.get(LABEL) == "true" else 0
