"""Per-model rate limits on virtual keys; spend rows name the caller's organization.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("model_rpm_limit", "model_tpm_limit")


def upgrade() -> None:
    with op.batch_alter_table("virtual_keys") as table:
        for name in _COLUMNS:
            table.add_column(sa.Column(name, sa.JSON(none_as_null=True), nullable=True))
    with op.batch_alter_table("spend_logs") as table:
        table.add_column(sa.Column("organization_id", sa.String(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("spend_logs") as table:
        table.drop_column("organization_id")
    with op.batch_alter_table("virtual_keys") as table:
        for name in reversed(_COLUMNS):
            table.drop_column(name)
