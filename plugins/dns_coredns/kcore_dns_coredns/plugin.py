"""The ``coredns`` DNS plugin: the hook implementation and its settings.

Settings (one flat dict; :func:`settings_from_config` builds it from ``[dns]`` and
its ``[dns.coredns]`` table):

``cluster_domain`` (``cluster.local``), ``bind_address`` (``0.0.0.0``), ``port``
(53), ``upstream`` (list of ``ip[:port]`` or a resolv.conf path; empty: names
outside the cluster are REFUSED), ``service_ip`` (the address pods are told to
use, also the ``ns.dns.<domain>`` glue), ``ttl`` (5, of every cluster record),
``pods`` (``insecure`` or ``disabled``), ``cache`` (true: cache cluster answers
and upstream answers), ``cache_size`` (10000 upstream answers), ``forward_timeout``
(2.0 seconds per upstream before the next one, SERVFAIL after the last).

What a pod's resolv.conf says is the kubelet's business: :mod:`kcore.kubelet.dns`.

The context may carry ``client`` (an ``ApiClient``; required), ``informers`` (a
shared ``InformerFactory``; else the server makes its own) and ``plugins`` (the
``PluginHost``, so ``kcore_dns_records`` implementations are consulted); as
attributes or dict keys.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kcore import hookimpl
from kcore.log import get_logger
from kcore.client.informer import InformerFactory
from kcore_dns_coredns.cache import DEFAULT_CAPACITY, AnswerCache
from kcore_dns_coredns.resolver import RecordsHook, Resolver
from kcore_dns_coredns.server import UPSTREAM_TIMEOUT, DnsServer, DnsStartError, Forwarder, parse_upstreams
from kcore_dns_coredns.view import DEFAULT_TTL, ClusterView

log = get_logger("dns.coredns")

DEFAULTS: dict[str, Any] = {
    "cluster_domain": "cluster.local",
    "bind_address": "0.0.0.0",
    "port": 53,
    "upstream": [],
    "service_ip": None,
    "ttl": DEFAULT_TTL,
    "pods": "insecure",
    "cache": True,
    "cache_size": DEFAULT_CAPACITY,
    "forward_timeout": UPSTREAM_TIMEOUT,
}


def settings_from_config(dns_config: Any, plugin: str = "coredns") -> dict[str, Any]:
    """The flat settings dict from a ``DnsConfig``: its fields, overridden by ``[dns.<plugin>]``."""
    settings = {k: getattr(dns_config, k) for k in ("cluster_domain", "port", "upstream", "service_ip")}
    settings.update(dns_config.plugin_settings(plugin))
    return settings


def without_self(upstreams: list[tuple[str, int]], bind_address: str, port: int,
                 service_ip: str | None) -> list[tuple[str, int]]:
    """The upstreams minus this server itself: a host whose resolv.conf names the cluster
    DNS (or the address it listens on) must not make every unknown name loop."""
    def is_self(host: str, upstream_port: int) -> bool:
        if host == service_ip and upstream_port == 53:
            return True
        if upstream_port != port:
            return False
        if host == bind_address:
            return True
        return bind_address in ("0.0.0.0", "::") and ipaddress.ip_address(host).is_loopback

    kept = [u for u in upstreams if not is_self(*u)]
    if len(kept) != len(upstreams):
        log.warning("dropped upstream resolvers that are this DNS server (a forwarding loop)",
                    dropped=[f"{h}:{p}" for h, p in upstreams if (h, p) not in kept])
    return kept


def _get(context: Any, name: str) -> Any:
    if isinstance(context, dict):
        return context.get(name)
    return getattr(context, name, None)


def records_hook_from(host: Any) -> RecordsHook | None:
    """A caller of every ``kcore_dns_records`` implementation, or None if there is no host."""
    hook = getattr(getattr(host, "hook", None), "kcore_dns_records", None)
    if hook is None:
        return None

    def call(name: str, qtype: str, view: ClusterView) -> list[Any]:
        if not hook.get_hookimpls():
            return []
        return [r for r in hook(name=name, qtype=qtype, view=view) if r]

    return call


def build_server(settings: dict[str, Any], context: Any = None) -> DnsServer:
    """A not yet started server from settings and context (see the module docstring)."""
    unknown = set(settings) - set(DEFAULTS) - {"enabled", "plugin"}
    if unknown:
        raise DnsStartError(f"unknown dns.coredns settings: {', '.join(sorted(unknown))}")
    merged = {**DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
    upstreams = without_self(parse_upstreams(list(merged["upstream"] or [])),
                             str(merged["bind_address"]), int(merged["port"]), merged["service_ip"])
    view = ClusterView(merged["cluster_domain"], ttl=int(merged["ttl"]))
    records_hook = records_hook_from(_get(context, "plugins")) if context is not None else None
    resolver = Resolver(view, pods=merged["pods"], service_ip=merged["service_ip"],
                        has_upstream=bool(upstreams), records_hook=records_hook,
                        cache=bool(merged["cache"]))
    informers = _get(context, "informers") if context is not None else None
    own = False
    if informers is None:
        client = _get(context, "client") if context is not None else None
        if client is not None:
            informers, own = InformerFactory(client), True
    timeout = float(merged["forward_timeout"])
    if timeout <= 0:
        raise DnsStartError(f"dns.coredns forward_timeout must be above 0, got {timeout}")
    cache = AnswerCache(int(merged["cache_size"])) if merged["cache"] and int(merged["cache_size"]) > 0 else None
    forwarder = Forwarder(upstreams, timeout=timeout, cache=cache)
    return DnsServer(view, resolver, bind_address=merged["bind_address"], port=int(merged["port"]),
                     forwarder=forwarder, informers=informers, own_informers=own)


class CoreDns:
    """The ``coredns`` entry point of ``kcore.dns``."""

    @hookimpl
    async def kcore_dns_start(self, settings: dict[str, Any], context: Any) -> DnsServer:
        """Start answering; returns the running :class:`DnsServer` (``await server.stop()``)."""
        return await build_server(settings, context).start()
