"""Budgets and end users ("customers") in the system of record, each change audited.

A budget is a reusable set of limits (``max_budget``, ``soft_budget``, a window, rate limits,
per-model budgets), as LiteLLM's budget table; end users point at one. Creating an end user with
limits of its own creates its budget in the same transaction, as LiteLLM's ``/customer/new``
does. A budget still used by an end user cannot be deleted (``invalid_request``).

End users' ``spend`` is accounting's, never set here.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, cast

from google.protobuf import json_format
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_management._records import (
    RATE_LIMITS,
    Records,
    duration_value,
    invalid,
    limit_value,
    money_value,
    new_id,
    split_mask,
    utc_now,
)
from switchyard_management.models import Budget, EndUser
from switchyard_management.store import set_timestamp

__all__ = ["BUDGET_FIELDS", "BudgetStore", "EndUserStore"]

BUDGET_FIELDS = frozenset({"max_budget", "soft_budget", "budget_duration", *RATE_LIMITS, "model_max_budget"})
"""Paths of ``Budget`` an update mask may name."""

_BUDGETS = cast(Table, Budget.__table__)
_END_USERS = cast(Table, EndUser.__table__)


class BudgetStore:
    """Budgets; one per process, shared by all tasks. ``actor`` is the caller's key hash."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.records = Records(engine, _BUDGETS, "budget_id", "budget")

    async def create(self, budget: pb.Budget, actor: str) -> pb.Budget:
        """Store a new budget; its id is generated when empty."""
        async with self.records.errors("creating"), self.records.engine.begin() as conn:
            return await self.insert(conn, budget, actor, "budget")

    async def insert(self, conn: AsyncConnection, budget: pb.Budget, actor: str, param: str) -> pb.Budget:
        """Store a new budget in ``conn``'s transaction; ``param`` prefixes field names in errors."""
        at = utc_now()
        row = {
            "budget_id": new_id(budget.budget_id, f"{param}.budget_id"),
            **_budget_settings(budget, BUDGET_FIELDS, param),
            "create_time": at,
            "update_time": at,
        }
        await self.records.insert(conn, row, actor)
        return _budget(row)

    async def get(self, budget_id: str) -> pb.Budget:
        async with self.records.errors("reading"), self.records.engine.connect() as conn:
            return _budget(await self.records.get(conn, budget_id))

    async def list(self, page_size: int, page_token: str) -> tuple[builtins.list[pb.Budget], str]:
        page = await self.records.page([], [], page_size, page_token)
        return [_budget(row) for row in page.rows], page.next_page_token

    async def update(self, budget: pb.Budget, paths: Sequence[str], actor: str) -> pb.Budget:
        """Set the fields ``paths`` names; ``not_found`` for an unknown id."""
        fields, _ = split_mask(paths, BUDGET_FIELDS)
        changes = _budget_settings(budget, fields, "budget")
        async with self.records.errors("updating"), self.records.engine.begin() as conn:
            return _budget(await self.records.change(conn, budget.budget_id, changes, actor, utc_now()))

    async def delete(self, budget_ids: Sequence[str], actor: str) -> builtins.list[str]:
        """Delete budgets, all or none; one still used by an end user is refused."""
        async with self.records.errors("deleting"), self.records.engine.begin() as conn:
            await self.records.refuse_in_use(conn, _END_USERS.c.budget_id, budget_ids, "end users")
            return await self.records.remove(conn, budget_ids, actor, utc_now())


class EndUserStore:
    """End users; one per process, shared by all tasks. ``actor`` is the caller's key hash."""

    def __init__(self, engine: AsyncEngine, budgets: BudgetStore) -> None:
        self.records = Records(engine, _END_USERS, "user_id", "end_user")
        self._budgets = budgets

    async def create(self, end_user: pb.EndUser, budget: pb.Budget | None, actor: str) -> pb.EndUser:
        """Store a new end user; with ``budget``, create that budget for it in the same transaction.

        ``end_user.budget_id``, when set, must name a budget and excludes ``budget``.
        """
        if not end_user.user_id.strip():
            raise invalid("end_user.user_id", "is required")
        if budget is not None and end_user.budget_id:
            raise invalid("budget", "cannot be combined with end_user.budget_id")
        at = utc_now()
        row = {
            "user_id": new_id(end_user.user_id, "end_user.user_id"),
            "alias": end_user.alias,
            "blocked": end_user.blocked,
            "budget_id": end_user.budget_id or None,
            "spend": 0.0,
            "create_time": at,
            "update_time": at,
        }
        async with self.records.errors("creating"), self.records.engine.begin() as conn:
            if budget is not None:
                row["budget_id"] = (await self._budgets.insert(conn, budget, actor, "budget")).budget_id
            elif row["budget_id"] and not await self._budgets.records.exists(conn, row["budget_id"]):
                raise invalid("end_user.budget_id", f"names no budget: '{row['budget_id']}'")
            await self.records.insert(conn, row, actor)
            return await _end_user(conn, row)

    async def get(self, user_id: str) -> pb.EndUser:
        async with self.records.errors("reading"), self.records.engine.connect() as conn:
            return await _end_user(conn, await self.records.get(conn, user_id))

    async def list(self, page_size: int, page_token: str) -> tuple[builtins.list[pb.EndUser], str]:
        page = await self.records.page([], [], page_size, page_token)
        async with self.records.errors("reading"), self.records.engine.connect() as conn:
            return [await _end_user(conn, row) for row in page.rows], page.next_page_token

    async def delete(self, user_ids: Sequence[str], actor: str) -> builtins.list[str]:
        """Delete end users, all or none; their budgets stay (other end users may share them)."""
        async with self.records.errors("deleting"), self.records.engine.begin() as conn:
            return await self.records.remove(conn, user_ids, actor, utc_now())


def _budget_settings(budget: pb.Budget, fields: set[str] | frozenset[str], param: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in ("max_budget", "soft_budget"):
        if name in fields:
            values[name] = money_value(budget, name, f"{param}.{name}")
    for name in RATE_LIMITS:
        if name in fields:
            values[name] = limit_value(budget, name, f"{param}.{name}")
    if "budget_duration" in fields:
        values["budget_duration"] = duration_value(budget.budget_duration, f"{param}.budget_duration")
    if "model_max_budget" in fields:
        values["model_max_budget"] = json_format.MessageToDict(budget.model_max_budget) or None
    return values


def _budget(row: dict[str, Any]) -> pb.Budget:
    budget = pb.Budget(budget_id=row["budget_id"], budget_duration=row["budget_duration"])
    for name in ("max_budget", "soft_budget", *RATE_LIMITS):
        if row[name] is not None:
            setattr(budget, name, row[name])
    if row["model_max_budget"]:
        budget.model_max_budget.update(row["model_max_budget"])
    set_timestamp(budget.create_time, row["create_time"])
    set_timestamp(budget.update_time, row["update_time"])
    return budget


async def _end_user(conn: AsyncConnection, row: dict[str, Any]) -> pb.EndUser:
    end_user = pb.EndUser(
        user_id=row["user_id"],
        alias=row["alias"],
        blocked=row["blocked"],
        budget_id=row["budget_id"] or "",
        spend=row["spend"],
    )
    set_timestamp(end_user.create_time, row["create_time"])
    set_timestamp(end_user.update_time, row["update_time"])
    if row["budget_id"]:
        found = (await conn.execute(select(_BUDGETS).where(_BUDGETS.c.budget_id == row["budget_id"]))).first()
        if found is not None:
            end_user.budget.CopyFrom(_budget(dict(found._mapping)))
    return end_user
