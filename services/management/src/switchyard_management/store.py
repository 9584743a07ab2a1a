"""Spend logs: idempotent batched writes and newest-first keyset listing.

Writes take the ``UsageRecord`` messages auth forwards and store each as one ``spend_logs`` row,
keyed by ``request_id``. A record whose request id is already stored (a retried delivery, or the
same id twice in one batch) is skipped and counted as a duplicate, so delivering a batch any number
of times stores it once.

Listing is newest first by ``(start_time, request_id)``. Pages continue from the last row returned
(keyset pagination), so a page costs the same at any depth and rows written meanwhile neither
repeat nor shift the next page. The page token is opaque to callers: it encodes that position and
a fingerprint of the filters, and is only valid with the same filters.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import String, Table, literal, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from switchyard.auth.v1 import auth_service_pb2
from switchyard.management.v1 import management_service_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_management.budgets import add_spend
from switchyard_management.daily_spend import add_daily_spend
from switchyard_management.errors import database_errors
from switchyard_management.models import SpendLog, UTCDateTime

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
PING_TIMEOUT = 5.0
"""Seconds a health check may take before the database counts as unreachable."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TABLE = cast(Table, SpendLog.__table__)
_COLUMNS = _TABLE.c
# Columns copied verbatim between UsageRecord and the row (times, totals and cost need work).
_TEXT_FIELDS = (
    "key_hash",
    "team_id",
    "user_id",
    "end_user",
    "organization_id",
    "model_group",
    "deployment_id",
    "model",
    "provider",
    "status",
    "operation",
)


@dataclass(frozen=True, slots=True)
class SpendFilters:
    """Which rows to list; empty fields do not filter."""

    key_hash: str = ""
    request_id: str = ""
    start_time: datetime | None = None
    """Rows that started at or after this instant (timezone-aware)."""
    end_time: datetime | None = None
    """Rows that started before this instant (timezone-aware)."""

    def fingerprint(self) -> str:
        """A short digest that ties a page token to these filters."""
        times = (_micros_or_none(self.start_time), _micros_or_none(self.end_time))
        parts = (self.key_hash, self.request_id, *times)
        return hashlib.sha256(orjson.dumps(parts)).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class SpendPage:
    """One page of spend rows, newest first."""

    logs: list[management_service_pb2.SpendLog]
    next_page_token: str
    """Pass back to get the next page; empty on the last page."""


class SpendStore:
    """Spend rows in the system of record. One per process, shared by all tasks.

    Every database failure surfaces as ``SwitchyardError("service_unavailable")``; invalid input as
    ``invalid_request`` naming the field. :attr:`healthy` tells whether the last database round trip
    succeeded.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = _insert_new_rows(engine.dialect.name)
        self.healthy = False

    def _observe(self, ok: bool) -> None:
        self.healthy = ok

    async def ping(self) -> bool:
        """One round trip to the database, bounded by :data:`PING_TIMEOUT`; updates :attr:`healthy`."""
        try:
            async with asyncio.timeout(PING_TIMEOUT):
                async with database_errors("checking the database", self._observe):
                    async with self._engine.connect() as conn:
                        await conn.execute(text("SELECT 1"))
        except SwitchyardError:
            return False
        except TimeoutError:
            self._observe(False)
            return False
        return True

    async def write(self, records: Sequence[auth_service_pb2.UsageRecord]) -> tuple[int, int]:
        """Store ``records``; return ``(inserted, duplicates)``, which add up to ``len(records)``.

        All or nothing: the batch is validated first (``invalid_request`` with ``param`` such as
        ``records[3].cost``), then written in one transaction, together with what the rows
        actually inserted add up to: their keys' spend (:func:`~switchyard_management.budgets.add_spend`)
        and the daily aggregates (:mod:`switchyard_management.daily_spend`).
        """
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for index, record in enumerate(records):
            row = _row(record, index)
            # The first occurrence wins; later ones in the same batch are duplicates like any other.
            if row["request_id"] not in seen:
                seen.add(row["request_id"])
                rows.append(row)
        if not rows:
            return 0, 0
        async with database_errors("writing spend logs", self._observe), self._engine.begin() as conn:
            new_ids = set((await conn.execute(self._insert, rows)).scalars().all())
            new_rows = [row for row in rows if row["request_id"] in new_ids]
            await add_spend(conn, new_rows)
            await add_daily_spend(conn, new_rows)
        inserted = len(new_ids)
        return inserted, len(records) - inserted

    async def list(self, filters: SpendFilters, page_size: int = 0, page_token: str = "") -> SpendPage:
        """One page of rows matching ``filters``, newest first.

        ``page_size`` 0 means :data:`DEFAULT_PAGE_SIZE`; it must be at most :data:`MAX_PAGE_SIZE`.
        ``page_token`` is empty for the first page, else a ``next_page_token`` from a previous call
        with the same filters.
        """
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise _invalid("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
        size = page_size or DEFAULT_PAGE_SIZE
        fingerprint = filters.fingerprint()
        newest_first = (_COLUMNS.start_time.desc(), _COLUMNS.request_id.desc())
        query = select(_TABLE).order_by(*newest_first).limit(size + 1)
        if filters.key_hash:
            query = query.where(_COLUMNS.key_hash == filters.key_hash)
        if filters.request_id:
            query = query.where(_COLUMNS.request_id == filters.request_id)
        if filters.start_time is not None:
            query = query.where(_COLUMNS.start_time >= filters.start_time)
        if filters.end_time is not None:
            query = query.where(_COLUMNS.start_time < filters.end_time)
        if page_token:
            after_time, after_id = decode_page_token(page_token, fingerprint)
            # Row-value comparison: one index range scan on (start_time, request_id).
            query = query.where(
                tuple_(_COLUMNS.start_time, _COLUMNS.request_id)
                < tuple_(literal(after_time, UTCDateTime()), literal(after_id, String()))
            )
        async with database_errors("listing spend logs", self._observe), self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        logs = [_spend_log(row._mapping) for row in rows[:size]]
        token = ""
        if len(rows) > size:
            last = rows[size - 1]
            token = encode_page_token(last.start_time, last.request_id, fingerprint)
        return SpendPage(logs=logs, next_page_token=token)


def _insert_new_rows(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (request_id) DO NOTHING RETURNING request_id, for ``dialect``.

    Built once per store: SQLAlchemy caches its compiled form. Executed with a list of rows, it is
    sent as multi-row ``VALUES (...), (...)`` statements ("insertmanyvalues": up to 1000 rows and
    the driver's parameter limit per statement), and RETURNING yields exactly the rows that were new.
    """
    if dialect == "postgresql":
        statement: Any = postgresql.insert(_TABLE)
    elif dialect == "sqlite":
        statement = sqlite.insert(_TABLE)
    else:
        raise ValueError(f"spend logs need PostgreSQL or SQLite, not {dialect}")
    statement = statement.on_conflict_do_nothing(index_elements=[_COLUMNS.request_id])
    return statement.returning(_COLUMNS.request_id)


