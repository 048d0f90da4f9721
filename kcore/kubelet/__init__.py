"""kcore.kubelet."""
