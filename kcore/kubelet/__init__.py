"""kcore.kubelet: the node agent (``Kubelet``), its runtimes, probes, logs and status computation."""

from kcore.kubelet.kubelet import Kubelet

__all__ = ["Kubelet"]
