"""Virtual keys as auth sees them: looked up in management by hash, kept in process for seconds.

Entries live :data:`POSITIVE_TTL` seconds for a key that exists and :data:`NEGATIVE_TTL` for a
hash that does not (so a key created a moment ago works within a second, and a flood of made-up
keys costs management at most one lookup per hash per second). Once an entry expires, the next
request for it asks management again; concurrent requests for the same hash share that one lookup.

Outages: when management cannot answer (database down, management unreachable, lookup timed
out), an expired entry is served as it was last seen, for as long as the outage lasts. Known keys
keep working while the database is down, at the price that a key deleted or blocked during the
outage keeps its last known state until management answers again. While management keeps
failing, a stale entry is retried every :data:`NEGATIVE_TTL` seconds. A hash with no entry at all
cannot be decided then and is ``service_unavailable`` (503), never admitted and never a 500.

A change made through management reaches this cache at once when it is announced
(:mod:`switchyard_core.key_events`: in process, or over Redis pub/sub between processes), and
within :data:`POSITIVE_TTL` seconds (``general_settings.user_api_key_cache_ttl``) otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc

from switchyard.management.v1 import management_service_pb2
from switchyard_core import errors
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import bearer_metadata
from switchyard_core.key_events import EVERYTHING

log = logging.getLogger(__name__)

POSITIVE_TTL = 5.0
"""Seconds a found key is served without asking management again."""
NEGATIVE_TTL = 1.0
"""Seconds an unknown hash is refused without asking management again."""
LOOKUP_TIMEOUT = 2.0
"""Longest wait for management's answer, in seconds; it is on the request path."""
MAX_ENTRIES = 100_000
"""Entries kept at most; beyond it the oldest are dropped (they are looked up again when needed)."""

UNAVAILABLE = SwitchyardError(
    "service_unavailable", "Keys cannot be checked right now; try again shortly.", retry_after=1
)

V = TypeVar("V")


@dataclass(slots=True)
class _Entry(Generic[V]):
    key: V | None
    fresh_until: float


class KeyCache(Generic[V]):
    """Key hash -> what management knows of the key, cached; one per process, safe to share between tasks.

    ``lookup`` asks management (see :func:`management_lookup`; :func:`end_user_lookup` makes the
    same cache serve end users); ``clock`` is monotonic seconds.
    """

    def __init__(
        self,
        lookup: Callable[[str], Awaitable[V | None]],  # None: not found; SwitchyardError: cannot tell
        *,
        positive_ttl: float = POSITIVE_TTL,
        negative_ttl: float = NEGATIVE_TTL,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._positive_ttl = positive_ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, _Entry[V]] = {}
        self._pending: dict[str, asyncio.Future[V | None]] = {}

    async def get(self, key_hash: str) -> V | None:
        """The key with ``key_hash``, or None when there is none.

        Raises ``service_unavailable`` only when management cannot answer and nothing is cached.
        The returned message is shared: never mutate it.
        """
        entry = self._entries.get(key_hash)
        if entry is not None and entry.fresh_until > self._clock():
            return entry.key
        pending = self._pending.get(key_hash)
        if pending is None:
            # A task of its own, not the caller's: a caller that gives up (client gone, deadline)
            # must not cancel the lookup other requests for the same hash are waiting on.
            pending = asyncio.ensure_future(self._refresh(key_hash, entry))
            self._pending[key_hash] = pending
            pending.add_done_callback(lambda done: self._settled(key_hash, done))
        return await asyncio.shield(pending)

    def _settled(self, key_hash: str, done: asyncio.Future[V | None]) -> None:
        if self._pending.get(key_hash) is done:
            del self._pending[key_hash]
        if not done.cancelled():
            done.exception()  # retrieved here, so a lookup whose callers all left logs no warning

    def invalidate(self, key_hash: str) -> None:
        """Forget ``key_hash``: the next request asks management (and is refused if it cannot answer)."""
        self._entries.pop(key_hash, None)

    def expire_all(self) -> None:
        """Make every entry stale: each key is asked again on its next use, and served as last
        seen only while management cannot answer."""
        for entry in self._entries.values():
            entry.fresh_until = 0.0

    def changed(self, key_hashes: Sequence[str]) -> None:
        """Apply a key-change announcement (:mod:`switchyard_core.key_events`)."""
        for key_hash in key_hashes:
            if key_hash == EVERYTHING:
                self.expire_all()
            else:
                self.invalidate(key_hash)

    async def _refresh(self, key_hash: str, stale: _Entry[V] | None) -> V | None:
        try:
            key = await self._lookup(key_hash)
        except SwitchyardError as exc:
            if stale is not None:
                log.warning("key lookup failed (%s); serving the cached entry", exc.reason)
                # Asked again after NEGATIVE_TTL, not on every request: during an outage only
                # one request per key per interval waits for management to fail.
                self._store(key_hash, _Entry(stale.key, self._clock() + self._negative_ttl))
                return stale.key
            log.warning("key lookup failed (%s) and the key is not cached", exc.reason)
            raise UNAVAILABLE from None
        ttl = self._positive_ttl if key is not None else self._negative_ttl
        self._store(key_hash, _Entry(key, self._clock() + ttl))
        return key

    def _store(self, key_hash: str, entry: _Entry[V]) -> None:
        self._entries.pop(key_hash, None)  # re-inserted last: dict order is age order
        while len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key_hash] = entry


