"""DefaultBinder: bind through the API's ``pods/{name}/binding`` subresource."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from kcore import hookimpl
from kcore.scheduler.status import Code, Status

ALREADY_ASSIGNED = "already assigned"


async def _bind(client: Any, pod: Any, node_name: str) -> Status | None:
    from kcore.client import ApiStatusError, bind_pod  # the client is only needed once binding starts

    meta = pod.metadata
    try:
        await bind_pod(client, meta.namespace or "default", meta.name, node_name)
    except ApiStatusError as err:
        # 409 "already assigned": someone (maybe we, before a restart) bound it first.
        return Status(Code.ERROR, (err.message,), "DefaultBinder")
    return Status.success()


class DefaultBinder:
    name = "DefaultBinder"

    @hookimpl
    def kcore_scheduler_bind(self, state: Any, pod: Any, node_name: str) -> Awaitable[Status | None] | None:
        """Post a Binding; returns an awaitable the framework awaits (None: no client, not handled)."""
        handle = state.handle
        client = handle.client if handle is not None else None
        if client is None:
            return None
        return _bind(client, pod, node_name)
