"""The response cache: keys, namespaces, controls, the three stores, Redis faults, stream replay."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlparse

import pytest
import redis.asyncio as aioredis

from switchyard.type.v1 import chat_pb2, embedding_pb2
from switchyard_router.cache import (
    DualCache,
    LocalCache,
    RedisCache,
    ResponseCache,
    chunks_to_completion,
    completion_to_chunks,
    make_cache,
)
from tests.unit.router.conftest import make_redis_client

try:
    from switchyard_router.settings import CacheSettings
except ImportError:  # settings.py is written alongside; the fields below are its interface

    @dataclass(frozen=True, slots=True)
    class CacheSettings:  # type: ignore[no-redef]
        type: str
        ttl: float
        namespace: str
        default_off: bool
        max_items: int
        shared_namespace: bool


def cache_settings(**overrides: Any) -> CacheSettings:
    fields: dict[str, Any] = {
        "type": "local",
        "ttl": 600.0,
        "namespace": "",
        "default_off": False,
        "max_items": 100,
        "shared_namespace": False,
    }
    fields.update(overrides)
    return CacheSettings(**fields)


def local_cache(**overrides: Any) -> LocalCache:
    return LocalCache(cache_settings(**overrides))


# ------------------------------------------------------------------------------------------- keys


def full_chat_params() -> chat_pb2.ChatCompletionParams:
    """A request with every field set, so each case below changes a field that was present."""
    params = chat_pb2.ChatCompletionParams(
        model="gpt-group",
        messages=[
            chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, content="Be brief."),
            chat_pb2.Message(
                role=chat_pb2.ROLE_USER,
                parts=[
                    chat_pb2.ContentPart(text="What is this?"),
                    chat_pb2.ContentPart(image_url=chat_pb2.ImageUrl(url="https://x/cat.png", detail="low")),
                ],
                name="alice",
            ),
            chat_pb2.Message(
                role=chat_pb2.ROLE_ASSISTANT,
                tool_calls=[
                    chat_pb2.ToolCall(
                        id="call_1", type="function", function=chat_pb2.FunctionCall(name="look", arguments="{}")
                    )
                ],
            ),
            chat_pb2.Message(role=chat_pb2.ROLE_TOOL, content="a cat", tool_call_id="call_1"),
        ],
        temperature=0.5,
        top_p=0.9,
        max_tokens=100,
        max_completion_tokens=200,
        stop=["END"],
        n=1,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        seed=42,
        tools=[chat_pb2.Tool(type="function", function=chat_pb2.FunctionDefinition(name="look", description="Look"))],
        tool_choice=chat_pb2.ToolChoice(mode="auto"),
        parallel_tool_calls=True,
        response_format=chat_pb2.ResponseFormat(type="json_schema"),
        user="end-user-1",
        reasoning_effort="low",
        logprobs=True,
        top_logprobs=2,
    )
    params.tools[0].function.parameters.update({"type": "object", "properties": {"q": {"type": "string"}}})
    params.response_format.json_schema.update({"name": "answer", "schema": {"type": "object"}})
    params.stream_options.include_usage = True
    params.extra.update({"logit_bias": {"50256": -100}, "metadata": {"trace": "t-1"}})
    params.gateway.cache.ttl = 60
    params.gateway.tags.append("prod")
    params.gateway.timeout = 30
    params.gateway.num_retries = 2
    return params


Mutation = Callable[[Any], None]


def _reorder_schema(params: chat_pb2.ChatCompletionParams) -> None:
    function = params.tools[0].function
    function.ClearField("parameters")
    function.parameters.update({"properties": {"q": {"type": "string"}}, "type": "object"})


def _reverse_messages(params: chat_pb2.ChatCompletionParams) -> None:
    reordered = [chat_pb2.Message(**{}) for _ in params.messages]
    for target, source in zip(reordered, reversed(params.messages), strict=True):
        target.CopyFrom(source)
    del params.messages[:]
    params.messages.extend(reordered)


def _set(field: str, value: Any) -> Mutation:
    return lambda p: setattr(p, field, value)


def _clear(field: str) -> Mutation:
    return lambda p: p.ClearField(field)


CHANGES_THE_KEY: list[tuple[str, Mutation]] = [
    ("message-content", lambda p: setattr(p.messages[0], "content", "Be verbose.")),
    ("message-role", lambda p: setattr(p.messages[0], "role", chat_pb2.ROLE_DEVELOPER)),
    ("message-name", lambda p: setattr(p.messages[1], "name", "bob")),
    ("message-part-text", lambda p: setattr(p.messages[1].parts[0], "text", "What is that?")),
    ("message-image-url", lambda p: setattr(p.messages[1].parts[1].image_url, "url", "https://x/dog.png")),
    ("message-image-detail", lambda p: setattr(p.messages[1].parts[1].image_url, "detail", "high")),
    ("message-tool-call-args", lambda p: setattr(p.messages[2].tool_calls[0].function, "arguments", '{"a":1}')),
    ("message-tool-call-id", lambda p: setattr(p.messages[3], "tool_call_id", "call_2")),
    ("message-added", lambda p: p.messages.add(role=chat_pb2.ROLE_USER, content="and?")),
    ("message-removed", lambda p: p.messages.pop()),
    ("message-order", lambda p: _reverse_messages(p)),
    ("temperature", _set("temperature", 0.7)),
    ("temperature-unset", _clear("temperature")),
    ("top-p", _set("top_p", 0.8)),
    ("max-tokens", _set("max_tokens", 101)),
    ("max-completion-tokens", _set("max_completion_tokens", 201)),
    ("stop", lambda p: p.stop.append("STOP")),
    ("n", _set("n", 2)),
    ("presence-penalty", _set("presence_penalty", 0.3)),
    ("frequency-penalty", _set("frequency_penalty", 0.4)),
    ("seed", _set("seed", 43)),
    ("seed-unset", _clear("seed")),
    ("tool-added", lambda p: p.tools.add(type="function", function=chat_pb2.FunctionDefinition(name="other"))),
    ("tool-description", lambda p: setattr(p.tools[0].function, "description", "Look hard")),
    ("tool-schema", lambda p: p.tools[0].function.parameters.update({"required": ["q"]})),
    ("tool-strict", lambda p: setattr(p.tools[0].function, "strict", True)),
    ("tool-choice", lambda p: setattr(p.tool_choice, "function_name", "look")),
    ("parallel-tool-calls", _set("parallel_tool_calls", False)),
    ("response-format", lambda p: setattr(p.response_format, "type", "json_object")),
    ("response-schema", lambda p: p.response_format.json_schema.update({"strict": True})),
    ("reasoning-effort", _set("reasoning_effort", "high")),
    ("logprobs", _set("logprobs", False)),
    ("top-logprobs", _set("top_logprobs", 3)),
    ("extra-value", lambda p: p.extra.update({"logit_bias": {"50256": 100}})),
    ("extra-added", lambda p: p.extra.update({"modalities": ["text"]})),
]

KEEPS_THE_KEY: list[tuple[str, Mutation]] = [
    ("model-name", _set("model", "another-alias")),
    ("stream-options", _clear("stream_options")),
    ("user", _set("user", "end-user-2")),
    ("cache-controls", lambda p: p.gateway.cache.CopyFrom(chat_pb2.CacheControl(no_cache=True, namespace="x"))),
    ("tags", lambda p: p.gateway.tags.append("beta")),
    ("timeout", lambda p: setattr(p.gateway, "timeout", 5)),
    ("num-retries", lambda p: setattr(p.gateway, "num_retries", 0)),
    ("gateway-cleared", _clear("gateway")),
    ("extra-metadata", lambda p: p.extra.update({"metadata": {"trace": "t-2"}})),
    # Schemas are compared as values: JSON key order does not matter.
    ("schema-key-order", lambda p: _reorder_schema(p)),
]


def _key(params: Any, *, kind: str = "chat", group: str = "gpt-group", namespace: str = "team:t1") -> str:
    return local_cache().key(kind, group, params, namespace)


@pytest.mark.parametrize("mutate", [m for _, m in CHANGES_THE_KEY], ids=[n for n, _ in CHANGES_THE_KEY])
def test_every_output_relevant_chat_field_changes_the_key(mutate: Mutation) -> None:
    changed = full_chat_params()
    mutate(changed)
    assert _key(changed) != _key(full_chat_params())


@pytest.mark.parametrize("mutate", [m for _, m in KEEPS_THE_KEY], ids=[n for n, _ in KEEPS_THE_KEY])
def test_stream_user_and_gateway_controls_do_not_change_the_key(mutate: Mutation) -> None:
    changed = full_chat_params()
    mutate(changed)
    assert _key(changed) == _key(full_chat_params())


EMBEDDING_CHANGES: list[tuple[str, Mutation]] = [
    ("input-text", lambda p: p.input.__setitem__(0, "other")),
    ("input-added", lambda p: p.input.append("more")),
    ("dimensions", _set("dimensions", 256)),
    ("extra", lambda p: p.extra.update({"encoding": "x"})),
]
EMBEDDING_SAME: list[tuple[str, Mutation]] = [
    ("user", _set("user", "someone-else")),
    ("gateway", lambda p: p.gateway.cache.CopyFrom(chat_pb2.CacheControl(no_store=True))),
    ("model-name", _set("model", "alias")),
]


def _embedding_params() -> embedding_pb2.EmbeddingParams:
    return embedding_pb2.EmbeddingParams(model="embed", input=["hello", "world"], dimensions=512, user="u")


@pytest.mark.parametrize(
    ("mutate", "same"),
    [(m, False) for _, m in EMBEDDING_CHANGES] + [(m, True) for _, m in EMBEDDING_SAME],
    ids=[n for n, _ in EMBEDDING_CHANGES] + [f"same-{n}" for n, _ in EMBEDDING_SAME],
)
def test_embedding_keys(mutate: Mutation, same: bool) -> None:
    changed = _embedding_params()
    mutate(changed)
    assert (_key(changed, kind="embeddings") == _key(_embedding_params(), kind="embeddings")) is same


def test_group_kind_and_namespace_are_part_of_the_key() -> None:
    base = _key(full_chat_params())
    assert _key(full_chat_params(), group="other-group") != base
    assert _key(full_chat_params(), kind="chat-v2") != base
    assert _key(full_chat_params(), namespace="team:t2") != base
    assert base.startswith("team:t1:") and len(base) == len("team:t1:") + 64


def test_key_leaves_the_request_untouched() -> None:
    params = full_chat_params()
    _key(params)
    assert params == full_chat_params()


def test_key_refuses_other_messages() -> None:
    with pytest.raises(TypeError):
        _key(chat_pb2.Message())


# ------------------------------------------------------------------------------------- namespaces


def test_namespace_is_per_team_else_per_key() -> None:
    cache = local_cache()
    none = chat_pb2.CacheControl()
    assert cache.namespace("team-a", "hash-a", none) == "team:team-a"
    assert cache.namespace("team-b", "hash-a", none) == "team:team-b"
    assert cache.namespace("", "hash-a", none) == "key:hash-a"


def test_request_namespace_stays_inside_the_callers_scope() -> None:
    cache = local_cache()
    docs = chat_pb2.CacheControl(namespace="docs")
    a, b = cache.namespace("team-a", "h1", docs), cache.namespace("team-b", "h2", docs)
    assert a != b
    assert a != cache.namespace("team-a", "h1", chat_pb2.CacheControl())


def test_operator_shared_namespace_is_shared_by_every_team() -> None:
    cache = local_cache(namespace="org", shared_namespace=True)
    none = chat_pb2.CacheControl()
    assert cache.namespace("team-a", "h1", none) == cache.namespace("team-b", "h2", none) == "shared:org"
    assert cache.namespace("", "h3", none) == "shared:org"
    docs = chat_pb2.CacheControl(namespace="docs")
    assert cache.namespace("team-a", "h1", docs) == cache.namespace("team-b", "h2", docs) == "shared:org/docs"


# --------------------------------------------------------------------------------------- controls

CONTROLS: list[tuple[str, bool, chat_pb2.CacheControl, bool, bool]] = [
    # id, default_off, controls, reads, writes
    ("on-plain", False, chat_pb2.CacheControl(), True, True),
    ("on-no-cache", False, chat_pb2.CacheControl(no_cache=True), False, True),
    ("on-no-store", False, chat_pb2.CacheControl(no_store=True), True, False),
    ("on-both", False, chat_pb2.CacheControl(no_cache=True, no_store=True), False, False),
    ("on-ttl-zero", False, chat_pb2.CacheControl(ttl=0), True, False),
    ("off-plain", True, chat_pb2.CacheControl(), False, False),
    ("off-ttl-opts-in", True, chat_pb2.CacheControl(ttl=30), True, True),
    ("off-namespace-opts-in", True, chat_pb2.CacheControl(namespace="n"), True, True),
    ("off-opted-in-no-cache", True, chat_pb2.CacheControl(ttl=30, no_cache=True), False, True),
    ("off-opted-in-no-store", True, chat_pb2.CacheControl(namespace="n", no_store=True), True, False),
]


@pytest.mark.parametrize(
    ("default_off", "controls", "reads", "writes"), [c[1:] for c in CONTROLS], ids=[c[0] for c in CONTROLS]
)
def test_request_controls(default_off: bool, controls: chat_pb2.CacheControl, reads: bool, writes: bool) -> None:
    cache = local_cache(default_off=default_off)
    assert (cache.reads(controls), cache.writes(controls)) == (reads, writes)


def test_ttl_is_the_requests_else_the_configured_one() -> None:
    cache = local_cache(ttl=120.0)
    assert cache.ttl(chat_pb2.CacheControl()) == 120.0
    assert cache.ttl(chat_pb2.CacheControl(ttl=5)) == 5.0


# ------------------------------------------------------------------------------------ local store


async def test_local_get_set_and_expiry() -> None:
    cache = local_cache(ttl=0.05)
    await cache.set("k", b"v", None)
    await cache.set("short", b"s", 0.05)
    await cache.set("long", b"l", 60)
    await cache.set("never", b"n", 0)
    assert await cache.get("k") == b"v"
    assert await cache.get("never") is None
    await asyncio.sleep(0.08)
    assert await cache.get("k") is None
    assert await cache.get("short") is None
    assert await cache.get("long") == b"l"
    assert len(cache) == 1


async def test_local_evicts_the_least_recently_used() -> None:
    cache = local_cache(max_items=2)
    await cache.set("a", b"1", None)
    await cache.set("b", b"2", None)
    assert await cache.get("a") == b"1"  # a is now more recent than b
    await cache.set("c", b"3", None)
    assert await cache.get("b") is None
    assert await cache.get("a") == b"1"
    assert await cache.get("c") == b"3"


# ------------------------------------------------------------------------------------ make_cache


def test_make_cache_builds_what_the_settings_ask() -> None:
    client = aioredis.Redis()  # never connected: building a cache makes no Redis call
    assert make_cache(SimpleNamespace(cache=None), client) is None  # type: ignore[arg-type]
    assert type(make_cache(SimpleNamespace(cache=cache_settings(type="local")), None)) is LocalCache  # type: ignore[arg-type]
    assert type(make_cache(SimpleNamespace(cache=cache_settings(type="redis")), client)) is RedisCache  # type: ignore[arg-type]
    assert type(make_cache(SimpleNamespace(cache=cache_settings(type="dual")), client)) is DualCache  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "with_redis"), [("redis", False), ("dual", False), ("redis-semantic", True)])
def test_make_cache_refuses_what_it_cannot_serve(kind: str, with_redis: bool) -> None:
    client = aioredis.Redis() if with_redis else None
    with pytest.raises(ValueError, match=kind):
        make_cache(SimpleNamespace(cache=cache_settings(type=kind)), client)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ redis store


async def test_redis_entries_are_shared_between_replicas(redis_url: str, redis_client: Any, redis_prefix: str) -> None:
    replica_a = RedisCache(cache_settings(type="redis"), make_redis_client(redis_url), redis_prefix)
    replica_b = RedisCache(cache_settings(type="redis"), make_redis_client(redis_url), redis_prefix)
    await replica_a.set("team:t:abc", b"answer", 30)
    assert await replica_b.get("team:t:abc") == b"answer"
    assert await replica_b.get("team:t:missing") is None
    assert 29_000 < await redis_client.pttl(f"{redis_prefix}team:t:abc") <= 30_000


async def test_redis_ttl_defaults_and_expiry(redis_client: Any, redis_prefix: str) -> None:
    cache = RedisCache(cache_settings(type="redis", ttl=45), redis_client, redis_prefix)
    await cache.set("default", b"v", None)
    await cache.set("brief", b"v", 0.05)
    await cache.set("none", b"v", 0)
    assert 44_000 < await redis_client.pttl(f"{redis_prefix}default") <= 45_000
    assert await redis_client.exists(f"{redis_prefix}none") == 0
    await asyncio.sleep(0.1)
    assert await cache.get("brief") is None


async def test_dual_reads_local_first_and_fills_from_redis(
    redis_url: str, redis_client: Any, redis_prefix: str
) -> None:
    writer = RedisCache(cache_settings(type="redis"), make_redis_client(redis_url), redis_prefix)
    dual = DualCache(cache_settings(type="dual", ttl=600), redis_client, redis_prefix)
    await writer.set("k", b"from-another-replica", 20)
    assert dual.local.get_now("k") is None
    assert await dual.get("k") == b"from-another-replica"
    # Filled locally: the entry is served even once Redis no longer has it...
    await redis_client.delete(f"{redis_prefix}k")
    assert await dual.get("k") == b"from-another-replica"
    # ...for no longer than Redis would have kept it.
    expires, _ = dual.local._entries["k"]
    assert 19 < expires - time.monotonic() <= 20


async def test_dual_writes_both(redis_client: Any, redis_prefix: str) -> None:
    dual = DualCache(cache_settings(type="dual"), redis_client, redis_prefix)
    await dual.set("k", b"v", 10)
    assert dual.local.get_now("k") == b"v"
    assert await redis_client.get(f"{redis_prefix}k") == b"v"


class FlakyProxy:
    """A TCP proxy in front of Redis that can black-hole: connections are accepted, nothing answers."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.up = True
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
            try:
                await asyncio.gather(
                    self._pipe(reader, upstream_writer, to_redis=True), self._pipe(upstream_reader, writer, False)
                )
            finally:
                upstream_writer.close()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self.tasks.discard(task)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, to_redis: bool) -> None:
        while data := await source.read(65536):
            if to_redis and not self.up:
                continue  # swallowed: the client waits for an answer that never comes
            sink.write(data)
            await sink.drain()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def flaky_redis(redis_url: str) -> AsyncIterator[tuple[FlakyProxy, str]]:
    parsed = urlparse(redis_url)
    proxy = FlakyProxy(parsed.hostname or "127.0.0.1", parsed.port or 6379)
    url = await proxy.start()
    try:
        yield proxy, url
    finally:
        await proxy.close()


