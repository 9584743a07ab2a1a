"""The response cache: answers to repeated requests, in process, in Redis, or both.

Configured with LiteLLM's ``litellm_settings.cache: true`` and ``cache_params`` (see
:class:`switchyard_router.settings.CacheSettings`); :func:`make_cache` builds one per process.

Contract
--------
- **Key.** :meth:`ResponseCache.key` is a SHA-256 over the kind of call, the model group and every
  request field that can change the answer: messages, tools, tool_choice, response_format, seed,
  temperature, top_p, max_tokens / max_completion_tokens, stop, n, penalties, logprobs,
  reasoning_effort, dimensions, input and ``extra`` (minus its ``metadata`` object, which is
  bookkeeping). Left out: ``model`` (the group argument stands for it), ``stream`` (not a field:
  a streamed and a unary request share answers, and a cached answer is replayed as a stream),
  ``stream_options``, ``user`` and the gateway controls. Messages are hashed in their protobuf form
  with deterministic serialization, so JSON key order inside tool schemas does not matter while
  any change of value does. A version tag is hashed too: a format change never reads old entries.
- **Namespaces.** Entries are scoped per team by default (per key hash for keys without a team),
  so tenants never read each other's answers. When the operator sets ``cache_params.namespace``
  every caller shares that namespace. A request's own ``cache.namespace`` selects a sub-namespace
  *inside* its scope: two teams both asking for ``"docs"`` still never meet (LiteLLM's namespace is
  a bare prefix; ours cannot be used to read or poison another tenant's entries).
- **Controls.** ``no-cache``: do not read (still store). ``no-store``: do not store. ``ttl``:
  seconds to keep this answer (``<= 0`` stores nothing). With ``mode: default_off`` only requests
  that opt in use the cache at all; a request opts in by sending ``use-cache: true`` (once
  ``CacheControl`` carries that field), a ``ttl`` or a ``namespace``.
- **Fail mode.** The cache never raises and never holds a request up: any Redis failure, or a
  Redis slower than ~0.25 s (:meth:`RedisGuard.deadline`, whatever the client's own timeouts), is
  a miss (reads) or a skipped write; after a failure Redis is left alone for
  :data:`~switchyard.redis_client.PROBE_INTERVAL` seconds (every call a miss at once), then
  tried again, so recovery needs nothing. Failures are logged at most once a minute.
- **Values** are opaque bytes (the caller stores a serialized ``ChatCompletion`` or
  ``EmbeddingResult``). :func:`completion_to_chunks` replays a cached completion as a stream and
  :func:`chunks_to_completion` rebuilds a whole completion from a stream so streamed answers can be
  stored.

Implementations: :class:`LocalCache` (LRU with per-entry expiry, this process only),
:class:`RedisCache` (shared by every replica) and :class:`DualCache` (local first; a Redis hit
fills the local cache for the entry's remaining lifetime).
"""

from __future__ import annotations

import hashlib
import logging
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from switchyard.type.v1 import chat_pb2, embedding_pb2
from switchyard_core.redis_client import PROBE_INTERVAL, REDIS_ERRORS, RedisGuard

if TYPE_CHECKING:
    import redis.asyncio

    from switchyard_router.settings import CacheSettings, RouterSettings

__all__ = [
    "REDIS_KEY_PREFIX",
    "DualCache",
    "LocalCache",
    "RedisCache",
    "ResponseCache",
    "chunks_to_completion",
    "completion_to_chunks",
    "make_cache",
]

log = logging.getLogger(__name__)

REDIS_KEY_PREFIX = "switchyard:cache:"
"""Prefix of every cache entry in Redis."""

_KEY_VERSION = b"switchyard-cache-v1"
_FAIL_MODE = "cache lookups miss and answers are not stored"

# Fields that never change the answer, per params type: cleared on a copy before hashing.
_NOT_IN_KEY: dict[type, tuple[str, ...]] = {
    chat_pb2.ChatCompletionParams: ("model", "stream_options", "user", "gateway"),
    embedding_pb2.EmbeddingParams: ("model", "user", "gateway"),
}
# Keys of ``extra`` that are bookkeeping (LiteLLM's request metadata), not model input.
_EXTRA_NOT_IN_KEY = ("metadata",)


