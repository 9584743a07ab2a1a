"""Baseline: spend logs.

Migrations spell out plain SQLAlchemy types instead of importing the models, so this revision
creates the same schema however the models change later.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "spend_logs",
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("key_hash", sa.String(), nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("end_user", sa.String(), nullable=False),
        sa.Column("model_group", sa.String(), nullable=False),
        sa.Column("deployment_id", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("total_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Numeric(20, 12), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("operation", sa.String(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.CheckConstraint("cost >= 0", name=op.f("ck_spend_logs_cost_non_negative")),
        sa.CheckConstraint(
            "prompt_tokens >= 0 AND completion_tokens >= 0 AND total_tokens >= 0",
            name=op.f("ck_spend_logs_tokens_non_negative"),
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_spend_logs")),
    )
    op.create_index("ix_spend_logs_start_time_request_id", "spend_logs", ["start_time", "request_id"])
    op.create_index(
        "ix_spend_logs_key_hash_start_time_request_id", "spend_logs", ["key_hash", "start_time", "request_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_spend_logs_key_hash_start_time_request_id", table_name="spend_logs")
    op.drop_index("ix_spend_logs_start_time_request_id", table_name="spend_logs")
    op.drop_table("spend_logs")