def _unbounded_client(url: str) -> aioredis.Redis:
    """A client with redis-py's default (long) timeouts: the cache must bound the wait itself."""
    return aioredis.Redis.from_url(url)


@pytest.mark.parametrize("store", [RedisCache, DualCache], ids=["redis", "dual"])
async def test_hanging_redis_is_a_quick_miss_and_recovers(
    store: type[ResponseCache],
    flaky_redis: tuple[FlakyProxy, str],
    redis_prefix: str,
    redis_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy, url = flaky_redis
    client = _unbounded_client(url)
    cache = store(cache_settings(type="redis"), client, redis_prefix, probe_interval=0.2)  # type: ignore[call-arg]
    await redis_client.set(f"{redis_prefix}k", b"v", px=60_000)
    assert await cache.get("k") == b"v"
    if isinstance(cache, DualCache):
        cache.local._entries.clear()

    proxy.up = False
    caplog.set_level(logging.WARNING, logger="switchyard.redis")
    started = time.monotonic()
    assert await cache.get("k") is None
    await cache.set("other", b"x", 10)
    assert await cache.get("k") is None  # skipped at once: Redis is left alone for a while
    assert time.monotonic() - started < 0.35
    assert len([r for r in caplog.records if "response cache" in r.getMessage()]) == 1

    proxy.up = True
    await asyncio.sleep(0.25)
    for _ in range(20):  # the first call after the pause may still land on a connection the hang poisoned
        if await cache.get("k") == b"v":
            break
        await asyncio.sleep(0.25)
    else:
        pytest.fail("the cache did not recover after Redis came back")
    await client.aclose()


@pytest.mark.parametrize("store", [RedisCache, DualCache], ids=["redis", "dual"])
async def test_unreachable_redis_is_a_quick_miss(store: type[ResponseCache], unused_tcp_port: int) -> None:
    client = _unbounded_client(f"redis://127.0.0.1:{unused_tcp_port}/0")
    cache = store(cache_settings(type="redis"), client)  # type: ignore[call-arg]
    started = time.monotonic()
    await cache.set("k", b"v", 10)
    assert await cache.get("never-written") is None
    assert time.monotonic() - started < 0.3
    await client.aclose()


# -------------------------------------------------------------------------------- stream replay


def rich_completion() -> chat_pb2.ChatCompletion:
    return chat_pb2.ChatCompletion(
        id="chatcmpl-1",
        created=1_700_000_000,
        model="gpt-4o-2024",
        system_fingerprint="fp_1",
        choices=[
            chat_pb2.Choice(
                index=0,
                message=chat_pb2.Message(
                    role=chat_pb2.ROLE_ASSISTANT, content="Let me look.", reasoning_content="thinking"
                ),
                finish_reason=chat_pb2.FINISH_REASON_STOP,
            ),
            chat_pb2.Choice(
                index=1,
                message=chat_pb2.Message(
                    role=chat_pb2.ROLE_ASSISTANT,
                    tool_calls=[
                        chat_pb2.ToolCall(
                            id="call_a",
                            type="function",
                            function=chat_pb2.FunctionCall(name="search", arguments='{"q": "cats"}'),
                        ),
                        chat_pb2.ToolCall(
                            id="call_b",
                            type="function",
                            function=chat_pb2.FunctionCall(name="fetch", arguments='{"url": "x"}'),
                        ),
                    ],
                ),
                finish_reason=chat_pb2.FINISH_REASON_TOOL_CALLS,
            ),
            chat_pb2.Choice(
                index=2,
                message=chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, content="", refusal="I can't."),
                finish_reason=chat_pb2.FINISH_REASON_CONTENT_FILTER,
            ),
        ],
        usage=chat_pb2.Usage(prompt_tokens=11, completion_tokens=22, total_tokens=33, cached_tokens=4),
    )


