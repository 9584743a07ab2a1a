"""Spend report: LiteLLM ``/global/spend/report`` query -> ``GetSpendReportRequest``; rows -> LiteLLM JSON.

Management answers one row per day, group and model group. LiteLLM's shapes, by ``group_by``:

- ``team`` (default) and ``customer``: one entry per day, ``{"group_by_day", "teams" | "customers":
  [{"team_name" | "customer", "total_spend", "metadata": [{"model", "spend", "total_tokens"}]}]}``;
- ``api_key``: one entry per key over the whole period, ``{"api_key", "key_alias", "total_cost",
  "total_input_tokens", "total_output_tokens", "model_details": [{"model", "total_cost", ...}]}``.

Keys appear only as their hash (and alias), never as a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_core.errors import SwitchyardError

__all__ = ["GROUP_BY", "report_json", "report_request"]

GROUP_BY: dict[str, int] = {
    "team": pb.SPEND_REPORT_GROUP_BY_TEAM,
    "customer": pb.SPEND_REPORT_GROUP_BY_CUSTOMER,
    "api_key": pb.SPEND_REPORT_GROUP_BY_API_KEY,
}
"""LiteLLM ``group_by`` values."""

_DAILY_LISTS = {"team": ("teams", "team_name"), "customer": ("customers", "customer")}


def report_request(start_date: str, end_date: str, group_by: str) -> pb.GetSpendReportRequest:
    """The management request; dates are checked by management (``YYYY-MM-DD``, start <= end)."""
    if group_by not in GROUP_BY:
        raise SwitchyardError("invalid_request", f"group_by must be one of {', '.join(GROUP_BY)}.", param="group_by")
    return pb.GetSpendReportRequest(start_date=start_date, end_date=end_date, group_by=GROUP_BY[group_by])


def report_json(rows: Sequence[pb.SpendReportRow], group_by: str) -> list[dict[str, Any]]:
    """LiteLLM's report for ``group_by`` from management's rows (ordered by day, group, model group)."""
    if group_by == "api_key":
        return _by_key(rows)
    list_name, name_field = _DAILY_LISTS[group_by]
    days: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        groups = days.setdefault(row.date, {})
        group = groups.setdefault(row.group, {name_field: row.group or None, "total_spend": 0.0, "metadata": []})
        group["total_spend"] += row.cost
        group["metadata"].append(
            {"model": row.model_group, "spend": row.cost, "total_tokens": row.prompt_tokens + row.completion_tokens}
        )
    return [{"group_by_day": day, list_name: list(groups.values())} for day, groups in days.items()]


def _by_key(rows: Sequence[pb.SpendReportRow]) -> list[dict[str, Any]]:
    keys: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = keys.setdefault(
            row.group,
            {
                "api_key": row.group,
                "key_alias": row.key_alias or None,
                "total_cost": 0.0,
                "total_input_tokens": 0,
                "total_output_tokens": 0,
                "model_details": {},
            },
        )
        _add(key, row)
        model = key["model_details"].setdefault(
            row.model_group,
            {"model": row.model_group, "total_cost": 0.0, "total_input_tokens": 0, "total_output_tokens": 0},
        )
        _add(model, row)
    return [{**key, "model_details": list(key["model_details"].values())} for key in keys.values()]


def _add(total: dict[str, Any], row: pb.SpendReportRow) -> None:
    total["total_cost"] += row.cost
    total["total_input_tokens"] += row.prompt_tokens
    total["total_output_tokens"] += row.completion_tokens
