"""The audit log: one row per admin change, written in the change's own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from switchyard_management.models import AuditLog

_AUDIT = cast(Table, AuditLog.__table__)


async def write_audit(
    conn: AsyncConnection,
    now: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Record that ``actor`` (a key hash) did ``action`` to an object; images never hold a secret."""
    values = {
        "time": now,
        "actor_key_hash": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "before": before,
        "after": after,
    }
    await conn.execute(insert(_AUDIT), [values])
