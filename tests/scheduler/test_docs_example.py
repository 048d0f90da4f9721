"""The plugin in docs/write-a-scheduler-plugin.md, installed as a distribution, changes the choice."""

from __future__ import annotations

import tomllib
from pathlib import Path

from kcore.config import SchedulerPluginRef, SchedulerProfile
from kcore.scheduler.framework import DEFAULT_PLUGINS
from kcore.scheduler.testing import make_node, make_pod, schedule_one, scheduler_host
from kcore.testing import install_fake_distribution

EXAMPLE = Path(__file__).parents[1] / "docs_examples" / "scheduler_plugin"
DOC = Path(__file__).parents[2] / "docs" / "write-a-scheduler-plugin.md"


def test_example_is_small_and_matches_the_guide() -> None:
    source = (EXAMPLE / "kcore_prefer_label" / "__init__.py").read_text()
    assert len(source.splitlines()) <= 30
    guide = DOC.read_text()
    assert source.strip() in guide  # the guide shows the tested file verbatim
    assert (EXAMPLE / "pyproject.toml").read_text().strip() in guide


def test_installed_example_plugin_changes_the_choice(tmp_path: Path) -> None:
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    nodes = [make_node("plain"), make_node("preferred", labels={"example.com/preferred": "true"}),
             make_node("busy", labels={"example.com/preferred": "true"})]
    placed = [make_pod("hog", cpu="3", memory="24Gi", node_name="busy"),
              make_pod("small", cpu="500m", memory="1Gi", node_name="preferred")]
    # Without the plugin, least-allocated scoring picks the emptiest node.
    assert schedule_one(make_pod("p"), nodes, pods=placed).node == "plain"

    with install_fake_distribution(
        tmp_path, project["name"], project["version"], project["entry-points"],
        {"kcore_prefer_label": (EXAMPLE / "kcore_prefer_label" / "__init__.py").read_text()},
    ):
        host = scheduler_host()
        record = next(r for r in host.records() if r.name == "PreferLabel")
        assert (record.distribution, record.status) == ("kcore-prefer-label", "loaded")
        profile = SchedulerProfile(name="default-scheduler", plugins=[
            *(SchedulerPluginRef(name=n, weight=w) for n, w in DEFAULT_PLUGINS),
            SchedulerPluginRef(name="PreferLabel", weight=5)])
        chosen = schedule_one(make_pod("p"), nodes, pods=placed, host=host, profile=profile).node
    assert chosen == "preferred"
