"""``kubectl logs`` on the node: from a pod and a container name to the runtime's log stream.

The API server calls this in-process (its pods/log source); the runtime knows
container instances, not pods, so the newest instance of the named container
in the pod's sandbox is the one shown (``previous`` is the runtime's job).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from kcore.kubelet.pod_worker import RuntimeClient, group_instances


class ContainerLogsNotFound(LookupError):
    """The container has no instance (yet) whose log could be read."""


async def container_logs(
    runtime: RuntimeClient, pod: Mapping[str, Any], sandbox_id: str, container: str, options: Any,
) -> AsyncIterator[bytes]:
    """Stream the log of ``container`` of ``pod``; ContainerLogsNotFound if it never ran."""
    insts = group_instances(await runtime.list_containers(), sandbox_id).get(container) or []
    if not insts:
        name = (pod.get("metadata") or {}).get("name")
        raise ContainerLogsNotFound(f'container "{container}" in pod "{name}" is waiting to start')
    stream = runtime.logs(insts[-1]["id"], options)
    try:
        async for chunk in stream:
            yield chunk
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
