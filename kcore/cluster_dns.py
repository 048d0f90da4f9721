"""Cluster DNS as a control-plane component: the configured ``kcore.dns`` plugin's
server, and the ``kube-dns`` Service that makes it reachable from every node.

Where it listens (``dns_placement``), as kubeadm and k3s arrange it:

* As root, pods query the ``kube-dns`` Service's ClusterIP (``[dns] service_ip``,
  the 10th address of the service CIDR: 10.96.0.10) on port 53. The server listens
  on the node's own address (``[dns] address``/``port``, default ``node_ip:53``),
  and the Service's hand-written Endpoints point there, so each node's proxy
  forwards pods' queries to it, whatever the proxy mode.
* Without root nothing may bind port 53 and pods share the host's network (and its
  resolv.conf), so the server listens straight on the cluster DNS address in the
  loopback service range with a high port (``127.96.0.10:10053``) and no Service is
  made; ``dig @127.96.0.10 -p 10053`` reaches it from the host.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kcore.config import KcoreConfig
from kcore.errors import UserFacingError
from kcore.kubelet.network import HOST_RESOLV_CONF, cluster_dns_ip
from kcore.log import get_logger

log = get_logger("dns")

GROUP = "kcore.dns"
PRIVILEGED_PORT = 53
UNPRIVILEGED_PORT = 10053


@dataclass(frozen=True)
class DnsPlacement:
    """The address pods use, and where the server really listens."""

    service_ip: str
    bind_address: str
    port: int
    via_service: bool
    """A ``kube-dns`` Service forwards ``service_ip:53`` to ``bind_address:port``."""


def dns_placement(config: KcoreConfig, *, privileged: bool) -> DnsPlacement:
    """Where the cluster DNS listens for ``config`` (see the module docstring)."""
    dns = config.dns
    service_ip = cluster_dns_ip(config)
    if privileged:
        return DnsPlacement(service_ip, dns.address or config.kubelet.node_ip,
                            PRIVILEGED_PORT if dns.port is None else dns.port, True)
    return DnsPlacement(service_ip, dns.address or service_ip,
                        UNPRIVILEGED_PORT if dns.port is None else dns.port, False)


def kube_dns_objects(placement: DnsPlacement) -> list[dict[str, Any]]:
    """``kube-system/kube-dns``: a selector-less Service with its Endpoints and
    EndpointSlice pointing at the server (the names and ports kubeadm gives CoreDNS)."""
    meta = {"name": "kube-dns", "namespace": "kube-system"}
    labels = {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}
    ports = [("dns", "UDP"), ("dns-tcp", "TCP")]
    family = "IPv6" if ":" in placement.bind_address else "IPv4"
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {**meta, "labels": labels},
         "spec": {"type": "ClusterIP", "clusterIP": placement.service_ip,
                  "ports": [{"name": n, "port": 53, "protocol": p, "targetPort": placement.port}
                            for n, p in ports]}},
        {"apiVersion": "v1", "kind": "Endpoints",
         "metadata": {**meta, "labels": {**labels, "endpointslice.kubernetes.io/skip-mirror": "true"}},
         "subsets": [{"addresses": [{"ip": placement.bind_address}],
                      "ports": [{"name": n, "port": placement.port, "protocol": p} for n, p in ports]}]},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {**meta, "labels": {**labels, "kubernetes.io/service-name": "kube-dns"}},
         "addressType": family,
         "endpoints": [{"addresses": [placement.bind_address], "conditions": {"ready": True}}],
         "ports": [{"name": n, "port": placement.port, "protocol": p} for n, p in ports]},
    ]


def default_upstream(config: KcoreConfig, host_resolv_conf: Path = HOST_RESOLV_CONF) -> list[str]:
    """``[dns] upstream``, or when it is not set the host's resolv.conf, as CoreDNS's
    default Corefile forwards (``forward . /etc/resolv.conf``)."""
    if "upstream" in config.dns.model_fields_set or not host_resolv_conf.is_file():
        return list(config.dns.upstream)
    return [str(host_resolv_conf)]


def plugin_settings(config: KcoreConfig, placement: DnsPlacement) -> dict[str, Any]:
    """The flat settings the DNS plugin gets: ``[dns]`` with ``[dns.<plugin>]`` on top."""
    dns = config.dns
    settings: dict[str, Any] = {
        "cluster_domain": dns.cluster_domain, "upstream": default_upstream(config),
        "service_ip": placement.service_ip, "bind_address": placement.bind_address, "port": placement.port,
    }
    settings.update(dns.plugin_settings(dns.plugin))
    return settings


def check_plugin(host: Any, config: KcoreConfig) -> None:
    """A start-up error naming the installed DNS plugins when the configured one is missing."""
    names = host.names(GROUP)
    if config.dns.plugin not in names:
        raise UserFacingError(f"dns.plugin: no DNS plugin {config.dns.plugin!r} is installed "
                              f"(installed: {', '.join(sorted(names)) or 'none'})")


class ClusterDns:
    """Runs the DNS plugin's server until stopped; publishes ``kube-dns`` when it applies."""

    def __init__(self, host: Any, config: KcoreConfig, client: Any, api: Any,
                 placement: DnsPlacement | None = None) -> None:
        self.host = host
        self.config = config
        self.client = client
        self.api = api
        self.placement = placement or dns_placement(config, privileged=os.geteuid() == 0)
        self.server: Any = None
        self._stop = asyncio.Event()

    async def run(self) -> None:
        placement = self.placement
        if placement.via_service and self.api is not None:
            await self.api.reconcile_system_service(kube_dns_objects(placement))
        self.server = await self.host.acall_driver(
            GROUP, self.config.dns.plugin, "kcore_dns_start",
            settings=plugin_settings(self.config, placement),
            context={"client": self.client, "plugins": self.host})
        if placement.via_service:
            log.info("cluster DNS serving", address=f"{placement.bind_address}:{placement.port}",
                     service=f"kube-system/kube-dns {placement.service_ip}:53")
        else:
            log.warning("cluster DNS on a loopback address and a high port (not root: port 53 and pod "
                        "network namespaces need root)", address=f"{placement.bind_address}:{placement.port}")
        try:
            await self._stop.wait()
        finally:
            server, self.server = self.server, None
            if server is not None:
                await server.stop()

    async def stop(self) -> None:
        self._stop.set()

