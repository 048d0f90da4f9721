"""Cluster DNS for kcore in the shape of CoreDNS's ``kubernetes`` plugin.

Entry point ``coredns`` in group ``kcore.dns``. See README.md.
"""

from kcore_dns_coredns.plugin import CoreDns, build_server, pod_resolv_conf, settings_from_config
from kcore_dns_coredns.resolver import Resolver
from kcore_dns_coredns.server import DnsServer, DnsStartError
from kcore_dns_coredns.view import ClusterView

__all__ = ["ClusterView", "CoreDns", "DnsServer", "DnsStartError", "Resolver", "build_server",
           "pod_resolv_conf", "settings_from_config"]
