"""Round-robin node selection for the kcore scheduler (entry point ``round-robin``)."""

from kcore_scheduler_rr.plugin import RoundRobin

__all__ = ["RoundRobin"]
