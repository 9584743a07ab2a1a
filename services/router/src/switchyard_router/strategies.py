"""Routing strategies: the order in which a model group's deployments are tried.

:func:`make_strategy` builds the strategy named by ``router_settings.routing_strategy``. Every
strategy's :meth:`Strategy.order` does the same three things:

1. **Limits.** A deployment is left out while it is at its ``max_parallel_requests`` (this
   replica's in-flight attempts, as in LiteLLM, where the limit is per instance), at its ``rpm``
   (requests this minute, all replicas) or would pass its ``tpm`` with this request's estimated
   tokens (tokens this minute, all replicas). Minute counts come from the :class:`LoadTracker`,
   one Redis round trip, and only when a candidate has an ``rpm``/``tpm`` limit or the strategy
   is usage-based.
2. **Tiers.** ``litellm_params.order``: lower values first; deployments without one come after
   every ordered tier. (LiteLLM only ever uses the lowest tier; keeping the others as later
   choices lets retries move down the tiers instead of failing.)
3. **Preference within a tier**, by strategy:

   - ``simple-shuffle``: a random order drawn in proportion to ``weight`` (else ``rpm``, else
     ``tpm``, else equal): the first deployment is picked with probability weight / total, the
     next among the rest likewise (exponential races, no replacement);
   - ``least-busy``: fewest in-flight attempts first, ties in random order;
   - ``latency-based-routing``: deployments whose average latency is within ``latency_buffer``
     (a fraction) of the fastest come first in random order, so near-equal deployments share
     load; then the rest, fastest first. A deployment without samples counts as fastest, so it
     gets measured;
   - ``usage-based-routing`` (and ``-v2``): fewest tokens this minute first, then fewest
     requests, ties in random order: traffic evens out across every replica's counts;
   - ``cost-based-routing``: cheapest first by input + output price per token (config override,
     else the catalogue; unknown prices count as 0, like a free local model), ties in random order.

The result holds every candidate that may take the request, most preferred first; an empty list
means every candidate is at a limit. Strategies keep no per-request state and may be shared.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Protocol

from switchyard_router.deployments import Deployment
from switchyard_router.load import LoadTracker

__all__ = ["Strategy", "deployment_weight", "make_strategy"]


class Strategy(Protocol):
    async def order(self, candidates: Sequence[Deployment], estimated_tokens: int) -> list[Deployment]:
        """Every candidate that may take the request, most preferred first (see the module doc)."""
        ...


def make_strategy(name: str, load: LoadTracker, latency_buffer: float, *, rng: random.Random | None = None) -> Strategy:
    """The strategy called ``name`` (a ``routing_strategy`` value); ValueError for an unknown one.

    ``rng`` makes the random choices reproducible (tests); the default is a private generator.
    """
    factory = _STRATEGIES.get(name)
    if factory is None:
        raise ValueError(f"unknown routing strategy {name!r}")
    return factory(load, latency_buffer, rng or random.Random())


def deployment_weight(deployment: Deployment) -> float:
    """Simple-shuffle weight: ``weight`` when set, else ``rpm``, else ``tpm``, else 1 (LiteLLM's rule)."""
    config = deployment.config
    if config.params.get("weight") is not None:
        return max(config.weight, 0.0)
    if config.rpm:
        return float(config.rpm)
    if config.tpm:
        return float(config.tpm)
    return 1.0


class _Base:
    """Limits and tiers; subclasses rank one tier."""

    needs_usage = False

    def __init__(self, load: LoadTracker, latency_buffer: float, rng: random.Random) -> None:
        self._load = load
        self._buffer = max(latency_buffer, 0.0)
        self._rng = rng

    async def order(self, candidates: Sequence[Deployment], estimated_tokens: int) -> list[Deployment]:
        usage: dict[str, tuple[int, int]] = {}
        if self.needs_usage or any(d.config.rpm or d.config.tpm for d in candidates):
            usage = await self._load.minute_usage([d.config.id for d in candidates])
        allowed = [d for d in candidates if self._has_room(d, usage, estimated_tokens)]
        if len(allowed) <= 1:
            return allowed
        tiers: dict[float, list[Deployment]] = {}
        for deployment in allowed:
            tiers.setdefault(_tier(deployment), []).append(deployment)
        ordered: list[Deployment] = []
        for tier in sorted(tiers):
            members = tiers[tier]
            ordered.extend(members if len(members) == 1 else self._rank(members, usage))
        return ordered

    def _has_room(self, deployment: Deployment, usage: dict[str, tuple[int, int]], tokens: int) -> bool:
        config = deployment.config
        limit = _max_parallel(deployment)
        if limit is not None and self._load.in_flight(config.id) >= limit:
            return False
        requests, used_tokens = usage.get(config.id, (0, 0))
        if config.rpm is not None and requests >= config.rpm:
            return False
        # A request that alone is larger than the whole tpm still goes to an idle deployment:
        # refusing it everywhere forever would help no one.
        return config.tpm is None or used_tokens == 0 or used_tokens + max(tokens, 0) <= config.tpm

    def _rank(self, members: list[Deployment], usage: dict[str, tuple[int, int]]) -> list[Deployment]:
        raise NotImplementedError

    def _sorted(self, members: list[Deployment], key: Callable[[Deployment], tuple[float, ...]]) -> list[Deployment]:
        # The random last element breaks ties without favouring the config's order.
        return sorted(members, key=lambda d: (*key(d), self._rng.random()))


class _SimpleShuffle(_Base):
    def _rank(self, members: list[Deployment], usage: dict[str, tuple[int, int]]) -> list[Deployment]:
        def race(deployment: Deployment) -> float:
            weight = deployment_weight(deployment)
            if weight <= 0:
                return math.inf  # weight 0: only when every other deployment is unavailable
            # Exponential races: the smallest -ln(U)/w wins with probability w / sum(w).
            return -math.log(1.0 - self._rng.random()) / weight

        return sorted(members, key=race)


class _LeastBusy(_Base):
    def _rank(self, members: list[Deployment], usage: dict[str, tuple[int, int]]) -> list[Deployment]:
        return self._sorted(members, lambda d: (self._load.in_flight(d.config.id),))


class _LowestLatency(_Base):
    def _rank(self, members: list[Deployment], usage: dict[str, tuple[int, int]]) -> list[Deployment]:
        latencies = {d.config.id: self._load.latency(d.config.id) or 0.0 for d in members}
        fastest = min(latencies.values())
        threshold = fastest * (1.0 + self._buffer)
        near = [d for d in members if latencies[d.config.id] <= threshold]
        rest = [d for d in members if latencies[d.config.id] > threshold]
        self._rng.shuffle(near)
        return near + self._sorted(rest, lambda d: (latencies[d.config.id],))


class _LowestUsage(_Base):
    needs_usage = True

    def _rank(self, members: list[Deployment], usage: dict[str, tuple[int, int]]) -> list[Deployment]:
        def used(deployment: Deployment) -> tuple[float, ...]:
            requests, tokens = usage.get(deployment.config.id, (0, 0))
            return (tokens, requests)

        return self._sorted(members, used)


class _LowestCost(_Base):
    def _rank(self, members: list[Deployment], usage: dict[str, tuple[int, int]]) -> list[Deployment]:
        return self._sorted(members, lambda d: (d.prices.input + d.prices.output,))


def _tier(deployment: Deployment) -> float:
    order = deployment.config.params.get("order")
    if order is None or isinstance(order, bool):
        return math.inf
    try:
        return float(order)
    except (TypeError, ValueError):
        return math.inf


def _max_parallel(deployment: Deployment) -> int | None:
    value = deployment.config.params.get("max_parallel_requests")
    if value is None or isinstance(value, bool):
        return None
    try:
        limit = int(value)
    except (TypeError, ValueError):
        return None
    return limit if limit > 0 else None


_STRATEGIES: dict[str, Callable[[LoadTracker, float, random.Random], _Base]] = {
    "simple-shuffle": _SimpleShuffle,
    "least-busy": _LeastBusy,
    "latency-based-routing": _LowestLatency,
    "usage-based-routing": _LowestUsage,
    "usage-based-routing-v2": _LowestUsage,
    "cost-based-routing": _LowestCost,
}
