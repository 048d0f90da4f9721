"""kcore.client."""
