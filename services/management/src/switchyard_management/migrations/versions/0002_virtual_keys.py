"""Virtual keys and the audit log of admin actions.

Plain SQLAlchemy types, not the models, so this revision builds the same schema however the
models change later.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "virtual_keys",
        sa.Column("key_hash", sa.String(), nullable=False),
        sa.Column("key_name", sa.String(), nullable=False),
        sa.Column("key_alias", sa.String(), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("max_budget", sa.Numeric(20, 12), nullable=True),
        sa.Column("budget_duration", sa.String(), nullable=False),
        sa.Column("tpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("rpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("max_parallel_requests", sa.BigInteger(), nullable=True),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=True),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("spend", sa.Numeric(20, 12), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("budget_reset_time", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("spend >= 0", name=op.f("ck_virtual_keys_spend_non_negative")),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_virtual_keys")),
    )
    op.create_index("ix_virtual_keys_key_alias", "virtual_keys", ["key_alias"])
    op.create_index("ix_virtual_keys_team_id", "virtual_keys", ["team_id"])
    op.create_index("ix_virtual_keys_user_id", "virtual_keys", ["user_id"])
    op.create_index("ix_virtual_keys_create_time_key_hash", "virtual_keys", ["create_time", "key_hash"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_key_hash", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("object_type", sa.String(), nullable=False),
        sa.Column("object_id", sa.String(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_time", "audit_log", ["time"])
    op.create_index("ix_audit_log_object_type_object_id", "audit_log", ["object_type", "object_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_object_type_object_id", table_name="audit_log")
    op.drop_index("ix_audit_log_time", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_virtual_keys_create_time_key_hash", table_name="virtual_keys")
    op.drop_index("ix_virtual_keys_user_id", table_name="virtual_keys")
    op.drop_index("ix_virtual_keys_team_id", table_name="virtual_keys")
    op.drop_index("ix_virtual_keys_key_alias", table_name="virtual_keys")
    op.drop_table("virtual_keys")
