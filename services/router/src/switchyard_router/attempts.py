"""The attempt loop: which deployment serves a request, and what happens when one fails.

For one request the router walks its model group, then the group's fallbacks:

    group (then each fallback group, at most max_fallbacks of them)
      candidates  = the group's deployments that fit the request (tags; context window when
                    enable_pre_call_checks), minus those cooling down or failing health checks
      order       = the routing strategy's preference among them (limits respected)
      attempt 1..1+retries: call the next deployment in that order, never straight back to the one
                    that just failed while another is left; back off between retries, honouring the
                    upstream's retry hint

A failure is sorted by whose fault it is (:mod:`switchyard_router._faults`): a deployment's fault
is reported to the cooldown tracker and retried as ``retry_policy`` allows, then falls back to the
group's ``fallbacks``; a caller's fault (bad request) is returned at once, except that an exceeded
context window or a content-policy refusal may move to ``context_window_fallbacks`` /
``content_policy_fallbacks``.
The number of upstream attempts is bounded by (1 + retries) x (1 + max_fallbacks) and reported.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from switchyard_core.errors import SwitchyardError
from switchyard_router.cooldowns import Cooldowns
from switchyard_router.deployments import Deployment, ModelGroups
from switchyard_router.fallbacks import fallback_groups
from switchyard_router.health import HealthChecks
from switchyard_router.load import LoadTracker
from switchyard_router.precall import filter_candidates
from switchyard_router.retry import RetryPolicy
from switchyard_router.settings import RouterSettings
from switchyard_router.strategies import Strategy

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Ask:
    """What the attempt loop needs to know about one request."""

    group: str
    estimated_tokens: int
    prompt_tokens: int
    max_output: int
    tags: Sequence[str]
    num_retries: int | None
    deadline: float
    """``time.monotonic()`` by which the whole request must be done."""
    stream: bool = False


@dataclass(slots=True)
class Outcome(Generic[T]):
    """A successful attempt and how it was reached."""

    value: T
    deployment: Deployment
    group: str
    attempts: int
    upstream_seconds: float


class AttemptError(SwitchyardError):
    """The request's final failure, with the number of upstream attempts made."""

    def __init__(self, error: SwitchyardError, attempts: int, deployment: Deployment | None) -> None:
        super().__init__(
            error.reason, error.message, param=error.param, retry_after=error.retry_after, metadata=error.metadata
        )
        self.attempts = attempts
        self.deployment = deployment


Attempt = Callable[[Deployment, float], Awaitable[T]]
"""Calls one deployment with a per-attempt timeout in seconds; raises SwitchyardError."""


