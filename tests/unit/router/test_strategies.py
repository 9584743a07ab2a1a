"""Routing strategies: distributions, limits, tiers, and usage shared between replicas.

The distribution tests are load tests, not timed tests: they print the measured shares (run with
``-s`` to see them) and assert them against the configured weights.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from typing import Any

import pytest
import redis.asyncio as aioredis

from switchyard.type.v1 import deployment_pb2
from switchyard_core.config import parse_config
from switchyard_router.deployments import Deployment, deployment_prices
from switchyard_router.load import LoadTracker
from switchyard_router.strategies import deployment_weight, make_strategy


def deployments(*entries: dict[str, Any]) -> list[Deployment]:
    """One deployment per entry of litellm_params (``id`` becomes model_info.id)."""
    model_list = []
    for entry in entries:
        params = {"model": "openai/gpt-4o-mini", "api_key": "k", **entry}
        dep_id = params.pop("id")
        model_list.append({"model_name": "g", "litellm_params": params, "model_info": {"id": dep_id}})
    config = parse_config({"model_list": model_list, "general_settings": {"master_key": "sk-master-0123456789"}})
    return [Deployment(c, deployment_pb2.Deployment(id=c.id), deployment_prices(c)) for c in config.deployments]


def ids(ordered: list[Deployment]) -> list[str]:
    return [d.config.id for d in ordered]


async def first_choices(strategy: Any, candidates: list[Deployment], n: int, tokens: int = 0) -> Counter[str]:
    counts: Counter[str] = Counter()
    for _ in range(n):
        counts[(await strategy.order(candidates, tokens))[0].config.id] += 1
    return counts


def shares(counts: Counter[str], n: int) -> dict[str, float]:
    return {k: round(100 * v / n, 1) for k, v in sorted(counts.items())}


# -- simple-shuffle ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (
            [{"id": "a", "weight": 1}, {"id": "b", "weight": 2}, {"id": "c", "weight": 7}],
            {"a": 10.0, "b": 20.0, "c": 70.0},
        ),
        ([{"id": "a", "rpm": 300}, {"id": "b", "rpm": 900}], {"a": 25.0, "b": 75.0}),
        ([{"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "d"}], {"a": 25.0, "b": 25.0, "c": 25.0, "d": 25.0}),
    ],
    ids=["weight-1-2-7", "rpm-1-3", "equal"],
)
async def test_weighted_shuffle_matches_weights_over_2000_choices(
    entries: list[dict[str, Any]], expected: dict[str, float]
) -> None:
    strategy = make_strategy("simple-shuffle", LoadTracker(None), 0.1, rng=random.Random(20240611))
    n = 2_000
    measured = shares(await first_choices(strategy, deployments(*entries), n), n)
    print(f"\nsimple-shuffle over {n} choices: expected % {expected}, measured % {measured}")
    for dep_id, share in expected.items():
        assert abs(measured.get(dep_id, 0.0) - share) <= 3.0, (dep_id, measured)


async def test_shuffle_returns_every_candidate_once_and_weight_zero_last() -> None:
    candidates = deployments({"id": "a", "weight": 1}, {"id": "b", "weight": 0}, {"id": "c", "weight": 5})
    strategy = make_strategy("simple-shuffle", LoadTracker(None), 0.1, rng=random.Random(1))
    for _ in range(50):
        ordered = ids(await strategy.order(candidates, 0))
        assert sorted(ordered) == ["a", "b", "c"] and ordered[-1] == "b"
    assert [deployment_weight(d) for d in candidates] == [1.0, 0.0, 5.0]


# -- least-busy --------------------------------------------------------------------------------


async def simulate(strategy_name: str, low: float, high: float, n: int = 2_000) -> dict[str, Any]:
    """A discrete-event load simulation (virtual time, reproducible): ``n`` requests arriving
    ~400/s (Poisson) on three deployments, each lasting uniform(low, high) seconds.

    Returns the in-flight spread (max - min over the deployments) sampled at every pick, the peak
    in-flight per deployment and how many requests each served.
    """
    load = LoadTracker(None)
    candidates = deployments({"id": "a"}, {"id": "b"}, {"id": "c"})
    strategy = make_strategy(strategy_name, load, 0.1, rng=random.Random(7))
    rng = random.Random(11)
    ending: list[tuple[float, int, str]] = []  # (end time, sequence, deployment id)
    spreads: list[int] = []
    peak: Counter[str] = Counter()
    served: Counter[str] = Counter()
    now = 0.0
    for sequence in range(n):
        now += rng.expovariate(400.0)
        while ending and ending[0][0] <= now:
            load.finished(heapq.heappop(ending)[2], latency_s=0.02, tokens=10)
        chosen = (await strategy.order(candidates, 0))[0].config.id
        load.started(chosen)
        served[chosen] += 1
        counts = {d.config.id: load.in_flight(d.config.id) for d in candidates}
        spreads.append(max(counts.values()) - min(counts.values()))
        for dep_id, count in counts.items():
            peak[dep_id] = max(peak[dep_id], count)
        heapq.heappush(ending, (now + rng.uniform(low, high), sequence, chosen))
    spreads.sort()
    return {
        "median": spreads[len(spreads) // 2],
        "max": spreads[-1],
        "p99": spreads[int(0.99 * (len(spreads) - 1))],
        "mean": round(sum(spreads) / len(spreads), 2),
        "histogram": dict(sorted(Counter(spreads).items())),
        "peak": dict(sorted(peak.items())),
        "served": dict(sorted(served.items())),
    }


@pytest.mark.parametrize(
    ("upstream", "low", "high", "p99_spread"),
    [("steady 60 ms +-10%", 0.054, 0.066, 2), ("erratic 5-115 ms", 0.005, 0.115, 3)],
    ids=["steady", "erratic"],
)
async def test_least_busy_keeps_in_flight_balanced_under_concurrent_load(
    upstream: str, low: float, high: float, p99_spread: int
) -> None:
    """Routing only ever adds to the least busy deployment; what unbalances the counts is requests
    ending at different times, so an erratic upstream allows a larger momentary spread. Random
    weighted choice under the same load is the baseline."""
    busy = await simulate("least-busy", low, high)
    baseline = await simulate("simple-shuffle", low, high)
    print(f"\nleast-busy, 2000 requests, ~24 in flight, {upstream} upstream: in-flight spread {busy}")
    print(f"simple-shuffle under the same load (baseline): in-flight spread {baseline}")
    assert min(busy["peak"].values()) >= 8, "the simulation must overlap requests"
    # Several requests of one deployment can end between two arrivals, so the momentary maximum is
    # not the routing's doing; the typical spread is.
    assert busy["median"] <= 1 and busy["p99"] <= p99_spread and busy["mean"] <= 1.0
    assert baseline["mean"] >= 2 * busy["mean"]
    assert max(busy["served"].values()) - min(busy["served"].values()) <= 0.05 * 2_000


async def test_least_busy_prefers_the_idle_deployment() -> None:
    load = LoadTracker(None)
    candidates = deployments({"id": "a"}, {"id": "b"}, {"id": "c"})
    for dep_id, busy in (("a", 3), ("b", 1), ("c", 2)):
        for _ in range(busy):
            load.started(dep_id)
    assert ids(await make_strategy("least-busy", load, 0.1).order(candidates, 0)) == ["b", "c", "a"]


# -- limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["simple-shuffle", "least-busy", "latency-based-routing", "cost-based-routing"])
async def test_max_parallel_requests_excludes_a_full_deployment(strategy: str) -> None:
    load = LoadTracker(None)
    candidates = deployments({"id": "a", "max_parallel_requests": 2}, {"id": "b"})
    load.started("a")
    assert "a" in ids(await make_strategy(strategy, load, 0.1).order(candidates, 0))
    load.started("a")
    assert ids(await make_strategy(strategy, load, 0.1).order(candidates, 0)) == ["b"]
    load.finished("a", latency_s=0.1, tokens=0)
    assert "a" in ids(await make_strategy(strategy, load, 0.1).order(candidates, 0))


async def test_rpm_and_tpm_limits_exclude_and_an_empty_list_means_all_full() -> None:
    load = LoadTracker(None)
    candidates = deployments({"id": "r", "rpm": 2}, {"id": "t", "tpm": 1_000})
    strategy = make_strategy("simple-shuffle", load, 0.1)
    load.started("r")
    load.started("r")
    assert ids(await strategy.order(candidates, 100)) == ["t"]
    load.started("t")
    load.finished("t", latency_s=0.1, tokens=950)
    assert ids(await strategy.order(candidates, 10)) == ["t"]  # 950 + 10 fits in 1,000
    assert ids(await strategy.order(candidates, 100)) == []  # 950 + 100 does not; r is at its rpm


async def test_a_request_larger_than_tpm_still_goes_to_an_idle_deployment() -> None:
    candidates = deployments({"id": "t", "tpm": 1_000})
    assert ids(await make_strategy("simple-shuffle", LoadTracker(None), 0.1).order(candidates, 5_000)) == ["t"]


# -- order tiers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "strategy",
    ["simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing-v2", "cost-based-routing"],
)
async def test_order_tiers_lower_first_and_unordered_last(strategy: str) -> None:
    candidates = deployments(
        {"id": "none"}, {"id": "two-a", "order": 2}, {"id": "one", "order": 1}, {"id": "two-b", "order": 2}
    )
    s = make_strategy(strategy, LoadTracker(None), 0.1, rng=random.Random(3))
    seen_second = set()
    for _ in range(40):
        ordered = ids(await s.order(candidates, 0))
        assert ordered[0] == "one" and set(ordered[1:3]) == {"two-a", "two-b"} and ordered[3] == "none"
        seen_second.add(ordered[1])
    assert seen_second == {"two-a", "two-b"}  # the strategy still spreads load inside a tier


async def test_a_full_tier_moves_traffic_to_the_next() -> None:
    load = LoadTracker(None)
    candidates = deployments({"id": "primary", "order": 1, "max_parallel_requests": 1}, {"id": "backup", "order": 2})
    load.started("primary")
    assert ids(await make_strategy("simple-shuffle", load, 0.1).order(candidates, 0)) == ["backup"]


# -- latency-based -----------------------------------------------------------------------------


def with_latency(load: LoadTracker, dep_id: str, seconds: float) -> None:
    load.started(dep_id)
    load.finished(dep_id, latency_s=seconds, tokens=0)


async def test_latency_buffer_shares_load_between_near_equal_deployments() -> None:
    load = LoadTracker(None)
    candidates = deployments({"id": "fast"}, {"id": "almost"}, {"id": "slow"})
    with_latency(load, "fast", 0.100)
    with_latency(load, "almost", 0.105)
    with_latency(load, "slow", 0.500)
    n = 1_000
    buffered = await first_choices(
        make_strategy("latency-based-routing", load, 0.1, rng=random.Random(5)), candidates, n
    )
    strict = await first_choices(make_strategy("latency-based-routing", load, 0.0, rng=random.Random(5)), candidates, n)
    print(f"\nlatency-based over {n} choices: buffer 0.1 -> {shares(buffered, n)} %, buffer 0 -> {shares(strict, n)} %")
    assert buffered["slow"] == 0 and abs(buffered["fast"] - buffered["almost"]) <= 0.1 * n
    assert strict == Counter({"fast": n})
    ordered = ids(await make_strategy("latency-based-routing", load, 0.1).order(candidates, 0))
    assert ordered[-1] == "slow"


async def test_latency_unmeasured_deployment_is_tried_first() -> None:
    load = LoadTracker(None)
    candidates = deployments({"id": "measured"}, {"id": "new"})
    with_latency(load, "measured", 0.2)
    assert ids(await make_strategy("latency-based-routing", load, 0.1).order(candidates, 0))[0] == "new"


# -- usage-based -------------------------------------------------------------------------------


async def test_usage_based_prefers_the_least_used_deployment() -> None:
    load = LoadTracker(None)
    candidates = deployments({"id": "a"}, {"id": "b"}, {"id": "c"})
    for dep_id, tokens in (("a", 500), ("b", 100), ("c", 300)):
        load.started(dep_id)
        load.finished(dep_id, latency_s=0.1, tokens=tokens)
    assert ids(await make_strategy("usage-based-routing", load, 0.1).order(candidates, 10)) == ["b", "c", "a"]


async def test_usage_based_routing_sees_the_other_replicas_traffic(
    redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    """Two LoadTrackers on one Redis are two router replicas."""
    one = LoadTracker(redis_client, redis_prefix)
    two = LoadTracker(redis_client, redis_prefix)
    candidates = deployments({"id": "a", "tpm": 10_000}, {"id": "b", "tpm": 10_000})
    try:
        # Replica one alone sent 9,000 tokens to "a" this minute.
        for _ in range(3):
            one.started("a")
            one.finished("a", latency_s=0.2, tokens=3_000)
        await one.flush()
        strategy = make_strategy("usage-based-routing-v2", two, 0.1)
        assert ids(await strategy.order(candidates, 500)) == ["b", "a"]
        # a would pass its tpm with 2,000 more tokens: replica two leaves it out altogether.
        assert ids(await strategy.order(candidates, 2_000)) == ["b"]
        assert await two.minute_usage(["a", "b"]) == {"a": (3, 9_000), "b": (0, 0)}
    finally:
        await one.close()
        await two.close()


async def test_rpm_limit_counts_every_replica(redis_client: aioredis.Redis, redis_prefix: str) -> None:
    one = LoadTracker(redis_client, redis_prefix)
    two = LoadTracker(redis_client, redis_prefix)
    candidates = deployments({"id": "a", "rpm": 3}, {"id": "b"})
    try:
        one.started("a")
        one.started("a")
        await one.flush()
        strategy = make_strategy("simple-shuffle", two, 0.1)
        assert "a" in ids(await strategy.order(candidates, 0))
        two.started("a")  # the third request this minute, from the other replica
        assert ids(await strategy.order(candidates, 0)) == ["b"]
        await two.flush()
        assert ids(await make_strategy("least-busy", one, 0.1).order(candidates, 0)) == ["b"]
    finally:
        await one.close()
        await two.close()


# -- cost-based --------------------------------------------------------------------------------


async def test_cost_based_puts_the_cheapest_first() -> None:
    candidates = deployments(
        {"id": "gpt-4o", "model": "openai/gpt-4o"},
        {"id": "mini", "model": "openai/gpt-4o-mini"},
        {"id": "override", "model": "openai/gpt-4o", "input_cost_per_token": 1e-8, "output_cost_per_token": 1e-8},
    )
    ordered = ids(await make_strategy("cost-based-routing", LoadTracker(None), 0.1).order(candidates, 0))
    assert ordered == ["override", "mini", "gpt-4o"]


async def test_cost_based_spreads_load_among_equal_prices() -> None:
    candidates = deployments({"id": "a"}, {"id": "b"}, {"id": "pricey", "model": "openai/gpt-4o"})
    counts = await first_choices(make_strategy("cost-based-routing", LoadTracker(None), 0.1), candidates, 200)
    assert counts["pricey"] == 0 and counts["a"] > 40 and counts["b"] > 40


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="round-robin"):
        make_strategy("round-robin", LoadTracker(None), 0.1)