def management_lookup(
    management: Any, service_key: str, timeout: float = LOOKUP_TIMEOUT
) -> Callable[[str], Awaitable[management_service_pb2.LookupKeyResponse | None]]:
    """A lookup calling ``ManagementService.LookupKey`` on stub ``management``: the key with its
    team, user and organization.

    ``service_key`` (the master key) is the credential; every failure becomes a ``SwitchyardError``.
    """
    metadata = bearer_metadata(service_key)

    async def lookup(key_hash: str) -> management_service_pb2.LookupKeyResponse | None:
        request = management_service_pb2.LookupKeyRequest(key_hash=key_hash)
        response = await _call(management.LookupKey, request, metadata, timeout)
        return response if response.found else None

    return lookup


def owners_lookup(
    management: Any, service_key: str, timeout: float = LOOKUP_TIMEOUT
) -> Callable[[str], Awaitable[management_service_pb2.LookupKeyResponse | None]]:
    """A lookup calling ``ManagementService.LookupOwners`` for references made by :func:`owners_ref`."""
    metadata = bearer_metadata(service_key)

    async def lookup(ref: str) -> management_service_pb2.LookupKeyResponse | None:
        team_id, _, user_id = ref.partition("\n")
        request = management_service_pb2.LookupOwnersRequest(team_id=team_id, user_id=user_id)
        owners = await _call(management.LookupOwners, request, metadata, timeout)
        # Shaped like a key's lookup (without the key), so the same scopes apply.
        found = management_service_pb2.LookupKeyResponse(found=True)
        for name in ("team", "user", "organization"):
            if owners.HasField(name):
                getattr(found, name).CopyFrom(getattr(owners, name))
        return found

    return lookup


def owners_ref(team_id: str, user_id: str) -> str:
    """The cache key of a team and user pair (ids hold no newline)."""
    return f"{team_id}\n{user_id}"


def end_user_lookup(
    management: Any, service_key: str, timeout: float = LOOKUP_TIMEOUT
) -> Callable[[str], Awaitable[management_service_pb2.EndUser | None]]:
    """A lookup calling ``ManagementService.LookupEndUser``: an end user with its budget."""
    metadata = bearer_metadata(service_key)

    async def lookup(end_user_id: str) -> management_service_pb2.EndUser | None:
        request = management_service_pb2.LookupEndUserRequest(end_user_id=end_user_id)
        response = await _call(management.LookupEndUser, request, metadata, timeout)
        return response.end_user if response.found else None

    return lookup


async def _call(method: Any, request: Any, metadata: Any, timeout: float) -> Any:
    try:
        # wait_for_ready: a channel still reconnecting (management started after auth, or
        # restarted) is waited for within the timeout instead of failing the lookup at once.
        return await method(request, metadata=metadata, timeout=timeout, wait_for_ready=True)
    except grpc.RpcError as exc:
        raise errors.from_rpc_error(exc) from None
    except TimeoutError:
        raise UNAVAILABLE from None
