"""The eight IPVS schedulers against their definitions."""

from __future__ import annotations

import collections

import pytest

from kcore_proxy_ipvs.schedulers import (
    SCHEDULERS,
    TABLE_SIZE,
    DestinationHashing,
    RealServer,
    SourceHashing,
    UnknownSchedulerError,
    make_scheduler,
)


def servers(*specs: tuple[int, int, int] | int) -> list[RealServer]:
    """Servers named A, B, C... from weights or (weight, active, inactive)."""
    out = []
    for i, spec in enumerate(specs):
        weight, active, inactive = spec if isinstance(spec, tuple) else (spec, 0, 0)
        out.append(RealServer(chr(ord("A") + i), 80, weight, active, inactive))
    return out


def sequence(name: str, pool: list[RealServer], count: int) -> str:
    scheduler = make_scheduler(name)
    return "".join(scheduler.schedule(pool).ip for _ in range(count))  # type: ignore[union-attr]


def pick(name: str, pool: list[RealServer], **kw: str) -> str | None:
    chosen = make_scheduler(name).schedule(pool, **kw)
    return None if chosen is None else chosen.ip


def test_the_eight_names() -> None:
    assert list(SCHEDULERS) == ["rr", "wrr", "lc", "wlc", "sh", "dh", "sed", "nq"]


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(UnknownSchedulerError, match="rr, wrr, lc, wlc, sh, dh, sed, nq"):
        make_scheduler("fifo")


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_no_servers_or_all_quiesced_gives_none(name: str) -> None:
    assert make_scheduler(name).schedule([], client_ip="10.0.0.1", dest_ip="10.0.0.2") is None
    assert make_scheduler(name).schedule(servers(0, 0), client_ip="10.0.0.1", dest_ip="10.0.0.2") is None


# -- rr ----------------------------------------------------------------------


def test_rr_rotates_and_ignores_weights() -> None:
    assert sequence("rr", servers(5, 1, 1), 7) == "ABCABCA"


def test_rr_skips_weight_zero() -> None:
    assert sequence("rr", servers(1, 0, 1), 4) == "ACAC"


def test_rr_keeps_its_turn_when_a_server_leaves() -> None:
    rr = make_scheduler("rr")
    pool = servers(1, 1, 1, 1)
    assert [rr.schedule(pool).ip for _ in range(2)] == ["A", "B"]  # type: ignore[union-attr]
    del pool[1]  # B (the last picked) leaves: C, now at its index, is next
    assert [rr.schedule(pool).ip for _ in range(3)] == ["C", "D", "A"]  # type: ignore[union-attr]


# -- wrr ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ((4, 3, 2), "AABABCABC"),  # the LVS documentation's example
        ((1, 1, 1), "ABC"),
        ((4, 2), "AAB"),  # gcd 2
        ((2, 0, 1), "AAC"),  # weight 0 never picked
        ((5, 1), "AAAAAB"),
    ],
)
def test_wrr_matches_the_lvs_sequence(weights: tuple[int, ...], expected: str) -> None:
    assert sequence("wrr", servers(*weights), 2 * len(expected)) == expected * 2


def test_wrr_share_equals_weight_share() -> None:
    counts = collections.Counter(sequence("wrr", servers(4, 3, 2), 900))
    assert counts == {"A": 400, "B": 300, "C": 200}


# -- lc / wlc ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        # overhead = active * 256 + inactive
        (((1, 2, 0), (1, 1, 300), (1, 1, 100)), "C"),  # 512, 556, 356
        (((1, 1, 0), (1, 0, 255), (1, 0, 256)), "B"),  # 256, 255, 256
        (((1, 3, 0), (9, 3, 0)), "A"),  # weights do not matter; tie -> first
        (((0, 0, 0), (1, 5, 0)), "B"),  # weight 0 skipped even when idle
    ],
)
def test_lc_picks_least_overhead(specs: tuple[tuple[int, int, int], ...], expected: str) -> None:
    assert pick("lc", servers(*specs)) == expected


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        # overhead / weight
        (((1, 2, 0), (3, 5, 0)), "B"),  # 512/1 vs 1280/3=426.7
        (((2, 2, 0), (1, 1, 10)), "A"),  # 256 vs 266
        (((2, 2, 0), (1, 1, 0)), "A"),  # 256 vs 256: tie -> first
        (((1, 0, 0), (5, 0, 0)), "A"),  # both 0: first
        (((0, 0, 0), (1, 4, 0)), "B"),
    ],
)
def test_wlc_picks_least_overhead_per_weight(specs: tuple[tuple[int, int, int], ...], expected: str) -> None:
    assert pick("wlc", servers(*specs)) == expected