def test_round_trip_with_usage() -> None:
    original = rich_completion()
    chunks = completion_to_chunks(original, include_usage=True)
    assert chunks_to_completion(chunks) == original
    usage_chunk = chunks[-1]
    assert not usage_chunk.choices and usage_chunk.usage == original.usage
    assert all(c.id == "chatcmpl-1" and c.model == "gpt-4o-2024" for c in chunks)
    assert all(not c.HasField("usage") for c in chunks[:-1])


def test_round_trip_without_usage_has_no_usage_chunk() -> None:
    original = rich_completion()
    chunks = completion_to_chunks(original, include_usage=False)
    assert all(not c.HasField("usage") and c.choices for c in chunks)
    rebuilt = chunks_to_completion(chunks)
    assert not rebuilt.HasField("usage")
    original.ClearField("usage")
    assert rebuilt == original


def test_replayed_stream_looks_like_a_provider_stream() -> None:
    chunks = completion_to_chunks(rich_completion(), include_usage=False)
    firsts = [c.choices[0] for c in chunks if c.choices[0].delta.role]
    assert [c.index for c in firsts] == [0, 1, 2]
    finishes = [c.choices[0] for c in chunks if c.choices[0].finish_reason]
    assert [(c.index, c.delta == chat_pb2.Delta()) for c in finishes] == [(0, True), (1, True), (2, True)]
    tool_deltas = chunks[2].choices[0].delta.tool_calls
    assert [(t.index, t.id, t.function.name) for t in tool_deltas] == [(0, "call_a", "search"), (1, "call_b", "fetch")]


