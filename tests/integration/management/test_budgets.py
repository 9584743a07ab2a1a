"""Key spend totals and budget windows on real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_management.budgets import next_window_end, sweep_budgets
from switchyard_management.customers import BudgetStore, EndUserStore
from switchyard_management.keys import KeyStore
from switchyard_management.store import SpendStore
from switchyard_management.teams import OrganizationStore, TeamStore
from switchyard_management.users import UserStore
from tests.integration.management.test_keys import ACTOR, engine, settings
from tests.integration.management.test_spend_store import usage

__all__ = ["engine"]  # the fixture: a migrated database with the test owners


async def test_new_spend_rows_add_to_their_keys_spend_once(engine: Any) -> None:
    keys, spend = KeyStore(engine), SpendStore(engine)
    _, first = await keys.create(settings(key_alias="first"), "", ACTOR)
    _, second = await keys.create(settings(key_alias="second"), "", ACTOR)

    await spend.write(
        [usage("r1", key_hash=first.key_hash, cost=0.25), usage("r2", key_hash=second.key_hash, cost=1.5)]
    )
    # A batch delivered again (a retry after a lost answer), plus one new row.
    inserted, duplicates = await spend.write(
        [usage("r1", key_hash=first.key_hash, cost=0.25), usage("r3", key_hash=first.key_hash, cost=0.5)]
    )

    assert (inserted, duplicates) == (1, 1)
    assert (await keys.get(first.key_hash)).spend == pytest.approx(0.75)
    assert (await keys.get(second.key_hash)).spend == pytest.approx(1.5)


async def test_sweep_starts_the_next_window_of_due_budgets_only(engine: Any) -> None:
    keys, spend = KeyStore(engine), SpendStore(engine)
    _, daily = await keys.create(settings(key_alias="daily", budget_duration="1d"), "", ACTOR)
    _, forever = await keys.create(settings(key_alias="forever", budget_duration=""), "", ACTOR)
    await spend.write([usage("a", key_hash=daily.key_hash, cost=2.0), usage("b", key_hash=forever.key_hash, cost=3.0)])
    ends = daily.budget_reset_time.ToDatetime(tzinfo=UTC)

    assert await sweep_budgets(engine, ends - timedelta(seconds=1)) == 0
    assert await sweep_budgets(engine, ends + timedelta(hours=25)) == 1

    swept = await keys.get(daily.key_hash)
    assert swept.spend == 0.0
    assert swept.budget_reset_time.ToDatetime(tzinfo=UTC) == ends + timedelta(days=2)
    assert (await keys.get(forever.key_hash)).spend == pytest.approx(3.0)
    assert await sweep_budgets(engine, ends + timedelta(hours=25)) == 0  # done once


def test_next_window_end_counts_whole_periods() -> None:
    ended = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_window_end(ended, 3600, ended) == ended + timedelta(hours=1)
    assert next_window_end(ended, 3600, ended + timedelta(minutes=150)) == ended + timedelta(hours=3)


async def test_spend_rows_add_to_their_team_user_organization_and_end_user(engine: Any) -> None:
    teams, users, end_users = TeamStore(engine), UserStore(engine), EndUserStore(engine, BudgetStore(engine))
    organizations = OrganizationStore(engine)
    await organizations.create(pb.Organization(organization_id="org-spend"), ACTOR)
    team = await teams.create(
        pb.Team(team_id="team-spend", organization_id="org-spend", limits=pb.Limits(budget_duration="1h")), ACTOR
    )
    await users.create(pb.User(user_id="user-spend"), ACTOR)
    await end_users.create(pb.EndUser(user_id="customer-7"), None, ACTOR)
    spend = SpendStore(engine)

    await spend.write(
        [
            usage("s1", team_id="team-spend", user_id="user-spend", end_user="customer-7", cost=0.5),
            usage("s2", team_id="team-spend", user_id="user-spend", end_user="someone-else", cost=0.25),
            usage("s3", organization_id="org-spend", cost=2.0),
        ]
    )
    await spend.write([usage("s1", team_id="team-spend", user_id="user-spend", end_user="customer-7", cost=0.5)])

    assert (await teams.get("team-spend")).limits.spend == pytest.approx(0.75)
    assert (await users.get("user-spend")).limits.spend == pytest.approx(0.75)
    assert (await end_users.get("customer-7")).spend == pytest.approx(0.5)
    assert (await organizations.get("org-spend")).limits.spend == pytest.approx(2.0)

    ends = team.limits.budget_reset_time.ToDatetime(tzinfo=UTC)
    assert await sweep_budgets(engine, ends + timedelta(minutes=1)) == 1  # the team's hour is over
    assert (await teams.get("team-spend")).limits.spend == 0.0
