"""Recording core/v1 Events, the way ``kubectl describe`` shows them.

A controller that retries tells the same story many times; like client-go's
EventCorrelator, the recorder counts a repeat (same object, type, reason and
message within ten minutes) on the existing Event instead of writing a new one,
so events stay readable and cheap. Recording is best effort: it never raises.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kcore.client.rest import ApiClient, ApiStatusError
from kcore.log import get_logger

log = get_logger("events")

AGGREGATION_WINDOW_SECONDS = 600.0
_CACHE_SIZE = 4096
_MAX_MESSAGE = 1024


@dataclass
class _Seen:
    namespace: str
    name: str
    count: int
    last: float  # monotonic


def _now_text(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Writes Events about objects on behalf of one component (``source.component``)."""

    def __init__(self, client: ApiClient, component: str, host: str | None = None, *,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.component = component
        self.host = host
        self._events = client.resource("v1", "Event")
        self._clock = clock
        self._monotonic = monotonic
        self._seen: collections.OrderedDict[tuple[str, ...], _Seen] = collections.OrderedDict()
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}

    async def event(self, obj: dict[str, Any], type: str, reason: str, message: str) -> None:  # noqa: A002
        """Record that ``reason``/``message`` happened to ``obj`` (type Normal or Warning)."""
        try:
            await self._record(obj, type, reason, message[:_MAX_MESSAGE])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - events are best effort by design
            meta = obj.get("metadata") or {}
            log.warning("could not record event", reason=reason, object=meta.get("name"),
                        error=str(exc) or exc.__class__.__name__)

    async def _record(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        involved = {
            "apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
            "namespace": meta.get("namespace"), "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        involved = {k: v for k, v in involved.items() if v}
        # Events about cluster-scoped objects live in "default", as in Kubernetes.
        namespace = meta.get("namespace") or "default"
        key = (namespace, str(involved.get("kind")), str(involved.get("name")), str(involved.get("uid")),
               type_, reason, message)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                now = self._clock()
                seen = self._seen.get(key)
                if seen is not None and self._monotonic() - seen.last < AGGREGATION_WINDOW_SECONDS:
                    try:
                        await self._events.patch(
                            seen.name, {"count": seen.count + 1, "lastTimestamp": _now_text(now)},
                            namespace=seen.namespace)
                        seen.count += 1
                        seen.last = self._monotonic()
                        self._seen.move_to_end(key)
                        return
                    except ApiStatusError as exc:
                        if exc.code != 404:
                            raise
                        # Someone deleted the Event (or it expired): start a new one.
                name = f"{involved.get('name', 'unknown')}.{time.time_ns():x}"
                body = {
                    "apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": name, "namespace": namespace},
                    "involvedObject": involved, "reason": reason, "message": message, "type": type_,
                    "source": {"component": self.component, **({"host": self.host} if self.host else {})},
                    "firstTimestamp": _now_text(now), "lastTimestamp": _now_text(now), "count": 1,
                    "reportingComponent": self.component, "reportingInstance": self.host or "",
                }
                await self._events.create(body, namespace=namespace)
                self._seen[key] = _Seen(namespace, name, 1, self._monotonic())
                self._seen.move_to_end(key)
                while len(self._seen) > _CACHE_SIZE:
                    old_key, _ = self._seen.popitem(last=False)
                    self._locks.pop(old_key, None)
        finally:
            if not lock.locked() and key not in self._seen:
                self._locks.pop(key, None)