class ResponseCache(ABC):
    """Key, namespace and control rules shared by every store; ``get``/``set``/``close`` are the store's.

    One instance per process, shared by all requests; the coroutine methods are safe to call
    concurrently from one event loop.
    """

    def __init__(self, settings: CacheSettings) -> None:
        self._settings = settings

    @property
    def settings(self) -> CacheSettings:
        return self._settings

    def key(self, kind: str, group: str, params: Any, namespace: str) -> str:
        """The entry key for ``params`` (``ChatCompletionParams`` or ``EmbeddingParams``) sent to ``group``.

        ``kind`` names the operation ("chat", "embeddings"); use the same kind for streamed and
        unary chat so they share answers. ``params`` is not modified. The result is
        ``"<namespace>:<64 hex digits>"``.
        """
        excluded = _NOT_IN_KEY.get(type(params))
        if excluded is None:
            raise TypeError(f"cannot build a cache key for {type(params).__name__}")
        scrubbed = type(params)()
        scrubbed.CopyFrom(params)
        for field in excluded:
            scrubbed.ClearField(field)
        extra = scrubbed.extra
        for name in _EXTRA_NOT_IN_KEY:
            if name in extra:
                del extra[name]
        digest = hashlib.sha256(_KEY_VERSION)
        # Length-prefixed so no choice of kind/group can collide with another.
        for part in (kind.encode(), group.encode()):
            digest.update(len(part).to_bytes(4, "big"))
            digest.update(part)
        digest.update(scrubbed.SerializeToString(deterministic=True))
        return f"{namespace}:{digest.hexdigest()}"

    def namespace(self, team_id: str, key_hash: str, controls: chat_pb2.CacheControl) -> str:
        """The caller's namespace: the operator's shared one, else its team's, else its key's;
        a request's ``namespace`` is a sub-namespace of that (see the module docstring)."""
        settings = self._settings
        if settings.shared_namespace:
            base = f"shared:{settings.namespace}"
        elif team_id:
            base = f"team:{team_id}"
        else:
            base = f"key:{key_hash}"
        return f"{base}/{controls.namespace}" if controls.namespace else base

    def _opted_in(self, controls: chat_pb2.CacheControl) -> bool:
        if not self._settings.default_off:
            return True
        if controls.use_cache:  # LiteLLM's opt-in under mode: default_off
            return True
        return controls.HasField("ttl") or bool(controls.namespace)

    def reads(self, controls: chat_pb2.CacheControl) -> bool:
        """Whether a cached answer may be served for a request with these controls."""
        return not controls.no_cache and self._opted_in(controls)

    def writes(self, controls: chat_pb2.CacheControl) -> bool:
        """Whether this request's answer may be stored."""
        if controls.no_store or not self._opted_in(controls):
            return False
        return not (controls.HasField("ttl") and controls.ttl <= 0)

    def ttl(self, controls: chat_pb2.CacheControl) -> float:
        """Seconds to keep this request's answer: its own ``ttl``, else the configured one."""
        return controls.ttl if controls.HasField("ttl") else self._settings.ttl

    @abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The stored value, or None when absent, expired or unreachable. Never raises."""

    @abstractmethod
    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store ``value`` for ``ttl`` seconds (None: the configured ttl; ``<= 0``: not stored).

        Never raises; with Redis it waits at most ~0.25 s (run it as a task to keep even that off
        the request path).
        """

    async def close(self) -> None:  # noqa: B027 - a store with nothing to release need not override
        """Release connections this cache owns (a Redis client passed in is the caller's)."""

    def _lifetime(self, ttl: float | None) -> float:
        return self._settings.ttl if ttl is None else ttl