def _chunk(choices: list[chat_pb2.ChunkChoice], usage: chat_pb2.Usage | None = None) -> chat_pb2.ChatCompletionChunk:
    chunk = chat_pb2.ChatCompletionChunk(id="c-9", created=5, model="m", choices=choices)
    if usage is not None:
        chunk.usage.CopyFrom(usage)
    return chunk


def _tool_delta(index: int, **fields: Any) -> chat_pb2.ChunkChoice:
    call = chat_pb2.ToolCallDelta(index=index)
    for name in ("id", "type"):
        if name in fields:
            setattr(call, name, fields[name])
    if "name" in fields:
        call.function.name = fields["name"]
    if "arguments" in fields:
        call.function.arguments = fields["arguments"]
    return chat_pb2.ChunkChoice(index=0, delta=chat_pb2.Delta(tool_calls=[call]))


def test_fragmented_provider_stream_is_rebuilt() -> None:
    usage = chat_pb2.Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7)
    chunks = [
        _chunk([chat_pb2.ChunkChoice(index=0, delta=chat_pb2.Delta(role=chat_pb2.ROLE_ASSISTANT))]),
        _tool_delta(0, id="call_1", type="function", name="get_weather", arguments=""),
        _tool_delta(0, arguments='{"city":'),
        _tool_delta(1, id="call_2", type="function", name="get_time", arguments='{"tz":"UTC"}'),
        _tool_delta(0, arguments=' "Paris"}'),
        _chunk(
            [chat_pb2.ChunkChoice(index=0, delta=chat_pb2.Delta(), finish_reason=chat_pb2.FINISH_REASON_TOOL_CALLS)]
        ),
        _chunk([], usage),
    ]
    chunks = [c if isinstance(c, chat_pb2.ChatCompletionChunk) else _chunk([c]) for c in chunks]
    rebuilt = chunks_to_completion(chunks)
    assert rebuilt == chat_pb2.ChatCompletion(
        id="c-9",
        created=5,
        model="m",
        choices=[
            chat_pb2.Choice(
                index=0,
                message=chat_pb2.Message(
                    role=chat_pb2.ROLE_ASSISTANT,
                    tool_calls=[
                        chat_pb2.ToolCall(
                            id="call_1",
                            type="function",
                            function=chat_pb2.FunctionCall(name="get_weather", arguments='{"city": "Paris"}'),
                        ),
                        chat_pb2.ToolCall(
                            id="call_2",
                            type="function",
                            function=chat_pb2.FunctionCall(name="get_time", arguments='{"tz":"UTC"}'),
                        ),
                    ],
                ),
                finish_reason=chat_pb2.FINISH_REASON_TOOL_CALLS,
            )
        ],
        usage=usage,
    )
    assert not rebuilt.choices[0].message.HasField("content")


def test_text_fragments_are_joined() -> None:
    deltas = [chat_pb2.Delta(role=chat_pb2.ROLE_ASSISTANT, content="")] + [
        chat_pb2.Delta(content=part) for part in ("Hel", "lo", ", world")
    ]
    chunks = [_chunk([chat_pb2.ChunkChoice(index=0, delta=d)]) for d in deltas]
    chunks.append(_chunk([chat_pb2.ChunkChoice(index=0, finish_reason=chat_pb2.FINISH_REASON_STOP)]))
    choice = chunks_to_completion(chunks).choices[0]
    assert (choice.message.content, choice.finish_reason) == ("Hello, world", chat_pb2.FINISH_REASON_STOP)
