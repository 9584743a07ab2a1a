"""Tenancy: organizations, teams, users, team memberships, budgets and end users.

Plain SQLAlchemy types, not the models, so this revision builds the same schema however the
models change later. Organizations, teams and users share the budget and rate-limit columns of
:func:`_limit_columns` (the same types as ``virtual_keys``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _limit_columns(table: str) -> list[sa.Column[object] | sa.CheckConstraint]:
    return [
        sa.Column("max_budget", sa.Numeric(20, 12), nullable=True),
        sa.Column("budget_duration", sa.String(), nullable=False),
        sa.Column("spend", sa.Numeric(20, 12), nullable=False),
        sa.Column("budget_reset_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("rpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("max_parallel_requests", sa.BigInteger(), nullable=True),
        sa.Column("model_rpm_limit", sa.JSON(), nullable=True),
        sa.Column("model_tpm_limit", sa.JSON(), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("spend >= 0", name=op.f(f"ck_{table}_spend_non_negative")),
    ]


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("organization_id", sa.String(), nullable=False),
        sa.Column("organization_alias", sa.String(), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        *_limit_columns("organizations"),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_organizations")),
    )
    op.create_index("ix_organizations_create_time_organization_id", "organizations", ["create_time", "organization_id"])
    op.create_table(
        "teams",
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("team_alias", sa.String(), nullable=False),
        sa.Column("organization_id", sa.String(), nullable=True),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        *_limit_columns("teams"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.organization_id"],
            name=op.f("fk_teams_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_teams")),
    )
    op.create_index("ix_teams_organization_id", "teams", ["organization_id"])
    op.create_index("ix_teams_create_time_team_id", "teams", ["create_time", "team_id"])
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("user_email", sa.String(), nullable=False),
        sa.Column("user_alias", sa.String(), nullable=False),
        sa.Column("user_role", sa.String(), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        *_limit_columns("users"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_users")),
    )
    op.create_index("ix_users_user_email", "users", ["user_email"])
    op.create_index("ix_users_create_time_user_id", "users", ["create_time", "user_id"])
    op.create_table(
        "team_memberships",
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.team_id"], name=op.f("fk_team_memberships_team_id_teams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.user_id"], name=op.f("fk_team_memberships_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_team_memberships")),
    )
    op.create_index("ix_team_memberships_user_id", "team_memberships", ["user_id"])
    op.create_table(
        "budgets",
        sa.Column("budget_id", sa.String(), nullable=False),
        sa.Column("max_budget", sa.Numeric(20, 12), nullable=True),
        sa.Column("soft_budget", sa.Numeric(20, 12), nullable=True),
        sa.Column("budget_duration", sa.String(), nullable=False),
        sa.Column("tpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("rpm_limit", sa.BigInteger(), nullable=True),
        sa.Column("max_parallel_requests", sa.BigInteger(), nullable=True),
        sa.Column("model_max_budget", sa.JSON(), nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("budget_id", name=op.f("pk_budgets")),
    )
    op.create_index("ix_budgets_create_time_budget_id", "budgets", ["create_time", "budget_id"])
    op.create_table(
        "end_users",
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("alias", sa.String(), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("budget_id", sa.String(), nullable=True),
        sa.Column("spend", sa.Numeric(20, 12), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("spend >= 0", name=op.f("ck_end_users_spend_non_negative")),
        sa.ForeignKeyConstraint(["budget_id"], ["budgets.budget_id"], name=op.f("fk_end_users_budget_id_budgets")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_end_users")),
    )
    op.create_index("ix_end_users_budget_id", "end_users", ["budget_id"])
    op.create_index("ix_end_users_create_time_user_id", "end_users", ["create_time", "user_id"])


def downgrade() -> None:
    for table, indexes in (
        ("end_users", ["ix_end_users_create_time_user_id", "ix_end_users_budget_id"]),
        ("budgets", ["ix_budgets_create_time_budget_id"]),
        ("team_memberships", ["ix_team_memberships_user_id"]),
        ("users", ["ix_users_create_time_user_id", "ix_users_user_email"]),
        ("teams", ["ix_teams_create_time_team_id", "ix_teams_organization_id"]),
        ("organizations", ["ix_organizations_create_time_organization_id"]),
    ):
        for index in indexes:
            op.drop_index(index, table_name=table)
        op.drop_table(table)
