"""kcore.proxy."""