class Attempts:
    """Runs requests through strategies, retries, cooldowns and fallbacks; one per router process."""

    def __init__(
        self,
        groups: ModelGroups,
        settings: RouterSettings,
        strategy: Strategy,
        load: LoadTracker,
        cooldowns: Cooldowns,
        retry: RetryPolicy,
        health: HealthChecks,
    ) -> None:
        self._groups = groups
        self._settings = settings
        self._strategy = strategy
        self._load = load
        self._cooldowns = cooldowns
        self._retry = retry
        self._health = health

    async def run(self, ask: Ask, attempt: Attempt[T]) -> Outcome[T]:
        """Serve ``ask`` with ``attempt``; raise :class:`AttemptError` when no path succeeds."""
        queue = [ask.group]
        seen = {ask.group}
        attempts = 0
        upstream = 0.0
        last: SwitchyardError | None = None
        last_deployment: Deployment | None = None
        while queue:
            group = queue.pop(0)
            try:
                outcome = await self._run_group(group, ask, attempt)
            except _GroupFailed as failed:
                attempts += failed.attempts
                upstream += failed.upstream_seconds
                last, last_deployment = failed.error, failed.deployment or last_deployment
                if len(seen) - 1 < self._settings.max_fallbacks and time.monotonic() < ask.deadline:
                    for fallback in fallback_groups(group, failed.error, self._settings):
                        if fallback not in seen and fallback in self._groups:
                            if len(seen) - 1 >= self._settings.max_fallbacks:
                                break
                            seen.add(fallback)
                            queue.append(fallback)
                continue
            outcome.attempts += attempts
            outcome.upstream_seconds += upstream
            return outcome
        assert last is not None
        raise AttemptError(last, attempts, last_deployment)

    async def _run_group(self, group: str, ask: Ask, attempt: Attempt[T]) -> Outcome[T]:
        ordered = await self._candidates(group, ask)
        retries = 0
        attempts = 0
        upstream = 0.0
        tried: list[str] = []
        failed_last: str | None = None
        while True:
            deployment = _next(ordered, tried, failed_last)
            remaining = ask.deadline - time.monotonic()
            if remaining <= 0:
                raise _GroupFailed(
                    SwitchyardError("upstream_timeout", "The request ran out of time."), attempts, upstream, deployment
                )
            timeout = min(remaining, self._attempt_timeout(deployment, ask.stream))
            attempts += 1
            tried.append(deployment.config.id)
            self._load.started(deployment.config.id)
            started = time.monotonic()
            try:
                value = await attempt(deployment, timeout)
            except SwitchyardError as error:
                elapsed = time.monotonic() - started
                upstream += elapsed
                self._load.finished(deployment.config.id, latency_s=None, tokens=0)
                # The tracker ignores failures that are not the deployment's fault.
                await self._cooldowns.report_failure(deployment.config.id, error)
                if retries >= self._retry.retries_for(error, ask.num_retries):
                    raise _GroupFailed(error, attempts, upstream, deployment) from None
                try:
                    # Cooldowns may have changed: a deployment just cooled is no longer a candidate.
                    ordered = await self._candidates(group, ask)
                except _GroupFailed:
                    # Nothing left to retry on: the caller gets this failure (a 429 keeps its hint).
                    raise _GroupFailed(error, attempts, upstream, deployment) from None
                retries += 1
                failed_last = deployment.config.id
                delay = min(self._retry.backoff(retries, error), max(0.0, ask.deadline - time.monotonic()))
                if delay > 0:
                    await asyncio.sleep(delay)
                continue
            elapsed = time.monotonic() - started
            self._load.finished(deployment.config.id, latency_s=elapsed, tokens=0)
            await self._cooldowns.report_success(deployment.config.id)
            return Outcome(value, deployment, group, attempts, upstream + elapsed)

    async def _candidates(self, group: str, ask: Ask) -> list[Deployment]:
        members = self._groups.members(group)
        if not members:
            raise _GroupFailed(
                SwitchyardError("model_not_found", f"The model '{group[:256]}' does not exist.", param="model"), 0, 0.0
            )
        fitting = filter_candidates(
            members,
            prompt_tokens=ask.prompt_tokens,
            max_output=ask.max_output,
            tags=ask.tags,
            check_context=self._settings.enable_pre_call_checks,
            use_tags=self._settings.enable_tag_filtering,
        )
        if not fitting:
            if ask.tags:
                error = SwitchyardError(
                    "invalid_request", f"No deployment of '{group}' carries the tags {list(ask.tags)}.", param="tags"
                )
            else:
                error = SwitchyardError(
                    "context_length_exceeded",
                    f"The prompt ({ask.prompt_tokens} tokens) does not fit the context window of any deployment "
                    f"of '{group}'.",
                    param="messages",
                )
            raise _GroupFailed(error, 0, 0.0)
        ids = [member.config.id for member in fitting]
        cooling = await self._cooldowns.cooling(ids)
        healthy = [m for m in fitting if m.config.id not in cooling and self._health.in_rotation(m.config.id)]
        if not healthy:
            wait = min(cooling.values()) if cooling else float(self._settings.cooldown_time)
            raise _GroupFailed(
                SwitchyardError(
                    "no_healthy_deployment",
                    f"Every deployment of '{group}' is cooling down or failing its health checks.",
                    retry_after=max(1.0, wait),
                ),
                0,
                0.0,
            )
        ordered = await self._strategy.order(healthy, ask.estimated_tokens)
        if not ordered:
            raise _GroupFailed(
                SwitchyardError(
                    "rate_limit_exceeded",
                    f"Every deployment of '{group}' is at its rpm, tpm or parallel-request limit.",
                    retry_after=max(1.0, 60 - time.time() % 60),
                ),
                0,
                0.0,
            )
        return ordered

    def _attempt_timeout(self, deployment: Deployment, stream: bool) -> float:
        configured = deployment.config.params.get("stream_timeout") if stream else None
        if configured is None:
            configured = deployment.config.timeout or None
        if configured is None:
            configured = self._settings.stream_timeout if stream else self._settings.timeout
        return float(configured) if configured else float("inf")


class _GroupFailed(Exception):
    def __init__(
        self, error: SwitchyardError, attempts: int, upstream_seconds: float, deployment: Deployment | None = None
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.attempts = attempts
        self.upstream_seconds = upstream_seconds
        self.deployment = deployment


def _next(ordered: list[Deployment], tried: list[str], failed_last: str | None) -> Deployment:
    """The most preferred deployment not tried yet; once all were, the best one that did not just fail."""
    for deployment in ordered:
        if deployment.config.id not in tried:
            return deployment
    for deployment in ordered:
        if deployment.config.id != failed_last:
            return deployment
    return ordered[0]