class LocalCache(ResponseCache):
    """In-process LRU of at most ``max_items`` entries, each expiring after its ttl."""

    def __init__(self, settings: CacheSettings) -> None:
        super().__init__(settings)
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        return self.get_now(key)

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        self.set_now(key, value, self._lifetime(ttl))

    def get_now(self, key: str) -> bytes | None:
        """Synchronous :meth:`get`."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def set_now(self, key: str, value: bytes, ttl: float) -> None:
        """Synchronous :meth:`set` with an explicit lifetime in seconds."""
        if ttl <= 0 or self._settings.max_items <= 0:
            return
        entries = self._entries
        entries[key] = (time.monotonic() + ttl, value)
        entries.move_to_end(key)
        while len(entries) > self._settings.max_items:
            entries.popitem(last=False)


class RedisCache(ResponseCache):
    """Entries in Redis under :data:`REDIS_KEY_PREFIX`, shared by every replica; expiry is Redis's."""

    def __init__(
        self,
        settings: CacheSettings,
        redis: redis.asyncio.Redis,
        prefix: str = REDIS_KEY_PREFIX,
        *,
        probe_interval: float = PROBE_INTERVAL,
    ) -> None:
        super().__init__(settings)
        self._redis = redis
        self._prefix = prefix
        self._guard = RedisGuard("the response cache", _FAIL_MODE, probe_interval=probe_interval)

    async def get(self, key: str) -> bytes | None:
        found = await self.get_with_ttl(key)
        return None if found is None else found[0]

    async def get_with_ttl(self, key: str) -> tuple[bytes, float] | None:
        """The value and its remaining lifetime in seconds, or None (absent, or Redis unusable)."""
        guard = self._guard
        if not guard.available():
            return None
        try:
            async with guard.deadline():
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.get(self._prefix + key)
                    pipe.pttl(self._prefix + key)
                    value, remaining_ms = await pipe.execute()
        except REDIS_ERRORS as exc:
            guard.failed(exc)
            return None
        guard.succeeded()
        if value is None:
            return None
        # PTTL is -1 for a key without expiry (never written by us, but a miss is not warranted).
        remaining = remaining_ms / 1000 if remaining_ms > 0 else self._settings.ttl
        return bytes(value), remaining

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        lifetime = self._lifetime(ttl)
        guard = self._guard
        if lifetime <= 0 or not guard.available():
            return
        try:
            async with guard.deadline():
                await self._redis.set(self._prefix + key, value, px=max(1, int(lifetime * 1000)))
        except REDIS_ERRORS as exc:  # a failed write only loses a cache entry
            guard.failed(exc)
        else:
            guard.succeeded()


class DualCache(ResponseCache):
    """Local first, then Redis; a Redis hit is kept locally for the rest of its Redis lifetime.

    Writes go to both. Another replica's write is seen here once the local copy (if any) is
    gone; entries are immutable answers, so a local copy is never stale in content.
    """

    def __init__(
        self,
        settings: CacheSettings,
        redis: redis.asyncio.Redis,
        prefix: str = REDIS_KEY_PREFIX,
        *,
        probe_interval: float = PROBE_INTERVAL,
    ) -> None:
        super().__init__(settings)
        self.local = LocalCache(settings)
        self.shared = RedisCache(settings, redis, prefix, probe_interval=probe_interval)

    async def get(self, key: str) -> bytes | None:
        value = self.local.get_now(key)
        if value is not None:
            return value
        found = await self.shared.get_with_ttl(key)
        if found is None:
            return None
        value, remaining = found
        self.local.set_now(key, value, min(remaining, self._settings.ttl))
        return value

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        lifetime = self._lifetime(ttl)
        self.local.set_now(key, value, lifetime)
        await self.shared.set(key, value, lifetime)


def make_cache(settings: RouterSettings, redis: redis.asyncio.Redis | None) -> ResponseCache | None:
    """The cache ``settings.cache`` asks for, or None when caching is off.

    ``local`` -> :class:`LocalCache`; ``redis`` -> :class:`RedisCache`; ``dual`` ->
    :class:`DualCache`. ``redis`` and ``dual`` need the ``redis`` client (built from
    ``redis_url`` / ``redis_host``): ``ValueError`` without one, as for an unknown type.
    """
    cache = settings.cache
    if cache is None:
        return None
    if cache.type == "local":
        return LocalCache(cache)
    if cache.type not in ("redis", "dual"):
        raise ValueError(f"unsupported cache type {cache.type!r}; use 'local', 'redis' or 'dual'")
    if redis is None:
        raise ValueError(f"cache type {cache.type!r} needs Redis: set redis_url or redis_host/redis_port")
    return RedisCache(cache, redis) if cache.type == "redis" else DualCache(cache, redis)


# ------------------------------------------------------------------------------------- streams


def completion_to_chunks(
    completion: chat_pb2.ChatCompletion, include_usage: bool
) -> list[chat_pb2.ChatCompletionChunk]:
    """A whole completion as the stream a provider would have sent.

    Per choice: one chunk with the role and the whole content, reasoning, refusal and tool calls,
    then one chunk with the finish reason; then, when ``include_usage``, a last chunk with no
    choices and the usage. Every chunk carries the completion's id, created, model and
    fingerprint. :func:`chunks_to_completion` turns the result back into ``completion``.
    """
    head = {
        "id": completion.id,
        "created": completion.created,
        "model": completion.model,
        "system_fingerprint": completion.system_fingerprint,
    }
    chunks: list[chat_pb2.ChatCompletionChunk] = []
    for choice in completion.choices:
        message = choice.message
        delta = chat_pb2.Delta(role=message.role or chat_pb2.ROLE_ASSISTANT)
        if message.HasField("content"):
            delta.content = message.content
        elif message.parts:
            delta.content = "".join(part.text for part in message.parts if part.HasField("text"))
        if message.HasField("reasoning_content"):
            delta.reasoning_content = message.reasoning_content
        if message.HasField("refusal"):
            delta.refusal = message.refusal
        for index, call in enumerate(message.tool_calls):
            delta.tool_calls.add(
                index=index,
                id=call.id,
                type=call.type or "function",
                function=chat_pb2.FunctionCallDelta(name=call.function.name, arguments=call.function.arguments),
            )
        chunks.append(
            chat_pb2.ChatCompletionChunk(**head, choices=[chat_pb2.ChunkChoice(index=choice.index, delta=delta)])
        )
        chunks.append(
            chat_pb2.ChatCompletionChunk(
                **head,
                choices=[
                    chat_pb2.ChunkChoice(index=choice.index, delta=chat_pb2.Delta(), finish_reason=choice.finish_reason)
                ],
            )
        )
    if include_usage:
        chunks.append(chat_pb2.ChatCompletionChunk(**head, usage=completion.usage))
    return chunks


