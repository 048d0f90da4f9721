"""kcore.scheduler."""
