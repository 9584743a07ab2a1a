"""What every admin store shares: audited row changes, keyset pages, and field validation.

Keys, organizations, teams, users, end users and budgets are all rows with a string id, settings
an admin changes, and an ``audit_log`` row per change written in the same transaction as the
change (so the log and the objects never disagree). :class:`Records` does that for one table; the
stores add only what is particular to their objects (references, members, minted keys).

Lists are newest first by ``(create_time, <id>)`` with keyset page tokens, as spend logs are.
Every statement is built with SQLAlchemy Core, so every value is a bound parameter.

Validation helpers raise ``invalid_request`` naming the request field (``team.limits.max_budget``),
the same message shapes keys always used.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, Table, delete, insert, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchyard.auth.v1 import auth_service_pb2
from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_core.durations import EXAMPLES, duration_seconds
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import hash_key
from switchyard_management.errors import database_errors
from switchyard_management.models import AuditLog, UTCDateTime
from switchyard_management.store import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    decode_page_token,
    encode_page_token,
    set_timestamp,
)

_AUDIT: Table = AuditLog.__table__  # type: ignore[assignment]
_Role = auth_service_pb2.PrincipalRole
_ROLE_PREFIX = "PRINCIPAL_ROLE_"

RATE_LIMITS = ("tpm_limit", "rpm_limit", "max_parallel_requests")
"""Optional non-negative integer limits, the same on keys, limits and budgets."""

PER_MODEL_LIMITS = ("model_rpm_limit", "model_tpm_limit")
"""Optional per-model-group rate limits (model group -> limit), on keys and ``Limits``."""

LIMIT_FIELDS = frozenset({"max_budget", "budget_duration", *RATE_LIMITS, *PER_MODEL_LIMITS})
"""Fields of ``Limits`` an admin may set; ``spend`` and ``budget_reset_time`` are accounting's."""

MAX_ID_LENGTH = 256


def utc_now() -> datetime:
    return datetime.now(UTC)


def invalid(field: str, problem: str) -> SwitchyardError:
    return SwitchyardError("invalid_request", f"{field} {problem}.", param=field)


def not_found(noun: str) -> SwitchyardError:
    """The one answer for "absent" and "not yours": callers cannot probe for existence."""
    return SwitchyardError("not_found", f"No such {noun}.")


def new_id(given: str, param: str) -> str:
    """``given`` when set (validated), else a fresh UUID."""
    value = given.strip()
    if not value:
        return str(uuid.uuid4())
    if len(value) > MAX_ID_LENGTH:
        raise invalid(param, f"must be at most {MAX_ID_LENGTH} characters")
    return value


def parse_duration(value: str, param: str) -> timedelta:
    """A LiteLLM duration string (:mod:`switchyard_core.durations`) as a timedelta.

    Anything else is ``invalid_request`` naming ``param``.
    """
    seconds = duration_seconds(value)
    if seconds is None:
        raise invalid(param, f"must be a positive duration such as {EXAMPLES}")
    return timedelta(seconds=seconds)


def reset_time(budget_duration: str, at: datetime, param: str) -> datetime | None:
    """When a budget window that starts ``at`` ends; None without a window."""
    return at + parse_duration(budget_duration, param) if budget_duration else None


def duration_value(value: str, param: str) -> str:
    if value:
        parse_duration(value, param)
    return value.strip()


def models_value(models: Iterable[str], param: str) -> list[str]:
    names = list(models)
    if any(not name.strip() for name in names):
        raise invalid(param, "must not contain empty names")
    return list(dict.fromkeys(names))


def money_value(message: Any, name: str, param: str) -> float | None:
    """An optional non-negative dollar amount of ``message``; None when unset."""
    if not message.HasField(name):
        return None
    amount: float = getattr(message, name)
    if not math.isfinite(amount) or amount < 0:
        raise invalid(param, "must be a non-negative number")
    return amount


def limit_value(message: Any, name: str, param: str) -> int | None:
    """An optional non-negative integer limit of ``message``; None when unset."""
    if not message.HasField(name):
        return None
    limit: int = getattr(message, name)
    if limit < 0:
        raise invalid(param, "must not be negative")
    return limit


def per_model_value(limits: Mapping[str, int], param: str) -> dict[str, int] | None:
    if any(not model.strip() or value < 0 for model, value in limits.items()):
        raise invalid(param, "must map model names to non-negative limits")
    return dict(limits) or None


def role_name(role: int, param: str) -> str:
    """The stored name of a ``PrincipalRole`` (``"proxy_admin"``); unspecified is an internal user."""
    if role not in _Role.values():
        raise invalid(param, "is not a known role")
    if role == _Role.PRINCIPAL_ROLE_UNSPECIFIED:
        role = _Role.PRINCIPAL_ROLE_INTERNAL_USER
    return _Role.Name(role).removeprefix(_ROLE_PREFIX).lower()