class _ChoiceBuilder:
    """Accumulates one choice's deltas."""

    __slots__ = ("content", "finish", "reasoning", "refusal", "role", "tools")

    def __init__(self) -> None:
        self.role: int = chat_pb2.ROLE_UNSPECIFIED
        self.content: list[str] | None = None
        self.reasoning: list[str] | None = None
        self.refusal: list[str] | None = None
        self.tools: dict[int, list[Any]] = {}  # index -> [id, type, name, argument fragments]
        self.finish: int = chat_pb2.FINISH_REASON_UNSPECIFIED

    def feed(self, choice: chat_pb2.ChunkChoice) -> None:
        delta = choice.delta
        if delta.role and not self.role:
            self.role = delta.role
        # None until a fragment arrives, so "no content" (tool calls only) stays distinct from "".
        if delta.HasField("content"):
            self.content = self.content if self.content is not None else []
            self.content.append(delta.content)
        if delta.HasField("reasoning_content"):
            self.reasoning = self.reasoning if self.reasoning is not None else []
            self.reasoning.append(delta.reasoning_content)
        if delta.HasField("refusal"):
            self.refusal = self.refusal if self.refusal is not None else []
            self.refusal.append(delta.refusal)
        for call in delta.tool_calls:
            state = self.tools.setdefault(call.index, ["", "", "", []])
            if call.HasField("id") and not state[0]:
                state[0] = call.id
            if call.HasField("type") and not state[1]:
                state[1] = call.type
            function = call.function
            # The name comes once, in the first fragment; a repeat is not appended.
            if function.HasField("name") and not state[2]:
                state[2] = function.name
            if function.HasField("arguments"):
                state[3].append(function.arguments)
        if choice.finish_reason:
            self.finish = choice.finish_reason

    def build(self, index: int) -> chat_pb2.Choice:
        message = chat_pb2.Message(role=self.role or chat_pb2.ROLE_ASSISTANT)
        if self.content is not None:
            message.content = "".join(self.content)
        if self.reasoning is not None:
            message.reasoning_content = "".join(self.reasoning)
        if self.refusal is not None:
            message.refusal = "".join(self.refusal)
        for position in sorted(self.tools):
            call_id, call_type, name, arguments = self.tools[position]
            message.tool_calls.add(
                id=call_id,
                type=call_type or "function",
                function=chat_pb2.FunctionCall(name=name, arguments="".join(arguments)),
            )
        return chat_pb2.Choice(index=index, message=message, finish_reason=self.finish)


def chunks_to_completion(chunks: Sequence[chat_pb2.ChatCompletionChunk]) -> chat_pb2.ChatCompletion:
    """The whole completion a stream amounts to: deltas joined per choice (tool-call fragments per
    call index), the last finish reason and usage seen, the first id/created/model/fingerprint."""
    completion = chat_pb2.ChatCompletion()
    builders: dict[int, _ChoiceBuilder] = {}
    for chunk in chunks:
        if not completion.id and chunk.id:
            completion.id = chunk.id
        if not completion.created and chunk.created:
            completion.created = chunk.created
        if not completion.model and chunk.model:
            completion.model = chunk.model
        if not completion.system_fingerprint and chunk.system_fingerprint:
            completion.system_fingerprint = chunk.system_fingerprint
        for choice in chunk.choices:
            builder = builders.get(choice.index)
            if builder is None:
                builder = builders[choice.index] = _ChoiceBuilder()
            builder.feed(choice)
        if chunk.HasField("usage"):
            completion.usage.CopyFrom(chunk.usage)
    for index in sorted(builders):
        completion.choices.append(builders[index].build(index))
    return completion
