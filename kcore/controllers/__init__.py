"""kcore.controllers."""
