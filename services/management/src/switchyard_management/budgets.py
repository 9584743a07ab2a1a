"""Spend totals and budget windows of the objects that carry a budget: keys, teams, users,
organizations and end users.

Totals: every spend row stored for the first time adds its cost to the ``spend`` of its key, team,
user, organization and end user, in the same transaction as the row (:func:`add_spend`), so each one's spend
always equals the sum of its rows in the current window; a row delivered twice is stored, and
counted, once. Organizations count through their teams' rows (``organization_id``).

Windows: an object with a ``budget_duration`` has a ``budget_reset_time``, when its current window
ends. :func:`sweep_budgets`, run every few seconds, starts the next window for each object whose
time has come: ``spend`` back to 0 and ``budget_reset_time`` moved on by whole durations past now.
Auth does not wait for the sweep: it computes the same windows itself (auth's ``scopes`` module).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchyard_core.durations import duration_seconds
from switchyard_management.models import EndUser, Organization, Team, User, VirtualKey

log = logging.getLogger(__name__)


def _table(model: type) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


# (table, its id column, the spend row field naming it): the objects whose spend rows count.
_SPENDERS: tuple[tuple[Table, str, str], ...] = (
    (_table(VirtualKey), "key_hash", "key_hash"),
    (_table(Team), "team_id", "team_id"),
    (_table(User), "user_id", "user_id"),
    (_table(EndUser), "user_id", "end_user"),
    (_table(Organization), "organization_id", "organization_id"),
)
# (table, its id column): the objects with budget windows.
_WINDOWED: tuple[tuple[Table, str], ...] = (
    (_table(VirtualKey), "key_hash"),
    (_table(Team), "team_id"),
    (_table(User), "user_id"),
    (_table(Organization), "organization_id"),
)


async def add_spend(conn: AsyncConnection, rows: Iterable[Mapping[str, Any]]) -> None:
    """Add the cost of newly stored spend ``rows`` to the totals of the objects they belong to."""
    rows = list(rows)
    for table, id_column, field in _SPENDERS:
        totals: dict[str, float] = defaultdict(float)
        for row in rows:
            if row[field] and row["cost"] > 0:
                totals[row[field]] += row["cost"]
        if not totals:
            continue
        statement = (
            update(table)
            .where(table.c[id_column] == bindparam("owner"))
            .values(spend=table.c.spend + bindparam("amount"))
        )
        # Sorted, so concurrent writers lock rows in the same order and never deadlock.
        await conn.execute(statement, [{"owner": owner, "amount": totals[owner]} for owner in sorted(totals)])


async def sweep_budgets(engine: AsyncEngine, now: datetime) -> int:
    """Start a new window for every budget whose window ended by ``now``; returns how many."""
    reset = 0
    async with engine.begin() as conn:
        for table, id_column in _WINDOWED:
            due = (
                await conn.execute(
                    select(table.c[id_column], table.c.budget_duration, table.c.budget_reset_time).where(
                        table.c.budget_reset_time <= now
                    )
                )
            ).all()
            for owner, duration, ends in due:
                seconds = duration_seconds(duration or "")
                if seconds is None:
                    continue
                await conn.execute(
                    update(table)
                    # Guarded by the old time: a concurrent sweep by another replica resets once.
                    .where(table.c[id_column] == owner, table.c.budget_reset_time == ends)
                    .values(spend=0.0, budget_reset_time=next_window_end(ends, seconds, now))
                )
                reset += 1
    if reset:
        log.info("started a new budget window for %d objects", reset)
    return reset


def next_window_end(ended: datetime, seconds: int, now: datetime) -> datetime:
    """The first window boundary after ``now``, counting whole ``seconds`` from ``ended``."""
    periods = int((now - ended).total_seconds() // seconds) + 1
    return ended + timedelta(seconds=periods * seconds)
