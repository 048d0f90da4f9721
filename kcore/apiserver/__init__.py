"""kcore.apiserver."""
