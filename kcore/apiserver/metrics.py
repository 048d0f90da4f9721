"""Prometheus metrics of one API server (request counts and latencies, watchers, store).

Names follow the Kubernetes API server's (``apiserver_request_total``,
``apiserver_request_duration_seconds``, ``apiserver_registered_watchers``,
``etcd_request_duration_seconds``) so existing dashboards read them. Each server
owns its registry, so several servers in one test process do not collide.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from kcore.apiserver.requestinfo import RequestInfo

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class ApiMetrics:
    def __init__(self, watchers: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "apiserver_request_total", "Requests by verb, group, resource and HTTP code.",
            ["verb", "group", "resource", "subresource", "code"], registry=self.registry)
        self.latency = Histogram(
            "apiserver_request_duration_seconds", "Request latency by verb and resource.",
            ["verb", "group", "resource", "subresource"], buckets=_BUCKETS, registry=self.registry)
        self.store_latency = Histogram(
            "etcd_request_duration_seconds", "Store operation latency by operation.",
            ["operation"], buckets=_BUCKETS, registry=self.registry)
        watch_gauge = Gauge("apiserver_registered_watchers", "Open watch streams.",
                            registry=self.registry)
        watch_gauge.set_function(lambda: float(watchers()))

    def observe(self, info: RequestInfo, code: int, seconds: float) -> None:
        verb = info.verb.upper() if info.is_resource_request else info.verb.upper()
        labels = (verb, info.api_group, info.resource, info.subresource or "")
        self.requests.labels(*labels, str(code)).inc()
        if info.verb != "watch":
            self.latency.labels(*labels).observe(seconds)

    def observe_store(self, operation: str, seconds: float) -> None:
        self.store_latency.labels(operation).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
