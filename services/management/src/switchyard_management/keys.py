"""Virtual keys: minted, read, listed, changed, deleted and regenerated, each change audited.

A key's secret ("sk-" followed by 43 URL-safe characters from :mod:`secrets`) exists only in the
response that creates or regenerates it. The database holds its SHA-256 hex digest (the key's
identity, ``key_hash``) and ``key_name``, "sk-...<last four>". Every admin change writes one
``audit_log`` row per changed key in the same transaction as the change, so the log and the keys
never disagree; its before/after images are the key's settings, never a secret.

Listing is newest first by ``(create_time, key_hash)``, with keyset page tokens like spend logs.
Every statement is built with SQLAlchemy Core, so every value is a bound parameter.

A key's owners are checked in the transaction that writes it (:func:`check_owners`): its
``team_id`` and ``user_id`` must exist, and a team that restricts models bounds the key's
``models`` (a key that names none gets the team's). A key minted for a user without a role of its
own takes the user's ``user_role``.
"""

from __future__ import annotations

import builtins
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any, cast

from google.protobuf import json_format
from sqlalchemy import ColumnElement, String, Table, delete, false, insert, literal, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchyard.auth.v1 import auth_service_pb2
from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import hash_key
from switchyard_management._records import (
    PER_MODEL_LIMITS,
    RATE_LIMITS,
    audit,
    duration_value,
    invalid,
    limit_value,
    models_value,
    money_value,
    parse_duration,
    per_model_value,
    reset_time,
    role_name,
    role_value,
    utc_now,
)
from switchyard_management.errors import database_errors
from switchyard_management.models import Team, User, UTCDateTime, VirtualKey
from switchyard_management.store import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    decode_page_token,
    encode_page_token,
    set_timestamp,
)

SECRET_PREFIX = "sk-"
SECRET_BYTES = 32
"""Random bytes in a secret: 256 bits, 43 URL-safe characters."""

__all__ = ["UPDATABLE_FIELDS", "KeyFilters", "KeyPage", "KeyStore", "Owner", "check_owners", "mint", "parse_duration"]

_TABLE = cast(Table, VirtualKey.__table__)
_COLUMNS = _TABLE.c
_TEAMS = cast(Table, Team.__table__)
_USERS = cast(Table, User.__table__)
_Role = auth_service_pb2.PrincipalRole

UPDATABLE_FIELDS = frozenset(
    {
        "key_alias",
        "models",
        "max_budget",
        "budget_duration",
        "tpm_limit",
        "rpm_limit",
        "max_parallel_requests",
        "expires",
        "blocked",
        "team_id",
        "user_id",
        "metadata",
        "spend",
        "role",
        "model_rpm_limit",
        "model_tpm_limit",
    }
)
"""Paths of ``Key`` an update mask may name; a field in the mask but unset in the message is cleared."""


