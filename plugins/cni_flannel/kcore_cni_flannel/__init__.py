"""Flannel-style pod network for kcore (entry point ``flannel`` in ``kcore.cni``)."""

from kcore_cni_flannel.ipam import AddressExhaustedError, HostLocalStore, next_free
from kcore_cni_flannel.overlay import Installed, Overlay, Peer, PeerWatch, peers_from_nodes, plan
from kcore_cni_flannel.plugin import Flannel
from kcore_cni_flannel.subnets import SubnetExhaustedError, allocate_subnet, lease_subnet

__all__ = [
    "AddressExhaustedError", "Flannel", "HostLocalStore", "Installed", "Overlay", "Peer", "PeerWatch",
    "SubnetExhaustedError", "allocate_subnet", "lease_subnet", "next_free", "peers_from_nodes", "plan",
]