# -- sed / nq ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        # (active + 1) / weight; inactive ignored
        (((1, 0, 0), (3, 1, 0)), "B"),  # 1/1 vs 2/3
        (((1, 0, 0), (2, 1, 0)), "A"),  # 1 vs 1: tie -> first
        (((2, 3, 0), (1, 1, 0), (4, 6, 0)), "C"),  # 2, 2, 1.75
        (((1, 0, 999), (1, 1, 0)), "A"),  # inactive does not count
    ],
)
def test_sed_picks_argmin_expected_delay(specs: tuple[tuple[int, int, int], ...], expected: str) -> None:
    assert pick("sed", servers(*specs)) == expected


@pytest.mark.parametrize(
    ("specs", "expected"),
    [
        (((3, 1, 0), (1, 0, 0)), "B"),  # sed would pick A (2/3 < 1); B is idle
        (((1, 0, 0), (1, 0, 0)), "A"),  # first idle
        (((0, 0, 0), (1, 2, 0), (2, 3, 0)), "C"),  # no idle usable: sed (3, 2)
        (((1, 1, 50), (1, 0, 50)), "B"),  # idle means no active, inactive allowed
    ],
)
def test_nq_prefers_an_idle_server(specs: tuple[tuple[int, int, int], ...], expected: str) -> None:
    assert pick("nq", servers(*specs)) == expected


# -- sh / dh -----------------------------------------------------------------

CLIENTS = [f"10.1.{i // 250}.{i % 250}" for i in range(2000)]


def test_sh_is_sticky_and_stable_across_instances() -> None:
    pool = servers(1, 1, 1)
    first = {c: pick("sh", pool, client_ip=c) for c in CLIENTS}
    again = make_scheduler("sh")
    assert all(again.schedule(pool, client_ip=c).ip == first[c] for c in CLIENTS)  # type: ignore[union-attr]
    assert set(first.values()) == {"A", "B", "C"}


def test_sh_bucket_follows_the_kernel_hash() -> None:
    # hash_32(0x0a000001, 8) = (0x0a000001 * 0x61C88647 mod 2^32) >> 24
    assert SourceHashing.bucket_of("10.0.0.1") == ((0x0A000001 * 0x61C88647) & 0xFFFFFFFF) >> 24
    assert 0 <= SourceHashing.bucket_of("fd00::1") < TABLE_SIZE


def test_sh_table_gives_buckets_by_weight_and_skips_weight_zero() -> None:
    pool = servers(2, 0, 1)
    sh = SourceHashing()
    table = sh.buckets(pool)
    assert table[:6] == [0, 0, 2, 0, 0, 2]
    assert collections.Counter(table) == {0: 171, 2: 85}
    assert all(pick("sh", pool, client_ip=c) != "B" for c in CLIENTS)


def test_sh_sends_nobody_to_a_server_once_quiesced() -> None:
    pool = servers(1, 1)
    before = {c: pick("sh", pool, client_ip=c) for c in CLIENTS}
    assert set(before.values()) == {"A", "B"}
    pool[1].weight = 0
    assert {pick("sh", pool, client_ip=c) for c in CLIENTS} == {"A"}


def test_dh_hashes_the_destination_and_returns_none_for_a_quiesced_server() -> None:
    pool = servers(1, 1, 1)
    dests = [f"192.168.0.{i}" for i in range(1, 60)]
    picks = {d: pick("dh", pool, dest_ip=d) for d in dests}
    assert set(picks.values()) == {"A", "B", "C"}
    assert all(pick("dh", pool, dest_ip=d, client_ip="1.2.3.4") == picks[d] for d in dests)
    bucket = DestinationHashing.bucket_of("192.168.0.7")
    assert bucket == (0xC0A80007 * 2654435761) & 255
    assert picks["192.168.0.7"] == "ABC"[bucket % 3]
    pool[bucket % 3].weight = 0
    assert pick("dh", pool, dest_ip="192.168.0.7") is None