@dataclass(frozen=True, slots=True)
class KeyFilters:
    """Which keys to list; empty fields do not filter."""

    team_id: str = ""
    user_id: str = ""
    key_alias: str = ""

    def fingerprint(self) -> str:
        return hash_key("\x00".join(("keys", self.team_id, self.user_id, self.key_alias)))[:16]


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose keys a caller who is not an admin may see: its own key, its user's, its teams'."""

    key_hash: str
    user_id: str = ""
    team_ids: frozenset[str] = frozenset()

    def owns(self, key: pb.Key) -> bool:
        return (
            key.key_hash == self.key_hash
            or bool(self.user_id and key.user_id == self.user_id)
            or key.team_id in self.team_ids
        )

    def condition(self) -> ColumnElement[bool]:
        """The same test as :meth:`owns`, as SQL."""
        clauses = [_COLUMNS.key_hash == self.key_hash]
        if self.user_id:
            clauses.append(_COLUMNS.user_id == self.user_id)
        if teams := self.team_ids - {""}:
            clauses.append(_COLUMNS.team_id.in_(teams))
        return or_(false(), *clauses)


@dataclass(frozen=True, slots=True)
class KeyPage:
    """One page of keys, newest first."""

    keys: list[pb.Key]
    next_page_token: str
    """Pass back to get the next page; empty on the last page."""


class KeyStore:
    """Virtual keys in the system of record; one per process, shared by all tasks.

    Database failures surface as ``service_unavailable``, invalid input as ``invalid_request``
    naming the field, unknown keys as ``not_found``. ``actor`` arguments are the caller's key hash,
    written to the audit log.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.healthy = False

    def _observe(self, ok: bool) -> None:
        self.healthy = ok

    async def create(self, key: pb.Key, duration: str, actor: str) -> tuple[str, pb.Key]:
        """Mint a key with ``key``'s settings; return ``(secret, stored key)``.

        ``key_hash``, ``key_name``, ``spend`` and the times in ``key`` are ignored. ``duration``
        (e.g. ``"30d"``) sets ``expires`` from now; it may not be combined with ``key.expires``.
        """
        async with database_errors("creating a key", self._observe), self._engine.begin() as conn:
            return await mint(conn, key, duration, actor)

    async def get(self, key_hash: str) -> pb.Key:
        """The key with ``key_hash``; ``not_found`` when there is none."""
        key = await self.lookup(key_hash)
        if key is None:
            raise _not_found()
        return key

    async def lookup(self, key_hash: str) -> pb.Key | None:
        """The key with ``key_hash``, or None."""
        if not key_hash:
            return None
        query = select(_TABLE).where(_COLUMNS.key_hash == key_hash)
        async with database_errors("looking up a key", self._observe), self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _key(row._mapping)

    async def list(
        self, filters: KeyFilters, page_size: int = 0, page_token: str = "", owner: Owner | None = None
    ) -> KeyPage:
        """One page of keys matching ``filters``, newest first (``page_size`` 0 means 100, at most 1000).

        With ``owner``, only the keys it owns (see :class:`Owner`).
        """
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise invalid("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
        size = page_size or DEFAULT_PAGE_SIZE
        fingerprint = filters.fingerprint()
        query = select(_TABLE).order_by(_COLUMNS.create_time.desc(), _COLUMNS.key_hash.desc()).limit(size + 1)
        if owner is not None:
            query = query.where(owner.condition())
        for name in ("team_id", "user_id", "key_alias"):
            if value := getattr(filters, name):
                query = query.where(_COLUMNS[name] == value)
        if page_token:
            after_time, after_hash = decode_page_token(page_token, fingerprint)
            query = query.where(
                tuple_(_COLUMNS.create_time, _COLUMNS.key_hash)
                < tuple_(literal(after_time, UTCDateTime()), literal(after_hash, String()))
            )
        async with database_errors("listing keys", self._observe), self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        keys = [_key(row._mapping) for row in rows[:size]]
        token = ""
        if len(rows) > size:
            last = rows[size - 1]
            token = encode_page_token(last.create_time, last.key_hash, fingerprint)
        return KeyPage(keys=keys, next_page_token=token)

    async def update(self, key: pb.Key, paths: Sequence[str], actor: str) -> pb.Key:
        """Set the fields named by ``paths`` (``Key`` field names) of the key ``key.key_hash`` names.

        A path outside :data:`UPDATABLE_FIELDS`, or none at all, is ``invalid_request`` on
        ``update_mask``. Changing ``budget_duration`` starts a new budget window now.
        """
        if not key.key_hash:
            raise invalid("key.key_hash", "is required")
        fields = set(paths)
        if not fields:
            raise invalid("update_mask", "must name at least one field")
        if unknown := sorted(fields - UPDATABLE_FIELDS):
            raise invalid("update_mask", f"names fields that cannot be changed: {', '.join(unknown)}")
        now = utc_now()
        changes = _settings(key, fields, now)
        if "budget_duration" in changes:
            changes["budget_reset_time"] = reset_time(changes["budget_duration"], now, "key.budget_duration")
        changes["update_time"] = now
        async with database_errors("updating a key", self._observe), self._engine.begin() as conn:
            before = await _locked(conn, key.key_hash)
            after = {**before, **changes}
            if fields & {"team_id", "user_id", "models"}:
                await check_owners(conn, after)
                changes["models"] = after["models"]
            await conn.execute(update(_TABLE).where(_COLUMNS.key_hash == key.key_hash).values(**changes))
            await audit(conn, now, actor, "update", "key", key.key_hash, before, after)
        return _key(after)

    async def delete(self, key_hashes: Sequence[str], key_aliases: Sequence[str], actor: str) -> builtins.list[str]:
        """Delete the named keys, all or none; return their hashes.

        Every hash must name a key and every alias at least one (all keys with that alias are
        deleted), else ``not_found`` and nothing changes.
        """
        hashes, aliases = set(key_hashes), set(key_aliases)
        if not hashes and not aliases:
            raise invalid("key_hashes", "or key_aliases must name at least one key")
        now = utc_now()
        async with database_errors("deleting keys", self._observe), self._engine.begin() as conn:
            query = select(_TABLE).where(or_(_COLUMNS.key_hash.in_(hashes), _COLUMNS.key_alias.in_(aliases)))
            rows = [dict(row._mapping) for row in (await conn.execute(query.with_for_update())).all()]
            if hashes - {row["key_hash"] for row in rows} or aliases - {row["key_alias"] for row in rows}:
                raise _not_found()
            deleted = sorted(row["key_hash"] for row in rows)
            await conn.execute(delete(_TABLE).where(_COLUMNS.key_hash.in_(deleted)))
            for row in rows:
                await audit(conn, now, actor, "delete", "key", row["key_hash"], row, None)
        return deleted

    async def regenerate(self, key_hash: str, actor: str) -> tuple[str, pb.Key]:
        """Give the key a new secret, keeping its settings and spend; the old secret stops working.

        Returns ``(new secret, key under its new hash)``; ``not_found`` for an unknown hash.
        """
        if not key_hash:
            raise invalid("key_hash", "is required")
        now = utc_now()
        secret = _new_secret()
        changes = {"key_hash": hash_key(secret), "key_name": _key_name(secret), "update_time": now}
        async with database_errors("regenerating a key", self._observe), self._engine.begin() as conn:
            before = await _locked(conn, key_hash)
            await conn.execute(update(_TABLE).where(_COLUMNS.key_hash == key_hash).values(**changes))
            after = {**before, **changes}
            await audit(conn, now, actor, "regenerate", "key", key_hash, before, after)
        return secret, _key(after)


async def _locked(conn: AsyncConnection, key_hash: str) -> dict[str, Any]:
    """The row of ``key_hash``, locked until the transaction ends (PostgreSQL; SQLite locks the file)."""
    query = select(_TABLE).where(_COLUMNS.key_hash == key_hash).with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise _not_found()
    return dict(row._mapping)


async def mint(conn: AsyncConnection, key: pb.Key, duration: str, actor: str) -> tuple[str, pb.Key]:
    """Mint a key in ``conn``'s transaction (see :meth:`KeyStore.create`); audited."""
    now = utc_now()
    row = _settings(key, set(UPDATABLE_FIELDS - {"spend"}), now)
    if duration:
        if key.HasField("expires"):
            raise invalid("duration", "cannot be combined with expires")
        row["expires"] = now + parse_duration(duration, "duration")
    user_role = await check_owners(conn, row)
    if key.role == _Role.PRINCIPAL_ROLE_UNSPECIFIED and user_role:
        row["role"] = user_role
    secret = _new_secret()
    row.update(
        key_hash=hash_key(secret),
        key_name=_key_name(secret),
        spend=0.0,
        create_time=now,
        update_time=now,
        budget_reset_time=reset_time(row["budget_duration"], now, "key.budget_duration"),
    )
    await conn.execute(insert(_TABLE), [row])
    await audit(conn, now, actor, "create", "key", row["key_hash"], None, row)
    return secret, _key(row)


async def check_owners(conn: AsyncConnection, row: dict[str, Any]) -> str:
    """Check a key row's ``team_id`` and ``user_id`` exist; bound its ``models`` by its team's.

    A team that restricts models gives a key that names none the team's models (in ``row``),
    and refuses a key naming a model outside them. Returns the user's ``user_role`` ("" without
    a user). Unknown owners are ``invalid_request`` naming ``key.team_id`` / ``key.user_id``.
    """
    user_role = ""
    if row["user_id"]:
        found = (await conn.execute(select(_USERS.c.user_role).where(_USERS.c.user_id == row["user_id"]))).first()
        if found is None:
            raise invalid("key.user_id", f"names no user: '{row['user_id']}'")
        user_role = found.user_role
    if row["team_id"]:
        team = (await conn.execute(select(_TEAMS.c.models).where(_TEAMS.c.team_id == row["team_id"]))).first()
        if team is None:
            raise invalid("key.team_id", f"names no team: '{row['team_id']}'")
        if team.models and not row["models"]:
            row["models"] = list(team.models)
        outside = [m for m in row["models"] if not any(fnmatchcase(m, allowed) for allowed in team.models)]
        if team.models and outside:
            raise invalid("key.models", f"names models its team does not allow: {', '.join(outside)}")
    return user_role


def _settings(key: pb.Key, fields: set[str], now: datetime) -> dict[str, Any]:
    """Column values for ``fields`` of ``key``, validated; unset optional fields become NULL."""
    values: dict[str, Any] = {}
    for name in ("key_alias", "team_id", "user_id", "blocked"):
        if name in fields:
            values[name] = getattr(key, name)
    if "models" in fields:
        values["models"] = models_value(key.models, "key.models")
    if "max_budget" in fields:
        values["max_budget"] = money_value(key, "max_budget", "key.max_budget")
    if "spend" in fields:
        if not math.isfinite(key.spend) or key.spend < 0:
            raise invalid("key.spend", "must be a non-negative number")
        values["spend"] = key.spend
    for name in RATE_LIMITS:
        if name in fields:
            values[name] = limit_value(key, name, f"key.{name}")
    for name in PER_MODEL_LIMITS:
        if name in fields:
            values[name] = per_model_value(getattr(key, name), f"key.{name}")
    if "budget_duration" in fields:
        values["budget_duration"] = duration_value(key.budget_duration, "key.budget_duration")
    if "expires" in fields:
        values["expires"] = _expires(key) if key.HasField("expires") else None
    if "metadata" in fields:
        values["metadata"] = json_format.MessageToDict(key.metadata)
    if "role" in fields:
        values["role"] = role_name(key.role, "key.role")
    return values


def _expires(key: pb.Key) -> datetime:
    try:
        return key.expires.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise invalid("key.expires", "is out of range") from None


def _key(row: Any) -> pb.Key:
    """The API view of a row (a mapping of column names)."""
    key = pb.Key(
        key_hash=row["key_hash"],
        key_name=row["key_name"],
        key_alias=row["key_alias"],
        models=row["models"],
        budget_duration=row["budget_duration"],
        blocked=row["blocked"],
        team_id=row["team_id"],
        user_id=row["user_id"],
        spend=row["spend"],
        role=role_value(row["role"]),
    )
    for name in ("max_budget", *RATE_LIMITS):
        if row[name] is not None:
            setattr(key, name, row[name])
    for name in PER_MODEL_LIMITS:
        getattr(key, name).update(row[name] or {})
    if row["metadata"]:
        key.metadata.update(row["metadata"])
    for name in ("expires", "create_time", "budget_reset_time"):
        if row[name] is not None:
            set_timestamp(getattr(key, name), row[name])
    return key


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def _key_name(secret: str) -> str:
    return f"{SECRET_PREFIX}...{secret[-4:]}"


def _not_found() -> SwitchyardError:
    return SwitchyardError("not_found", "No such key.")
