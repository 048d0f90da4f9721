"""Cluster DNS for kcore in the shape of CoreDNS's ``kubernetes`` plugin.

Entry point ``coredns`` in group ``kcore.dns``. See README.md.
"""

from kcore_dns_coredns.cache import AnswerCache
from kcore_dns_coredns.plugin import CoreDns, build_server, settings_from_config
from kcore_dns_coredns.resolver import Resolver
from kcore_dns_coredns.server import DnsServer, DnsStartError
from kcore_dns_coredns.view import ClusterView

__all__ = ["AnswerCache", "ClusterView", "CoreDns", "DnsServer", "DnsStartError", "Resolver", "build_server",
           "settings_from_config"]
