"""Admission limits: requests and tokens per minute, parallel requests and budgets, per scope.

A request is admitted against a list of :class:`Scope` s — the key, and (when set) its team, user,
organization, end user and per-model limits — and only if every limit of every scope still holds;
the tightest one decides. A check and the charge that follows are one step: with Redis one Lua
script over all scopes, so replicas sharing a Redis enforce one limit together and concurrent checks
never overshoot; in process one synchronous function. Per scope:

- ``rpm``: requests admitted in this one-minute window (``floor(now / 60)``) + 1 <= limit;
- ``tpm``: tokens counted in this window + the request's estimate <= limit (a request whose
  estimate alone exceeds it is never admitted);
- ``parallel``: slots held + 1 <= limit; a slot is held until the request is settled;
- ``budget``: spend in the budget window plus the worst-case costs reserved by requests in flight
  must be below ``max_budget``. Admission reserves the request's worst-case cost (given by the
  router: prompt estimate plus the output limit at the group's highest prices); settling the
  request (:meth:`RateLimiter.settle`, from ``RecordUsage``) replaces the reservation with the
  actual cost, which is 0 for a failed call. A request is admitted while there is room left, so
  concurrent requests at the budget's edge overshoot it by at most one request's cost.

Budget windows: a scope's spend counter is named by the end of its window (``budget_duration``
windows; a budget without one has a single open window) and starts, the first time it is used, from
the spend the system of record reports for that window (``opening_spend``); afterwards the counter
leads the database, which receives the same costs through the spend pipeline.

Reservations and slots never settled (a replica died mid-request) free themselves after
:data:`SLOT_TTL` seconds. Settling is idempotent: the reservation is named by the request id and
forgotten once settled, so a usage report delivered twice is charged once.

Money is counted in whole nano-dollars so Redis counts exactly. Windows and expiries use each
replica's wall clock: replicas must keep their clocks in sync (NTP). All keys of one check are
touched by one script: use a standalone (or Sentinel) Redis, not Redis Cluster.

Redis unavailable: :class:`~switchyard_auth.redis_limits.RedisRateLimiter` never lets a check wait
more than ~0.25 s, then falls back to an in-process :class:`LocalRateLimiter` with the same
limits: conservative per-replica enforcement (each replica admits up to the full limit on its own), or refusal with
``service_unavailable`` when built with ``fail_closed``. After a failure it stays on the fallback for
:data:`PROBE_INTERVAL` seconds, then tries Redis again, so it recovers by itself; the failure is
logged at most once per :data:`LOG_INTERVAL`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from switchyard_core.errors import SwitchyardError

WINDOW = 60
"""Length of a rate window, in seconds."""
SLOT_TTL = 900.0
"""Seconds after which a parallel slot or budget reservation never settled frees itself."""
OPEN_BUDGET_TTL = 86_400
"""Seconds the counter of a budget without a window lives after its last use (then it starts again
from the system of record's figure)."""
NANO = 1_000_000_000
"""Nano-dollars per US dollar: money is counted in whole nano-dollars."""

# Refusal causes, as the Lua script reports them.
ADMITTED, _RPM, _TPM, _PARALLEL, _BUDGET = 0, 1, 2, 3, 4
_CAUSES = {_RPM: "requests per minute", _TPM: "tokens per minute", _PARALLEL: "parallel requests"}


@dataclass(frozen=True, slots=True)
class Limits:
    """Rate limits; None means unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    parallel: int | None = None

    def __bool__(self) -> bool:
        return self.rpm is not None or self.tpm is not None or self.parallel is not None


@dataclass(frozen=True, slots=True)
class Budget:
    """A spend limit in US dollars for one window.

    ``window_end`` (epoch seconds) names the window; 0 means a budget that never resets.
    ``opening_spend`` is what the system of record has for this window when the counter starts.
    """

    max_budget: float
    window_end: float = 0.0
    opening_spend: float = 0.0


@dataclass(frozen=True, slots=True)
class Scope:
    """One subject's limits: ``subject`` names its counters (``"key:<hash>"``, ``"team:<id>"``...);
    ``label`` names it in refusals (``"this API key"``, ``"team 'ml'"``)."""

    subject: str
    limits: Limits = field(default_factory=Limits)
    budget: Budget | None = None
    label: str = "this API key"

    def __bool__(self) -> bool:
        return bool(self.limits) or self.budget is not None


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check.

    ``request_limit``/``remaining_requests`` and ``token_limit``/``remaining_tokens`` are those of
    the tightest scope that sets the limit (None when none does), after this check. ``reserved``
    tells whether the request must be settled (a slot or a budget reservation was taken).
    ``reset_after`` is seconds until the rate window ends. On refusal, ``scope`` is the scope that
    refused and ``spent`` its budget spend (dollars, including reservations in flight).
    """

    admitted: bool
    request_limit: int | None = None
    remaining_requests: int | None = None
    token_limit: int | None = None
    remaining_tokens: int | None = None
    reserved: bool = False
    reset_after: float = 0.0
    cause: int = ADMITTED
    scope: Scope | None = None
    spent: float = 0.0
    budget_reset_after: float = 0.0

    def error(self) -> SwitchyardError:
        """The refusal for a decision that did not admit: ``budget_exceeded`` or ``rate_limit_exceeded``."""
        label = self.scope.label if self.scope is not None else "this API key"
        if self.cause == _BUDGET and self.scope is not None and self.scope.budget is not None:
            budget = self.scope.budget
            retry = max(1, math.ceil(self.budget_reset_after)) if budget.window_end else None
            message = f"Budget exceeded for {label}: spent ${self.spent:.6f} of ${budget.max_budget:.6f}."
            if retry is not None:
                message += f" The budget resets in {retry} seconds."
            return SwitchyardError("budget_exceeded", message, retry_after=retry, metadata=self.headers())
        cause = _CAUSES.get(self.cause, "rate limit")
        # A parallel slot frees when a request ends, not when the window does.
        retry_after = 1 if self.cause == _PARALLEL else max(1, math.ceil(self.reset_after))
        return SwitchyardError(
            "rate_limit_exceeded",
            f"Rate limit exceeded for {label} ({cause}). Retry after {retry_after} seconds.",
            retry_after=retry_after,
            metadata=self.headers(),
        )

    def headers(self) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` figures for the limits that are set."""
        headers: dict[str, str] = {}
        if self.request_limit is not None:
            headers["x-ratelimit-limit-requests"] = str(self.request_limit)
            headers["x-ratelimit-remaining-requests"] = str(self.remaining_requests)
        if self.token_limit is not None:
            headers["x-ratelimit-limit-tokens"] = str(self.token_limit)
            headers["x-ratelimit-remaining-tokens"] = str(self.remaining_tokens)
        return headers


class RateLimiter(Protocol):
    """Checks and charges limits; safe to share between tasks of one event loop."""

    async def check(self, scopes: Sequence[Scope], tokens: int, cost: float, request_id: str) -> Decision:
        """Admit one request costing ``tokens`` and at most ``cost`` dollars against every scope, or refuse it.

        On admission the counters of every scope are charged, slots taken and ``cost`` reserved,
        all named by ``request_id``. Never raises for an unavailable backend, unless the limiter
        fails closed (then ``service_unavailable``).
        """
        ...

    async def settle(self, settlements: Iterable[tuple[str, float]]) -> None:
        """Settle finished requests ``(request_id, actual cost)``: free their slots and turn their
        reservations into the actual cost. Unknown or already settled requests are ignored."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def rate_window(now: float) -> tuple[int, float]:
    """The rate window number of ``now`` and the seconds left in it."""
    window = int(now // WINDOW)
    return window, (window + 1) * WINDOW - now


def nano(dollars: float) -> int:
    return max(0, round(dollars * NANO))


def budget_ttl(budget: Budget, now: float) -> int:
    if not budget.window_end:
        return OPEN_BUDGET_TTL
    # The counter outlives its window a little, so a late settlement still finds it.
    return max(1, math.ceil(budget.window_end - now)) + WINDOW


def budget_name(scope: Scope, budget: Budget) -> str:
    return f"{scope.subject}:budget:{int(budget.window_end) if budget.window_end else 'open'}"


@dataclass(frozen=True, slots=True)
class Counts:
    """What one scope had (refusal) or has after the charge (admission)."""

    requests: int = 0
    tokens: int = 0
    spent: int = 0
    reserved: int = 0


def decide(
    scopes: Sequence[Scope],
    cause: int,
    index: int,
    counts: Sequence[Counts],
    reserved: bool,
    now: float,
) -> Decision:
    """Assemble a decision; ``counts`` holds one entry per scope, or only the refusing scope's."""
    _, reset_after = rate_window(now)
    request_limit = remaining_requests = token_limit = remaining_tokens = None
    pairs = zip(scopes, counts, strict=True) if len(counts) == len(scopes) else [(scopes[index], counts[0])]
    for scope, count in pairs:
        limits = scope.limits
        if limits.rpm is not None:
            left = max(0, limits.rpm - count.requests)
            if remaining_requests is None or left < remaining_requests:
                request_limit, remaining_requests = limits.rpm, left
        if limits.tpm is not None:
            left = max(0, limits.tpm - count.tokens)
            if remaining_tokens is None or left < remaining_tokens:
                token_limit, remaining_tokens = limits.tpm, left
    if cause == ADMITTED:
        return Decision(True, request_limit, remaining_requests, token_limit, remaining_tokens, reserved, reset_after)
    scope = scopes[index]
    count = counts[0] if len(counts) == 1 else counts[index]
    budget_reset_after = scope.budget.window_end - now if scope.budget is not None and scope.budget.window_end else 0.0
    return Decision(
        False,
        request_limit,
        remaining_requests,
        token_limit,
        remaining_tokens,
        False,
        reset_after,
        cause,
        scope,
        (count.spent + count.reserved) / NANO,
        budget_reset_after,
    )


def _refusal(scope: Scope, count: Counts, tokens: int, held: int) -> int:
    """The first limit of ``scope`` the request would break, or ``ADMITTED``."""
    limits = scope.limits
    if limits.rpm is not None and count.requests + 1 > limits.rpm:
        return _RPM
    if limits.tpm is not None and count.tokens + tokens > limits.tpm:
        return _TPM
    if limits.parallel is not None and held + 1 > limits.parallel:
        return _PARALLEL
    if scope.budget is not None and count.spent + count.reserved >= nano(scope.budget.max_budget):
        return _BUDGET
    return ADMITTED


@dataclass(slots=True)
class _Window:
    window: int
    requests: int = 0
    tokens: int = 0


@dataclass(slots=True)
class _LocalBudget:
    spent: int
    ends: float
    reservations: dict[str, tuple[int, float]] = field(default_factory=dict)
    """request id -> (nano-dollars, expiry)."""

    def reserved(self, now: float) -> int:
        for request_id in [r for r, (_, until) in self.reservations.items() if until <= now]:
            del self.reservations[request_id]
        return sum(amount for amount, _ in self.reservations.values())


@dataclass(slots=True)
class _LocalReservation:
    slots: list[str]
    budgets: list[str]
    until: float


class LocalRateLimiter:
    """In-process limits: exact for one replica; ``clock`` is wall-clock seconds.

    A check never awaits, so concurrent checks on one event loop are serialised and exact.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time, slot_ttl: float = SLOT_TTL) -> None:
        self._clock = clock
        self._slot_ttl = slot_ttl
        self._windows: dict[str, _Window] = {}
        self._slots: dict[str, dict[str, float]] = {}
        self._budgets: dict[str, _LocalBudget] = {}
        self._reservations: dict[str, _LocalReservation] = {}

    async def check(self, scopes: Sequence[Scope], tokens: int, cost: float, request_id: str) -> Decision:
        return self.check_now(scopes, tokens, cost, request_id)

    def check_now(self, scopes: Sequence[Scope], tokens: int, cost: float, request_id: str) -> Decision:
        """:meth:`check` without awaiting (the Redis limiter's fallback calls it directly)."""
        now = self._clock()
        window, _ = rate_window(now)
        tokens = max(0, tokens)
        counts: list[Counts] = []
        for index, scope in enumerate(scopes):
            state = self._window_of(scope.subject, window)
            held = len(self._live_slots(scope.subject, now)) if scope.limits.parallel is not None else 0
            budget = self._budget_of(scope, now) if scope.budget is not None else None
            count = Counts(
                state.requests, state.tokens, budget.spent if budget else 0, budget.reserved(now) if budget else 0
            )
            cause = _refusal(scope, count, tokens, held)
            if cause != ADMITTED:
                return decide(scopes, cause, index, [count], False, now)
            counts.append(count)
        reservation = _LocalReservation([], [], now + self._slot_ttl)
        charged: list[Counts] = []
        for scope, count in zip(scopes, counts, strict=True):
            state = self._windows[scope.subject]
            if scope.limits.rpm is not None:
                state.requests += 1
            if scope.limits.tpm is not None:
                state.tokens += tokens
            if scope.limits.parallel is not None:
                self._slots.setdefault(scope.subject, {})[request_id] = reservation.until
                reservation.slots.append(scope.subject)
            if scope.budget is not None:
                name = budget_name(scope, scope.budget)
                self._budgets[name].reservations[request_id] = (nano(cost), reservation.until)
                reservation.budgets.append(name)
            charged.append(Counts(state.requests, state.tokens, count.spent, count.reserved))
        reserved = bool(reservation.slots or reservation.budgets)
        if reserved:
            self._reservations[request_id] = reservation
        return decide(scopes, ADMITTED, -1, charged, reserved, now)

    def _window_of(self, subject: str, window: int) -> _Window:
        state = self._windows.get(subject)
        if state is None or state.window != window:
            if len(self._windows) > 1024:  # counters of past windows are dead weight
                for stale in [s for s, st in self._windows.items() if st.window != window]:
                    del self._windows[stale]
            state = self._windows[subject] = _Window(window)
        return state

    def _live_slots(self, subject: str, now: float) -> dict[str, float]:
        slots = self._slots.setdefault(subject, {})
        for expired in [rid for rid, until in slots.items() if until <= now]:
            del slots[expired]
        return slots

    def _budget_of(self, scope: Scope, now: float) -> _LocalBudget:
        assert scope.budget is not None
        name = budget_name(scope, scope.budget)
        budget = self._budgets.get(name)
        if budget is None:
            if len(self._budgets) > 1024:
                for ended in [n for n, b in self._budgets.items() if b.ends and b.ends < now and not b.reservations]:
                    del self._budgets[ended]
            ends = scope.budget.window_end
            budget = self._budgets[name] = _LocalBudget(nano(scope.budget.opening_spend), ends)
        return budget

    async def settle(self, settlements: Iterable[tuple[str, float]]) -> None:
        self.settle_now(settlements)

    def settle_now(self, settlements: Iterable[tuple[str, float]]) -> None:
        """:meth:`settle` without awaiting."""
        for request_id, cost in settlements:
            reservation = self._reservations.pop(request_id, None)
            if reservation is None:
                continue
            for subject in reservation.slots:
                held = self._slots.get(subject)
                if held is not None:
                    held.pop(request_id, None)
                    if not held:
                        del self._slots[subject]
            for name in reservation.budgets:
                budget = self._budgets.get(name)
                if budget is not None:
                    budget.reservations.pop(request_id, None)
                    budget.spent += nano(cost)

    async def close(self) -> None:
        return None
