"""Daily spend aggregates and the spend report built on them.

``daily_spend`` holds one row per UTC day, key, team, user, end user and model group. Every spend
row :class:`~switchyard_management.store.SpendStore` inserts is added to its day's row in the
same transaction (:func:`add_daily_spend`), so the aggregates always equal the spend log; a
duplicate delivery inserts no spend row and therefore adds nothing.

Within a batch the rows are summed per aggregate first (PostgreSQL refuses to update one row
twice in one ``INSERT ... ON CONFLICT``), then upserted in a fixed order so that concurrent
batches lock shared aggregates in the same order and cannot deadlock.

:class:`SpendReports` answers ``GetSpendReport`` from the aggregates: a report over months reads
one row per day and group, never the spend log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_core.errors import SwitchyardError
from switchyard_management.errors import database_errors
from switchyard_management.models import DailySpend, VirtualKey

_TABLE = cast(Table, DailySpend.__table__)
_COLUMNS = _TABLE.c
_KEYS = cast(Table, VirtualKey.__table__).c
_IDENTITY = ("key_hash", "team_id", "user_id", "end_user", "model_group")
"""With the day, what one aggregate row stands for (its unique constraint)."""
_SUMS = ("requests", "prompt_tokens", "completion_tokens", "cost")

GroupBy = pb.SpendReportGroupBy
_GROUP_COLUMNS = {
    GroupBy.SPEND_REPORT_GROUP_BY_UNSPECIFIED: "team_id",
    GroupBy.SPEND_REPORT_GROUP_BY_TEAM: "team_id",
    GroupBy.SPEND_REPORT_GROUP_BY_CUSTOMER: "end_user",
    GroupBy.SPEND_REPORT_GROUP_BY_API_KEY: "key_hash",
}
MAX_REPORT_DAYS = 366
"""Longest period one report may cover."""


async def add_daily_spend(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Add newly inserted ``spend_logs`` rows (column dicts) to their daily aggregates, in ``conn``'s transaction."""
    totals: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        identity = (row["start_time"].date(), *(row[name] for name in _IDENTITY))
        total = totals.get(identity)
        if total is None:
            totals[identity] = total = {"date": identity[0], "provider": row["provider"]}
            total.update(zip(_IDENTITY, identity[1:], strict=True))
            total.update(requests=0, prompt_tokens=0, completion_tokens=0, cost=0.0)
        total["requests"] += 1
        total["prompt_tokens"] += row["prompt_tokens"]
        total["completion_tokens"] += row["completion_tokens"]
        total["cost"] += row["cost"]
    if totals:
        ordered = [totals[identity] for identity in sorted(totals)]
        await conn.execute(_upsert(conn.dialect.name), ordered)


def _upsert(dialect: str) -> Any:
    """INSERT ... ON CONFLICT (day, identity) DO UPDATE adding the sums, for ``dialect``."""
    if dialect == "postgresql":
        statement: Any = postgresql.insert(_TABLE)
    elif dialect == "sqlite":
        statement = sqlite.insert(_TABLE)
    else:
        raise ValueError(f"daily spend needs PostgreSQL or SQLite, not {dialect}")
    return statement.on_conflict_do_update(
        index_elements=[_COLUMNS.date, *(_COLUMNS[name] for name in _IDENTITY)],
        set_={name: _COLUMNS[name] + statement.excluded[name] for name in _SUMS},
    )


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """The days (inclusive, UTC) and the grouping of a report."""

    start: date
    end: date
    group_by: int = GroupBy.SPEND_REPORT_GROUP_BY_TEAM

    @classmethod
    def parse(cls, request: pb.GetSpendReportRequest) -> ReportQuery:
        """Validate a request: dates ``YYYY-MM-DD``, start not after end, at most :data:`MAX_REPORT_DAYS`."""
        start = _day(request.start_date, "start_date")
        end = _day(request.end_date, "end_date")
        if end < start:
            raise SwitchyardError("invalid_request", "end_date must not be before start_date.", param="end_date")
        if (end - start).days >= MAX_REPORT_DAYS:
            raise SwitchyardError(
                "invalid_request", f"A report covers at most {MAX_REPORT_DAYS} days.", param="end_date"
            )
        if request.group_by not in _GROUP_COLUMNS:
            raise SwitchyardError("invalid_request", "group_by is not a known grouping.", param="group_by")
        return cls(start, end, request.group_by)


class SpendReports:
    """Reports from ``daily_spend``; one per process."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.healthy = False

    def _observe(self, ok: bool) -> None:
        self.healthy = ok

    async def report(self, query: ReportQuery) -> list[pb.SpendReportRow]:
        """Sums per day, group and model group, ordered by them; key groups carry their alias."""
        group = _COLUMNS[_GROUP_COLUMNS[query.group_by]]
        statement = (
            select(
                _COLUMNS.date,
                group.label("grp"),
                _COLUMNS.model_group,
                *(func.sum(_COLUMNS[name]).label(name) for name in _SUMS),
            )
            .where(_COLUMNS.date >= query.start, _COLUMNS.date <= query.end)
            .group_by(_COLUMNS.date, group, _COLUMNS.model_group)
            .order_by(_COLUMNS.date, group, _COLUMNS.model_group)
        )
        async with database_errors("reading the spend report", self._observe), self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
            aliases: dict[str, str] = {}
            if query.group_by == GroupBy.SPEND_REPORT_GROUP_BY_API_KEY and rows:
                hashes = {row.grp for row in rows}
                found = await conn.execute(select(_KEYS.key_hash, _KEYS.key_alias).where(_KEYS.key_hash.in_(hashes)))
                aliases = {key_hash: alias for key_hash, alias in found.all()}
        return [
            pb.SpendReportRow(
                date=row.date.isoformat(),
                group=row.grp,
                key_alias=aliases.get(row.grp, ""),
                model_group=row.model_group,
                # PostgreSQL sums BIGINT as NUMERIC: back to whole numbers.
                requests=int(row.requests),
                prompt_tokens=int(row.prompt_tokens),
                completion_tokens=int(row.completion_tokens),
                cost=float(row.cost),
            )
            for row in rows
        ]


def _day(value: str, param: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise SwitchyardError("invalid_request", f"{param} must be a date as YYYY-MM-DD.", param=param) from None
