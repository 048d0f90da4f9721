"""Entry-point discovery: what loads, what fails and why, and how users select.

Throw-away distributions register in their own group, ``kcore.test-modes``, so
the real plugins installed in the venv (proxy modes and others) never mix in.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kcore.plugins import (
    LOAD_ENV,
    PluginHost,
    PluginLoadError,
    PluginNotFoundError,
    create_plugin_host,
    format_plugin_table,
)
from kcore.store.contract import Store
from kcore.testing import install_fake_distribution

PROXY_MODE = '''
from kcore import hookimpl

@hookimpl
def kcore_proxy_render_rules(state):
    return "{mode}: " + ",".join(sorted(state))
'''


def proxy_source(mode: str) -> str:
    return PROXY_MODE.replace("{mode}", mode)


def record_of(host: PluginHost, group: str, name: str):  # type: ignore[no-untyped-def]
    matches = [r for r in host.records() if (r.group, r.name) == (group, name)]
    assert len(matches) == 1, host.records()
    return matches[0]


def test_fake_distribution_is_discovered_selected_and_called(tmp_path: Path) -> None:
    with install_fake_distribution(
        tmp_path, "kcore-proxy-fake", "1.2.3",
        entry_points={"kcore.test-modes": {"fake": "kcore_proxy_fake.mode"}},
        modules={"kcore_proxy_fake.mode": proxy_source("fake")},
    ):
        host = create_plugin_host(groups=["kcore.test-modes"])
        record = record_of(host, "kcore.test-modes", "fake")
        assert (record.distribution, record.version, record.status) == ("kcore-proxy-fake", "1.2.3", "loaded")
        assert record.value == "kcore_proxy_fake.mode"
        assert record.key == "kcore.test-modes:fake"
        assert host.driver("kcore.test-modes", "fake") is sys.modules["kcore_proxy_fake.mode"]
        rules = host.call_driver("kcore.test-modes", "fake", "kcore_proxy_render_rules", state={"b": 1, "a": 2})
        assert rules == "fake: a,b"
    # Undone on exit: a new host no longer finds it.
    assert "kcore_proxy_fake.mode" not in sys.modules
    assert not [r for r in create_plugin_host(groups=["kcore.test-modes"]).records() if r.name == "fake"]


def test_broken_plugins_are_reported_and_do_not_stop_the_others(tmp_path: Path) -> None:
    with install_fake_distribution(
        tmp_path, "kcore-proxy-good", "1.0",
        entry_points={"kcore.test-modes": {"good": "kcore_proxy_good"}},
        modules={"kcore_proxy_good": proxy_source("good")},
    ), install_fake_distribution(
        tmp_path, "kcore-proxy-broken", "0.9",
        entry_points={"kcore.test-modes": {
            "raises": "kcore_proxy_broken.raises",
            "missing": "kcore_proxy_broken.not_there",
        }},
        modules={"kcore_proxy_broken.raises": "import kcore_no_such_dependency\n"},
    ):
        host = create_plugin_host(groups=["kcore.test-modes"])
        assert record_of(host, "kcore.test-modes", "good").status == "loaded"
        assert host.call_driver("kcore.test-modes", "good", "kcore_proxy_render_rules", state={}) == "good: "

        raises = record_of(host, "kcore.test-modes", "raises")
        assert raises.status == "failed"
        assert raises.distribution == "kcore-proxy-broken"
        assert "ModuleNotFoundError" in (raises.error or "")
        assert "kcore_no_such_dependency" in (raises.error or "")
        missing = record_of(host, "kcore.test-modes", "missing")
        assert missing.status == "failed" and "kcore_proxy_broken.not_there" in (missing.error or "")

        with pytest.raises(PluginLoadError) as excinfo:
            host.driver("kcore.test-modes", "raises")
        message = str(excinfo.value)
        for part in ("raises = kcore_proxy_broken.raises", "kcore-proxy-broken 0.9", "kcore_no_such_dependency"):
            assert part in message

        table = format_plugin_table(host.records())
        assert "error: ModuleNotFoundError" in table


def test_unknown_driver_name_lists_the_available_ones(tmp_path: Path) -> None:
    modes = {"iptables": "kcore_modes.iptables", "ipvs": "kcore_modes.ipvs", "userspace": "kcore_modes.userspace"}
    with install_fake_distribution(
        tmp_path, "kcore-modes", "1.0",
        entry_points={"kcore.test-modes": modes},
        modules={module: proxy_source(name) for name, module in modes.items()},
    ):
        host = create_plugin_host(groups=["kcore.test-modes"])
        with pytest.raises(PluginNotFoundError) as excinfo:
            host.driver("kcore.test-modes", "ipvss")
        assert str(excinfo.value) == "no kcore.test-modes plugin named 'ipvss'; available: iptables, ipvs, userspace"
        assert host.names("kcore.test-modes") == ["iptables", "ipvs", "userspace"]


def test_misspelled_hook_is_a_recorded_failure_naming_plugin_and_hook(tmp_path: Path) -> None:
    source = "from kcore import hookimpl\n\n@hookimpl\ndef kcore_proxy_snyc(state):\n    pass\n"
    with install_fake_distribution(
        tmp_path, "kcore-typo", "1.0",
        entry_points={"kcore.test-modes": {"typo": "kcore_typo"}},
        modules={"kcore_typo": source},
    ):
        host = create_plugin_host(groups=["kcore.test-modes"])
        record = record_of(host, "kcore.test-modes", "typo")
        assert record.status == "failed"
        assert "kcore_proxy_snyc" in (record.error or "")
        assert "did you mean 'kcore_proxy_sync'" in (record.error or "")
        # Not left half-registered: the host stays consistent and usable.
        assert not host.pm.get_plugins()
        host.pm.check_pending()


def test_argument_not_in_the_spec_is_a_recorded_failure(tmp_path: Path) -> None:
    source = "from kcore import hookimpl\n\n@hookimpl\ndef kcore_proxy_sync(state, extra):\n    pass\n"
    with install_fake_distribution(
        tmp_path, "kcore-badargs", "1.0",
        entry_points={"kcore.test-modes": {"badargs": "kcore_badargs"}},
        modules={"kcore_badargs": source},
    ):
        record = record_of(create_plugin_host(groups=["kcore.test-modes"]), "kcore.test-modes", "badargs")
        assert record.status == "failed"
        assert "extra" in (record.error or "")


def test_entry_point_naming_a_class_registers_an_instance(tmp_path: Path) -> None:
    source = (
        "from kcore import hookimpl\n\n"
        "class Mode:\n"
        "    def __init__(self):\n        self.synced = []\n"
        "    @hookimpl\n    def kcore_proxy_sync(self, state):\n        self.synced.append(state)\n"
    )
    with install_fake_distribution(
        tmp_path, "kcore-classy", "1.0",
        entry_points={"kcore.test-modes": {"classy": "kcore_classy:Mode"}},
        modules={"kcore_classy": source},
    ):
        host = create_plugin_host(groups=["kcore.test-modes"])
        host.call_driver("kcore.test-modes", "classy", "kcore_proxy_sync", state={"svc": 1})
        assert host.driver("kcore.test-modes", "classy").synced == [{"svc": 1}]  # type: ignore[attr-defined]


def test_same_name_from_two_distributions_keeps_the_first(tmp_path: Path) -> None:
    with install_fake_distribution(
        tmp_path, "kcore-first", "1.0",
        entry_points={"kcore.test-modes": {"twin": "kcore_first"}},
        modules={"kcore_first": proxy_source("first")},
    ), install_fake_distribution(
        tmp_path, "kcore-second", "2.0",
        entry_points={"kcore.test-modes": {"twin": "kcore_second"}},
        modules={"kcore_second": proxy_source("second")},
    ):
        host = create_plugin_host(groups=["kcore.test-modes"])
        twins = [r for r in host.records() if r.name == "twin"]
        assert [r.status for r in twins] == ["loaded", "failed"]
        assert "duplicate name" in (twins[1].error or "")
        used = host.call_driver("kcore.test-modes", "twin", "kcore_proxy_render_rules", state={})
        assert used == f"{twins[0].distribution.removeprefix('kcore-')}: "  # type: ignore[union-attr]


def test_built_in_store_backends_are_ordinary_entry_points(tmp_path: Path) -> None:
    host = create_plugin_host(groups=["kcore.store"])
    for name, module in (("memory", "kcore.store.memory_backend"), ("sqlite", "kcore.store.sqlite_backend")):
        record = record_of(host, "kcore.store", name)
        assert (record.distribution, record.value, record.status) == ("kcore", module, "loaded"), record
    store = host.call_driver("kcore.store", "memory", "kcore_store_open", settings={}, data_dir=tmp_path)
    assert isinstance(store, Store)


# -- KCORE_LOAD_PLUGINS -------------------------------------------------------


@pytest.fixture
def two_modes(tmp_path: Path):  # type: ignore[no-untyped-def]
    with install_fake_distribution(
        tmp_path, "kcore-alpha", "1.0",
        entry_points={"kcore.test-modes": {"alpha": "kcore_alpha"}},
        modules={"kcore_alpha": proxy_source("alpha")},
    ), install_fake_distribution(
        tmp_path, "kcore-beta", "1.0",
        entry_points={"kcore.test-modes": {"beta": "kcore_beta"}},
        modules={"kcore_beta": proxy_source("beta")},
    ):
        yield


@pytest.mark.usefixtures("two_modes")
def test_load_plugins_env_limits_by_entry_point_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOAD_ENV, "alpha")
    host = create_plugin_host(groups=["kcore.test-modes"])
    assert record_of(host, "kcore.test-modes", "alpha").status == "loaded"
    assert record_of(host, "kcore.test-modes", "beta").status == "skipped"
    assert "kcore_beta" not in sys.modules  # never imported
    with pytest.raises(PluginNotFoundError, match="installed but not loaded"):
        host.driver("kcore.test-modes", "beta")


@pytest.mark.usefixtures("two_modes")
def test_load_plugins_env_matches_distribution_and_group_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOAD_ENV, "kcore_beta, kcore.test-modes:alpha")
    host = create_plugin_host(groups=["kcore.test-modes"])
    assert host.names("kcore.test-modes") == ["alpha", "beta"]


@pytest.mark.usefixtures("two_modes")
def test_load_plugins_empty_loads_nothing_and_only_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOAD_ENV, "")
    assert create_plugin_host(groups=["kcore.test-modes", "kcore.store"]).names("kcore.test-modes") == []
    assert create_plugin_host(groups=["kcore.test-modes"], only={"beta"}).names("kcore.test-modes") == ["beta"]


@pytest.mark.usefixtures("two_modes")
def test_unset_load_plugins_loads_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LOAD_ENV, raising=False)
    assert create_plugin_host(groups=["kcore.test-modes"]).names("kcore.test-modes") == ["alpha", "beta"]


def test_no_discovery_without_autoload() -> None:
    host = create_plugin_host(autoload=False)
    assert host.records() == []
    with pytest.raises(PluginNotFoundError, match="available: \\(none\\)"):
        host.driver("kcore.store", "memory")


@pytest.mark.usefixtures("two_modes")
def test_discover_again_is_idempotent_and_loads_what_was_skipped() -> None:
    host = create_plugin_host(groups=["kcore.test-modes"], only={"alpha"})
    assert host.names("kcore.test-modes") == ["alpha"]
    host.discover(["kcore.test-modes"])
    host.discover(["kcore.test-modes"])
    assert host.names("kcore.test-modes") == ["alpha", "beta"]
    assert sorted(r.name for r in host.records() if r.group == "kcore.test-modes") == ["alpha", "beta"]
