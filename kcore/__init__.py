"""kcore: a Kubernetes-compatible orchestrator built as a plugin-based microkernel."""

from kcore.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
