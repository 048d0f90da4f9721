"""kcore's IPVS proxy mode and the eight IPVS schedulers (``kcore.proxy:ipvs``)."""

from kcore_proxy_ipvs.plugin import IpvsProxy
from kcore_proxy_ipvs.schedulers import SCHEDULERS, RealServer, make_scheduler

__all__ = ["IpvsProxy", "RealServer", "SCHEDULERS", "make_scheduler"]
