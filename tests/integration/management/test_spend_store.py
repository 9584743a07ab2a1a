"""SpendStore on real databases: migrations, idempotent batched writes, newest-first pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from switchyard.auth.v1 import auth_service_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_management.database import VERSION_TABLE, create_engine, migrate, resolve_url
from switchyard_management.errors import DATABASE_UNAVAILABLE_MESSAGE
from switchyard_management.models import Base
from switchyard_management.store import SpendFilters, SpendStore

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def usage(
    request_id: str, *, at: datetime = T0, key_hash: str = "hash-a", cost: float = 0.25, **fields: object
) -> auth_service_pb2.UsageRecord:
    record = auth_service_pb2.UsageRecord(
        request_id=request_id,
        key_hash=key_hash,
        team_id="team-1",
        user_id="user-1",
        end_user="end-user-1",
        model_group="gpt-4o",
        deployment_id="dep-1",
        model="gpt-4o-2024-08-06",
        provider="openai",
        prompt_tokens=12,
        completion_tokens=30,
        cost=cost,
        latency_ms=812.5,
        status="success",
        operation="chat",
    )
    for name, value in fields.items():
        setattr(record, name, value)
    record.start_time.FromDatetime(at)
    record.end_time.FromDatetime(at + timedelta(milliseconds=812))
    return record


@pytest.fixture
async def store(database_url: str, tmp_path: Path) -> AsyncIterator[SpendStore]:
    engine = create_engine(resolve_url(database_url, tmp_path))
    await migrate(engine)
    yield SpendStore(engine)
    await engine.dispose()


async def all_ids(store: SpendStore, filters: SpendFilters | None = None) -> list[str]:
    """Every matching request id, newest first, walking all pages."""
    ids: list[str] = []
    token = ""
    while True:
        page = await store.list(filters or SpendFilters(), page_size=1000, page_token=token)
        ids.extend(log.request_id for log in page.logs)
        token = page.next_page_token
        if not token:
            return ids


def _schema_state(connection: Connection) -> tuple[set[str], list[object]]:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE, "compare_type": True})
    return set(inspect(connection).get_table_names()), compare_metadata(context, Base.metadata)


async def test_migrate_creates_the_schema_of_the_models_and_is_idempotent(database_url: str, tmp_path: Path) -> None:
    engine = create_engine(resolve_url(database_url, tmp_path))
    try:
        await migrate(engine)
        await migrate(engine)  # a restart finds nothing to do
        async with engine.connect() as connection:
            tables, differences = await connection.run_sync(_schema_state)
            version = (await connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    finally:
        await engine.dispose()
    assert {"spend_logs", "teams", "users", "team_memberships", "end_users", VERSION_TABLE} <= tables
    assert differences == []  # the migrations build exactly what models.py declares
    assert version == ["0005"]


async def test_write_stores_every_field(store: SpendStore) -> None:
    record = usage("req-1", cost=0.000123456789, cache_hit=True)

    assert await store.write([record]) == (1, 0)

    (log,) = (await store.list(SpendFilters(request_id="req-1"))).logs
    assert log.request_id == "req-1"
    assert (log.key_hash, log.team_id, log.user_id, log.end_user) == (
        "hash-a",
        "team-1",
        "user-1",
        "end-user-1",
    )
    assert (log.model_group, log.deployment_id, log.model, log.provider) == (
        "gpt-4o",
        "dep-1",
        "gpt-4o-2024-08-06",
        "openai",
    )
    assert (log.prompt_tokens, log.completion_tokens, log.total_tokens) == (12, 30, 42)
    assert log.cost == pytest.approx(0.000123456789, abs=1e-12)
    assert log.latency_ms == 812.5
    assert (log.status, log.operation, log.cache_hit) == ("success", "chat", True)
    assert log.start_time.ToDatetime(tzinfo=UTC) == T0
    assert log.end_time.ToDatetime(tzinfo=UTC) == T0 + timedelta(milliseconds=812)


async def test_writing_the_same_batch_twice_stores_it_once(store: SpendStore) -> None:
    batch = [usage(f"req-{i}") for i in range(5)]

    assert await store.write(batch) == (5, 0)
    assert await store.write(batch) == (0, 5)
    assert await store.write([usage("req-4"), usage("req-5")]) == (1, 1)

    assert sorted(await all_ids(store)) == [f"req-{i}" for i in range(6)]


async def test_duplicates_inside_one_batch_count_once_and_the_first_wins(store: SpendStore) -> None:
    batch = [usage("a", cost=1.0), usage("b"), usage("a", cost=2.0), usage("c"), usage("b")]

    assert await store.write(batch) == (3, 2)

    (first,) = (await store.list(SpendFilters(request_id="a"))).logs
    assert first.cost == 1.0
    assert sorted(await all_ids(store)) == ["a", "b", "c"]


async def test_an_empty_batch_writes_nothing(store: SpendStore) -> None:
    assert await store.write([]) == (0, 0)


async def test_a_large_batch_spans_several_statements(store: SpendStore) -> None:
    batch = [usage(f"bulk-{i:05d}", at=T0 + timedelta(microseconds=i)) for i in range(2500)]

    assert await store.write(batch[:1200]) == (1200, 0)
    assert await store.write(batch) == (1300, 1200)

    assert await all_ids(store) == [record.request_id for record in reversed(batch)]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"request_id": ""}, "records[1].request_id"),
        ({"cost": -0.01}, "records[1].cost"),
        ({"cost": float("nan")}, "records[1].cost"),
        ({"cost": float("inf")}, "records[1].cost"),
        ({"prompt_tokens": -1}, "records[1].prompt_tokens"),
        ({"latency_ms": float("nan")}, "records[1].latency_ms"),
        ({"clear": "start_time"}, "records[1].start_time"),
        ({"clear": "end_time"}, "records[1].end_time"),
    ],
    ids=[
        "no-request-id",
        "negative-cost",
        "nan-cost",
        "infinite-cost",
        "negative-tokens",
        "nan-latency",
        "no-start-time",
        "no-end-time",
    ],
)
async def test_an_invalid_record_rejects_the_whole_batch(store: SpendStore, change: dict, param: str) -> None:
    bad = usage("bad")
    if "clear" in change:
        bad.ClearField(change["clear"])
    else:
        for name, value in change.items():
            setattr(bad, name, value)

    with pytest.raises(SwitchyardError) as caught:
        await store.write([usage("good"), bad])

    assert (caught.value.reason, caught.value.param) == ("invalid_request", param)
    assert await all_ids(store) == []


async def test_pages_list_newest_first_without_gaps_or_repeats(store: SpendStore) -> None:
    # Ties on start_time are ordered by request id, so every row has one place in the order.
    times = {
        "r1": T0,
        "r2": T0 + timedelta(seconds=1),
        "r3": T0 + timedelta(seconds=1),
        "r4": T0 + timedelta(seconds=2),
        "r5": T0 - timedelta(days=1),
        "r6": T0 + timedelta(seconds=1),
        "r7": T0 + timedelta(microseconds=1),
    }
    await store.write([usage(request_id, at=at) for request_id, at in times.items()])

    pages: list[list[str]] = []
    token = ""
    while True:
        page = await store.list(SpendFilters(), page_size=3, page_token=token)
        pages.append([log.request_id for log in page.logs])
        token = page.next_page_token
        if not token:
            break

    assert pages == [["r4", "r6", "r3"], ["r2", "r7", "r1"], ["r5"]]


async def test_rows_written_between_pages_do_not_shift_the_next_page(store: SpendStore) -> None:
    await store.write([usage(f"r{i}", at=T0 + timedelta(seconds=i)) for i in range(4)])
    first = await store.list(SpendFilters(), page_size=2)

    await store.write([usage("newest", at=T0 + timedelta(hours=1))])
    second = await store.list(SpendFilters(), page_size=2, page_token=first.next_page_token)

    assert [log.request_id for log in first.logs] == ["r3", "r2"]
    assert [log.request_id for log in second.logs] == ["r1", "r0"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (SpendFilters(), ["b2", "a2", "b1", "a1"]),
        (SpendFilters(key_hash="hash-a"), ["a2", "a1"]),
        (SpendFilters(request_id="b1"), ["b1"]),
        (SpendFilters(request_id="missing"), []),
        (SpendFilters(start_time=T0 + timedelta(minutes=1)), ["b2", "a2", "b1"]),
        (SpendFilters(end_time=T0 + timedelta(minutes=1)), ["a1"]),
        (
            SpendFilters(start_time=T0 + timedelta(minutes=1), end_time=T0 + timedelta(minutes=3)),
            ["a2", "b1"],
        ),
        (SpendFilters(key_hash="hash-b", start_time=T0 + timedelta(minutes=2)), ["b2"]),
    ],
    ids=[
        "all",
        "key-hash",
        "request-id",
        "unknown-request-id",
        "since",
        "before",
        "time-range",
        "key-and-since",
    ],
)
async def test_filters(store: SpendStore, filters: SpendFilters, expected: list[str]) -> None:
    await store.write(
        [
            usage("a1", key_hash="hash-a", at=T0),
            usage("b1", key_hash="hash-b", at=T0 + timedelta(minutes=1)),
            usage("a2", key_hash="hash-a", at=T0 + timedelta(minutes=2)),
            usage("b2", key_hash="hash-b", at=T0 + timedelta(minutes=3)),
        ]
    )

    assert await all_ids(store, filters) == expected


async def test_filters_apply_on_every_page(store: SpendStore) -> None:
    await store.write([usage(f"r{i}", key_hash=f"hash-{i % 2}", at=T0 + timedelta(seconds=i)) for i in range(7)])
    filters = SpendFilters(key_hash="hash-1")

    first = await store.list(filters, page_size=2)
    second = await store.list(filters, page_size=2, page_token=first.next_page_token)

    assert [log.request_id for log in first.logs + second.logs] == ["r5", "r3", "r1"]
    assert second.next_page_token == ""


@pytest.mark.parametrize(
    ("page_size", "page_token", "param"),
    [
        (-1, "", "page_size"),
        (1001, "", "page_size"),
        (10, "not a token", "page_token"),
        (10, "WzEsMiwzXQ", "page_token"),  # well-formed base64 of [1,2,3]
    ],
    ids=["negative-size", "size-over-max", "garbage-token", "wrong-shape-token"],
)
async def test_invalid_paging_is_an_invalid_request(
    store: SpendStore, page_size: int, page_token: str, param: str
) -> None:
    with pytest.raises(SwitchyardError) as caught:
        await store.list(SpendFilters(), page_size=page_size, page_token=page_token)

    assert (caught.value.reason, caught.value.param) == ("invalid_request", param)


async def test_a_page_token_only_continues_the_listing_it_came_from(store: SpendStore) -> None:
    await store.write([usage(f"r{i}", at=T0 + timedelta(seconds=i)) for i in range(3)])
    token = (await store.list(SpendFilters(key_hash="hash-a"), page_size=1)).next_page_token

    with pytest.raises(SwitchyardError) as caught:
        await store.list(SpendFilters(key_hash="hash-b"), page_size=1, page_token=token)

    assert (caught.value.reason, caught.value.param) == ("invalid_request", "page_token")


async def test_database_failures_are_service_unavailable_and_reveal_no_sql(database_url: str, tmp_path: Path) -> None:
    engine = create_engine(resolve_url(database_url, tmp_path))  # never migrated: no spend_logs table
    store = SpendStore(engine)
    try:
        assert await store.ping() is True
        for attempt in (store.write([usage("x")]), store.list(SpendFilters())):
            with pytest.raises(SwitchyardError) as caught:
                await attempt
            assert caught.value.reason == "service_unavailable"
            assert caught.value.message == DATABASE_UNAVAILABLE_MESSAGE
            assert store.healthy is False
    finally:
        await engine.dispose()


async def test_an_unreachable_server_is_unhealthy_and_its_password_never_shows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Port 1 on loopback refuses connections at once; no server is needed.
    url = resolve_url("postgresql://switchyard:s3cret-pass@127.0.0.1:1/spend", tmp_path)
    engine = create_engine(url)
    store = SpendStore(engine)
    try:
        assert await store.ping() is False
        with pytest.raises(SwitchyardError) as caught:
            await store.write([usage("x")])
    finally:
        await engine.dispose()

    assert caught.value.reason == "service_unavailable"
    assert "s3cret-pass" not in caught.value.message and "127.0.0.1" not in caught.value.message
    assert "writing spend logs failed" in caplog.text
    assert "s3cret-pass" not in caplog.text


@pytest.mark.postgres
async def test_a_prisma_schema_parameter_puts_the_tables_in_that_schema(postgres_url: str, tmp_path: Path) -> None:
    engine = create_engine(resolve_url(postgres_url, tmp_path))
    async with engine.begin() as connection:
        await connection.exec_driver_sql("CREATE SCHEMA switchyard")
    await engine.dispose()

    engine = create_engine(resolve_url(f"{postgres_url}?schema=switchyard", tmp_path))
    try:
        await migrate(engine)
        async with engine.connect() as connection:
            schemas = (
                (
                    await connection.exec_driver_sql(
                        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'spend_logs'"
                    )
                )
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()

    assert schemas == ["switchyard"]
