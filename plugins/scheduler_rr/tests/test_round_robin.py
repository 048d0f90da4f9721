"""Round-robin selection, called through a plugin host as the scheduler calls it."""

from __future__ import annotations

from typing import Any

import pytest

from kcore.plugins import PluginHost, create_plugin_host
from kcore.testing import plugin_host_for
from kcore_scheduler_rr.plugin import RoundRobin

GROUP = "kcore.scheduler"
HOOK = "kcore_scheduler_select_node"


@pytest.fixture
def host() -> PluginHost:
    return plugin_host_for(named={f"{GROUP}:round-robin": RoundRobin})


def pick(host: PluginHost, feasible: list[str], scores: dict[str, int] | None = None) -> Any:
    (impl,) = host.implementations(HOOK, ["round-robin"], group=GROUP)
    return impl(state={}, pod=object(), feasible=feasible, scores=scores)


def picks(host: PluginHost, feasible: list[str], count: int) -> list[Any]:
    return [pick(host, feasible) for _ in range(count)]


def test_rotates_over_every_node_in_name_order(host: PluginHost) -> None:
    assert picks(host, ["n3", "n1", "n2"], 7) == ["n1", "n2", "n3", "n1", "n2", "n3", "n1"]


def test_scores_do_not_change_the_rotation(host: PluginHost) -> None:
    assert pick(host, ["a", "b"], {"a": 0, "b": 100}) == "a"
    assert pick(host, ["a", "b"], {"a": 100, "b": 0}) == "b"


def test_infeasible_nodes_are_skipped_without_losing_the_turn(host: PluginHost) -> None:
    assert picks(host, ["a", "b", "c", "d"], 2) == ["a", "b"]
    # c cannot take this pod: the next feasible after b is d.
    assert pick(host, ["a", "b", "d"]) == "d"
    # c is feasible again; after d the rotation wraps to a, and c gets its turn.
    assert picks(host, ["a", "b", "c", "d"], 3) == ["a", "b", "c"]


def test_joins_and_leaves_do_not_reset_the_rotation(host: PluginHost) -> None:
    assert picks(host, ["n1", "n2", "n3"], 2) == ["n1", "n2"]
    # n2.5 joins between n2 and n3: it is next, n3 keeps its place after it.
    assert picks(host, ["n1", "n2", "n2.5", "n3"], 2) == ["n2.5", "n3"]
    # The last chosen node (n3) leaves: rotation continues after its name.
    assert picks(host, ["n1", "n2", "n2.5"], 2) == ["n1", "n2"]
    assert picks(host, ["n0", "n1", "n2", "n2.5"], 3) == ["n2.5", "n0", "n1"]


def test_empty_feasible_list_returns_none_and_keeps_the_cursor(host: PluginHost) -> None:
    assert pick(host, ["a", "b"]) == "a"
    assert pick(host, []) is None
    assert pick(host, ["a", "b"]) == "b"


def test_each_host_has_its_own_rotation() -> None:
    first = plugin_host_for(named={f"{GROUP}:round-robin": RoundRobin})
    second = plugin_host_for(named={f"{GROUP}:round-robin": RoundRobin})
    assert pick(first, ["a", "b"]) == "a"
    assert pick(first, ["a", "b"]) == "b"
    assert pick(second, ["a", "b"]) == "a"


def test_installed_distribution_is_discovered_by_entry_point() -> None:
    host = create_plugin_host(groups=[GROUP], only={"round-robin"})
    record = next(r for r in host.records() if r.name == "round-robin")
    assert (record.distribution, record.status) == ("kcore-scheduler-rr", "loaded")
    assert record.value == "kcore_scheduler_rr.plugin:RoundRobin"
    assert isinstance(host.driver(GROUP, "round-robin"), RoundRobin)
    assert pick(host, ["x", "y"]) == "x"