def role_value(name: str) -> int:
    try:
        return _Role.Value(_ROLE_PREFIX + name.upper())
    except ValueError:
        # A role name this build does not know grants nothing beyond an internal user.
        return _Role.PRINCIPAL_ROLE_INTERNAL_USER


def limit_columns(limits: pb.Limits, fields: set[str], param: str, at: datetime) -> dict[str, Any]:
    """Column values for the ``fields`` (names of ``Limits``) of ``limits``, validated.

    Changing ``budget_duration`` starts a new budget window at ``at``.
    """
    values: dict[str, Any] = {}
    if "max_budget" in fields:
        values["max_budget"] = money_value(limits, "max_budget", f"{param}.max_budget")
    for name in RATE_LIMITS:
        if name in fields:
            values[name] = limit_value(limits, name, f"{param}.{name}")
    for name in PER_MODEL_LIMITS:
        if name in fields:
            values[name] = per_model_value(getattr(limits, name), f"{param}.{name}")
    if "budget_duration" in fields:
        values["budget_duration"] = duration_value(limits.budget_duration, f"{param}.budget_duration")
        values["budget_reset_time"] = reset_time(values["budget_duration"], at, f"{param}.budget_duration")
    return values


def new_limit_columns(limits: pb.Limits, param: str, at: datetime) -> dict[str, Any]:
    """Every limit column of a new object: its settings, no spend, the first budget window."""
    return {**limit_columns(limits, set(LIMIT_FIELDS), param, at), "spend": 0.0, "create_time": at, "update_time": at}


def fill_limits(target: pb.Limits, row: Mapping[str, Any]) -> None:
    """Copy a row's limit columns into ``target``."""
    target.budget_duration = row["budget_duration"]
    target.spend = row["spend"]
    for name in ("max_budget", *RATE_LIMITS):
        if row[name] is not None:
            setattr(target, name, row[name])
    for name in PER_MODEL_LIMITS:
        getattr(target, name).update(row[name] or {})
    if row["budget_reset_time"] is not None:
        set_timestamp(target.budget_reset_time, row["budget_reset_time"])


def split_mask(paths: Sequence[str], updatable: frozenset[str]) -> tuple[set[str], set[str]]:
    """``(top-level fields, Limits fields)`` an update mask names; ``limits`` alone means all limits.

    A mask naming nothing, or a field outside ``updatable`` / :data:`LIMIT_FIELDS`, is
    ``invalid_request`` on ``update_mask``.
    """
    fields: set[str] = set()
    limits: set[str] = set()
    for path in paths:
        head, _, rest = path.partition(".")
        if head == "limits" and "limits" in updatable:
            limits |= {rest} if rest else set(LIMIT_FIELDS)
        else:
            fields.add(path)
    if not fields and not limits:
        raise invalid("update_mask", "must name at least one field")
    unknown = sorted((fields - updatable) | {f"limits.{name}" for name in limits - LIMIT_FIELDS})
    if unknown:
        raise invalid("update_mask", f"names fields that cannot be changed: {', '.join(unknown)}")
    return fields - {"limits"}, limits


