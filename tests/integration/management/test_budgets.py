"""Key spend totals and budget windows on real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from switchyard_management.budgets import next_window_end, sweep_budgets
from switchyard_management.keys import KeyStore
from switchyard_management.store import SpendStore
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