def _invalid(field: str, problem: str) -> SwitchyardError:
    return SwitchyardError("invalid_request", f"{field} {problem}.", param=field)


def _row(record: auth_service_pb2.UsageRecord, index: int) -> dict[str, Any]:
    where = f"records[{index}]"
    if not record.request_id:
        raise _invalid(f"{where}.request_id", "is required")
    if not math.isfinite(record.cost) or record.cost < 0:
        raise _invalid(f"{where}.cost", "must be a non-negative number")
    for name in ("prompt_tokens", "completion_tokens"):
        if getattr(record, name) < 0:
            raise _invalid(f"{where}.{name}", "must not be negative")
    if not math.isfinite(record.latency_ms):
        raise _invalid(f"{where}.latency_ms", "must be a number")
    times = {name: _time(record, name, where) for name in ("start_time", "end_time")}
    row: dict[str, Any] = {name: getattr(record, name) for name in _TEXT_FIELDS}
    row.update(
        request_id=record.request_id,
        prompt_tokens=record.prompt_tokens,
        completion_tokens=record.completion_tokens,
        total_tokens=record.prompt_tokens + record.completion_tokens,
        cost=record.cost,
        latency_ms=record.latency_ms,
        cache_hit=record.cache_hit,
        **times,
    )
    return row


def _time(record: auth_service_pb2.UsageRecord, name: str, where: str) -> datetime:
    if record.HasField(name):
        try:
            return getattr(record, name).ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError):
            raise _invalid(f"{where}.{name}", "is out of range") from None
    raise _invalid(f"{where}.{name}", "is required")


def _spend_log(row: Any) -> management_service_pb2.SpendLog:
    log = management_service_pb2.SpendLog(
        request_id=row["request_id"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        total_tokens=row["total_tokens"],
        cost=row["cost"],
        latency_ms=row["latency_ms"],
        cache_hit=row["cache_hit"],
        **{name: row[name] for name in _TEXT_FIELDS},
    )
    set_timestamp(log.start_time, row["start_time"])
    set_timestamp(log.end_time, row["end_time"])
    return log


def _micros(value: datetime) -> int:
    # Integer arithmetic: datetime.timestamp() is a float and loses microseconds for today's dates.
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _micros_or_none(value: datetime | None) -> int | None:
    return None if value is None else _micros(value)


def set_timestamp(target: Any, value: datetime) -> None:
    seconds, micros = divmod(_micros(value), 1_000_000)
    target.seconds = seconds
    target.nanos = micros * 1000


def encode_page_token(start_time: datetime, request_id: str, fingerprint: str) -> str:
    payload = orjson.dumps([_micros(start_time), request_id, fingerprint])
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def decode_page_token(token: str, fingerprint: str) -> tuple[datetime, str]:
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        micros, after_id, issued_for = payload
        if not (isinstance(micros, int) and isinstance(after_id, str) and isinstance(issued_for, str)):
            raise ValueError("malformed page token")
        after = _EPOCH + timedelta(microseconds=micros)
    except (ValueError, TypeError, OverflowError, binascii.Error):
        raise _invalid("page_token", "is not valid") from None
    if issued_for != fingerprint:
        raise _invalid("page_token", "was issued for different filters")
    return after, after_id
