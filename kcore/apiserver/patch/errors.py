"""Errors raised by the patch algorithms.

They carry messages meant for the user (the API server puts them in a Status), so
every message names the operation, path or directive that failed.
"""

from __future__ import annotations


class PatchError(ValueError):
    """The patch is malformed or cannot be applied to this object (HTTP 422/400)."""


class ApplyConflictError(Exception):
    """A server-side apply would change fields another manager owns (HTTP 409).

    ``conflicts`` holds ``(field_path, manager_description)`` pairs, e.g.
    ``(".spec.replicas", '"kubectl-client-side-apply" using apps/v1')`` is rendered from
    the tuple ``(".spec.replicas", "kubectl-client-side-apply")`` plus the manager's
    apiVersion, kept in ``api_versions``.
    """

    def __init__(self, conflicts: list[tuple[str, str]], api_versions: dict[str, str] | None = None) -> None:
        self.conflicts = list(conflicts)
        self.api_versions = dict(api_versions or {})
        super().__init__(self._render())

    def _describe(self, manager: str) -> str:
        version = self.api_versions.get(manager)
        return f'"{manager}" using {version}' if version else f'"{manager}"'

    def _render(self) -> str:
        n = len(self.conflicts)
        if n == 1:
            path, manager = self.conflicts[0]
            return f"Apply failed with 1 conflict: conflict with {self._describe(manager)}: {path}"
        by_manager: dict[str, list[str]] = {}
        for path, manager in self.conflicts:
            by_manager.setdefault(manager, []).append(path)
        lines = [f"Apply failed with {n} conflicts:"]
        for manager, paths in by_manager.items():
            lines.append(f"conflicts with {self._describe(manager)}:")
            lines.extend(f"- {p}" for p in paths)
        return "\n".join(lines)