def image(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as JSON for the audit log: the object's settings, times as ISO 8601."""
    return {name: value.isoformat() if isinstance(value, datetime) else value for name, value in row.items()}


async def audit(
    conn: AsyncConnection,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> None:
    """Write one ``audit_log`` row in ``conn``'s transaction."""
    values = {
        "time": at,
        "actor_key_hash": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "before": None if before is None else image(before),
        "after": None if after is None else image(after),
    }
    await conn.execute(insert(_AUDIT), [values])


@dataclass(frozen=True, slots=True)
class Page:
    """One page of rows (mappings of column names), newest first."""

    rows: list[dict[str, Any]]
    next_page_token: str
    """Pass back to get the next page; empty on the last page."""


class Records:
    """Audited create / read / list / update / delete of one table keyed by one string column.

    One per table and process, shared by all tasks. ``noun`` is the audit log's ``object_type``
    ("team", "end_user") and, with spaces, names the object in messages. Methods taking ``conn`` run inside the
    caller's transaction; the others open their own. Database failures surface as
    ``service_unavailable`` (see :func:`database_errors`).
    """

    def __init__(self, engine: AsyncEngine, table: Table, id_column: str, noun: str) -> None:
        self.engine = engine
        self.table = table
        self.id = table.c[id_column]
        self.noun = noun
        self.healthy = False

    def observe(self, ok: bool) -> None:
        self.healthy = ok

    def errors(self, action: str) -> Any:
        """Context manager turning database failures of ``action`` into ``service_unavailable``."""
        return database_errors(f"{action} {self.noun}s", self.observe)

    @property
    def name(self) -> str:
        return self.noun.replace("_", " ")

    async def exists(self, conn: AsyncConnection, object_id: str) -> bool:
        return (await conn.execute(select(self.id).where(self.id == object_id))).first() is not None

    async def find(self, conn: AsyncConnection, object_id: str, *, lock: bool = False) -> dict[str, Any] | None:
        """The row of ``object_id`` or None; ``lock`` holds it until the transaction ends (PostgreSQL)."""
        query = select(self.table).where(self.id == object_id)
        row = (await conn.execute(query.with_for_update() if lock else query)).first()
        return None if row is None else dict(row._mapping)

    async def get(self, conn: AsyncConnection, object_id: str, *, lock: bool = False) -> dict[str, Any]:
        """The row of ``object_id``; ``not_found`` when there is none."""
        row = await self.find(conn, object_id, lock=lock) if object_id else None
        if row is None:
            raise not_found(self.name)
        return row

    async def insert(self, conn: AsyncConnection, row: dict[str, Any], actor: str) -> None:
        """Insert ``row`` and audit it; an id already taken is ``invalid_request`` on ``<noun>.<id>``."""
        object_id = row[self.id.key]
        if await self.exists(conn, object_id):
            raise invalid(f"{self.noun}.{self.id.key}", f"'{object_id}' already exists")
        await conn.execute(insert(self.table), [row])
        await audit(conn, row["create_time"], actor, "create", self.noun, object_id, None, row)

    async def change(
        self, conn: AsyncConnection, object_id: str, changes: dict[str, Any], actor: str, at: datetime
    ) -> dict[str, Any]:
        """Apply ``changes`` to the row of ``object_id`` (``not_found`` if none), audited; the new row."""
        before = await self.get(conn, object_id, lock=True)
        changes = {**changes, "update_time": at}
        await conn.execute(update(self.table).where(self.id == object_id).values(**changes))
        after = {**before, **changes}
        await audit(conn, at, actor, "update", self.noun, object_id, before, after)
        return after

    async def remove(self, conn: AsyncConnection, object_ids: Sequence[str], actor: str, at: datetime) -> list[str]:
        """Delete the rows of ``object_ids``, all or none (``not_found`` if one is missing); audited."""
        wanted = set(object_ids)
        if not wanted:
            raise invalid(f"{self.noun}_ids", "must name at least one")
        query = select(self.table).where(self.id.in_(wanted)).with_for_update()
        rows = [dict(row._mapping) for row in (await conn.execute(query)).all()]
        if wanted - {row[self.id.key] for row in rows}:
            raise not_found(self.name)
        await conn.execute(delete(self.table).where(self.id.in_(wanted)))
        for row in rows:
            await audit(conn, at, actor, "delete", self.noun, row[self.id.key], row, None)
        return sorted(wanted)

    async def page(
        self,
        where: Sequence[ColumnElement[bool]],
        filters: Sequence[str],
        page_size: int,
        page_token: str,
    ) -> Page:
        """One page of rows matching ``where``, newest first; ``filters`` ties tokens to the query."""
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise invalid("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
        size = page_size or DEFAULT_PAGE_SIZE
        fingerprint = hash_key("\x00".join((self.noun, *filters)))[:16]
        created = self.table.c.create_time
        query = select(self.table).where(*where).order_by(created.desc(), self.id.desc()).limit(size + 1)
        if page_token:
            after_time, after_id = decode_page_token(page_token, fingerprint)
            query = query.where(
                tuple_(created, self.id) < tuple_(literal(after_time, UTCDateTime()), literal(after_id, String()))
            )
        async with self.errors("listing"), self.engine.connect() as conn:
            rows = [dict(row._mapping) for row in (await conn.execute(query)).all()]
        token = ""
        if len(rows) > size:
            last = rows[size - 1]
            token = encode_page_token(last["create_time"], last[self.id.key], fingerprint)
        return Page(rows=rows[:size], next_page_token=token)

    async def refuse_in_use(self, conn: AsyncConnection, column: Any, object_ids: Sequence[str], owned: str) -> None:
        """Refuse to delete objects that rows elsewhere still point at through ``column``.

        ``owned`` names those rows in the message ("keys"): deleting a team must not silently
        orphan or delete the keys that spend on it.
        """
        query = select(column).where(column.in_(set(object_ids))).limit(1)
        if (await conn.execute(query)).first() is not None:
            raise invalid(f"{self.noun}_ids", f"names a {self.name} that still has {owned}; remove them first")
