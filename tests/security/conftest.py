"""Shared fixtures: one generated cluster PKI per test module (ECDSA keys are cheap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kcore.apiserver.authn import Authenticator
from kcore.apiserver.pki import ClusterPKI


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ClusterPKI:
    data_dir: Path = tmp_path_factory.mktemp("data")
    return ClusterPKI.load_or_create(data_dir, node_name="node-a", bind_address="0.0.0.0", extra_sans=["10.96.0.1"])


@pytest.fixture(scope="module")
def authenticator(pki: ClusterPKI) -> Authenticator:
    return Authenticator(pki)
