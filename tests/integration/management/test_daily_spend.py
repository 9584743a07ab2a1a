"""Daily spend aggregates on real databases: kept with the spend rows, duplicates add nothing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_core.errors import SwitchyardError
from switchyard_management.daily_spend import ReportQuery, SpendReports
from switchyard_management.database import create_engine, migrate, resolve_url
from switchyard_management.store import SpendStore
from tests.integration.management.test_spend_store import usage

DAY = datetime(2025, 3, 1, 23, 59, 0, tzinfo=UTC)
NEXT_DAY = DAY + timedelta(minutes=2)


@pytest.fixture
async def stores(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[SpendStore, SpendReports, Any]]:
    engine = create_engine(resolve_url(database_url, tmp_path))
    await migrate(engine)
    yield SpendStore(engine), SpendReports(engine), engine
    await engine.dispose()


def query(group_by: int = pb.SPEND_REPORT_GROUP_BY_TEAM, start: str = "2025-03-01", end: str = "2025-03-02") -> Any:
    return ReportQuery.parse(pb.GetSpendReportRequest(start_date=start, end_date=end, group_by=group_by))


async def test_duplicate_deliveries_do_not_count_twice(stores: tuple[SpendStore, SpendReports, Any]) -> None:
    spend, _, engine = stores
    batch = [usage("a", at=DAY, cost=0.5), usage("b", at=DAY, cost=0.25), usage("a", at=DAY, cost=0.5)]

    assert await spend.write(batch) == (2, 1)
    assert await spend.write(batch) == (0, 3)  # the whole batch delivered again

    async with engine.connect() as conn:
        rows = (
            await conn.execute(text("SELECT requests, prompt_tokens, completion_tokens, cost FROM daily_spend"))
        ).all()
    assert [(r[0], r[1], r[2], float(r[3])) for r in rows] == [(2, 24, 60, 0.75)]


async def test_report_sums_equal_the_spend_rows(stores: tuple[SpendStore, SpendReports, Any]) -> None:
    spend, reports, _ = stores
    records = [
        usage(
            f"r{i}", at=DAY if i % 2 else NEXT_DAY, cost=0.01 * (i + 1), team_id=f"team-{i % 3}", end_user=f"u{i % 2}"
        )
        for i in range(30)
    ]
    await spend.write(records[:20])
    await spend.write(records[10:])  # overlapping delivery: r10..r19 are duplicates

    expected: dict[tuple[str, str], float] = defaultdict(float)
    for record in records:
        day = record.start_time.ToDatetime(tzinfo=UTC).date().isoformat()
        expected[(day, record.team_id)] += record.cost
    rows = await reports.report(query())

    assert {(row.date, row.group): row.cost for row in rows} == pytest.approx(dict(expected))
    assert sum(row.requests for row in rows) == len(records)
    assert sum(row.prompt_tokens for row in rows) == 12 * len(records)


@pytest.mark.parametrize(
    ("group_by", "groups"),
    [
        (pb.SPEND_REPORT_GROUP_BY_CUSTOMER, {"end-a", "end-b"}),
        (pb.SPEND_REPORT_GROUP_BY_API_KEY, {"hash-1", "hash-2"}),
    ],
    ids=["customer", "api-key"],
)
async def test_reports_group_by_customer_or_key(
    stores: tuple[SpendStore, SpendReports, Any], group_by: int, groups: set[str]
) -> None:
    spend, reports, _ = stores
    await spend.write(
        [
            usage("x", at=DAY, key_hash="hash-1", end_user="end-a"),
            usage("y", at=DAY, key_hash="hash-2", end_user="end-b"),
        ]
    )
    assert {row.group for row in await reports.report(query(group_by))} == groups


async def test_days_outside_the_period_are_left_out(stores: tuple[SpendStore, SpendReports, Any]) -> None:
    spend, reports, _ = stores
    await spend.write([usage("old", at=DAY), usage("new", at=NEXT_DAY)])
    rows = await reports.report(query(start="2025-03-02", end="2025-03-02"))
    assert [(row.date, row.requests) for row in rows] == [("2025-03-02", 1)]


@pytest.mark.parametrize(
    ("start", "end", "param"),
    [
        ("2025-3-1", "2025-03-02", "start_date"),
        ("2025-03-02", "2025-03-01", "end_date"),
        ("2024-01-01", "2025-12-31", "end_date"),
        ("", "2025-03-01", "start_date"),
    ],
    ids=["bad-format", "end-before-start", "too-long", "missing"],
)
def test_invalid_periods_are_refused(start: str, end: str, param: str) -> None:
    with pytest.raises(SwitchyardError) as refused:
        query(start=start, end=end)
    assert (refused.value.reason, refused.value.param) == ("invalid_request", param)
