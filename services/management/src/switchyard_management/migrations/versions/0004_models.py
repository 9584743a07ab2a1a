"""Models stored in the database and daily spend aggregates.

Plain SQLAlchemy types, not the models, so this revision builds the same schema however the
models change later. ``daily_spend`` starts from the spend rows already stored, so the report
covers the history too.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_GROUP = ("key_hash", "team_id", "user_id", "end_user", "model_group")


def upgrade() -> None:
    op.create_table(
        "model_deployments",
        sa.Column("model_id", sa.String(), nullable=False),
        sa.Column("model_name", sa.String(), nullable=False),
        sa.Column("litellm_params", sa.JSON(), nullable=False),
        sa.Column("model_info", sa.JSON(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_model_deployments")),
    )
    op.create_index("ix_model_deployments_model_name", "model_deployments", ["model_name"])
    op.create_table(
        "daily_spend",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        *(sa.Column(name, sa.String(), nullable=False) for name in (*_GROUP, "provider")),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost", sa.Numeric(20, 12), nullable=False),
        sa.CheckConstraint("cost >= 0", name=op.f("ck_daily_spend_cost_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_spend")),
        sa.UniqueConstraint("date", *_GROUP, name=op.f("uq_daily_spend_day_group")),
    )
    _backfill_daily_spend()


def _backfill_daily_spend() -> None:
    day = "date(start_time)" if op.get_bind().dialect.name == "sqlite" else "(start_time AT TIME ZONE 'UTC')::date"
    group = ", ".join(_GROUP)
    op.execute(
        f"INSERT INTO daily_spend (date, {group}, provider, requests, prompt_tokens, completion_tokens, cost) "
        f"SELECT {day}, {group}, MIN(provider), COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost) "
        f"FROM spend_logs GROUP BY {day}, {group}"
    )


def downgrade() -> None:
    op.drop_table("daily_spend")
    op.drop_index("ix_model_deployments_model_name", table_name="model_deployments")
    op.drop_table("model_deployments")
