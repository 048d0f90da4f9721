"""Plugin tests run with the user's plugin environment switches cleared."""

from __future__ import annotations

import pytest

from kcore.plugins import LOAD_ENV, TRACE_ENV


@pytest.fixture(autouse=True)
def _clean_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LOAD_ENV, raising=False)
    monkeypatch.delenv(TRACE_ENV, raising=False)
