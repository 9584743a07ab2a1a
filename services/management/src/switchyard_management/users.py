"""Users in the system of record: created (optionally with a first key), read, listed, changed, deleted.

A user's ``user_role`` (``proxy_admin``, ``proxy_admin_viewer``, ``internal_user`` by default,
``internal_user_viewer``) is what a key minted for the user gets when the key names no role of its
own. Creating a user can join it to teams and mint its first key in the same transaction as the
user row, as LiteLLM's ``/user/new`` does, so a failure leaves neither behind.

A user that still owns keys cannot be deleted (``invalid_request``); its memberships go with it.
Every change writes one ``audit_log`` row (``user``) in the same transaction.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_management._records import (
    Records,
    limit_columns,
    new_id,
    new_limit_columns,
    role_name,
    role_value,
    split_mask,
    utc_now,
)
from switchyard_management.keys import mint
from switchyard_management.models import TeamMembership, User, VirtualKey
from switchyard_management.teams import fill_common, join_teams, memberships, settings

__all__ = ["USER_FIELDS", "UserStore"]

USER_FIELDS = frozenset({"user_email", "user_alias", "user_role", "models", "metadata", "limits"})
"""Paths of ``User`` an update mask may name (``limits.<field>`` too)."""

_USERS = cast(Table, User.__table__)
_MEMBERS = cast(Table, TeamMembership.__table__)
_KEYS = cast(Table, VirtualKey.__table__)


class UserStore:
    """Users; one per process, shared by all tasks. ``actor`` is the caller's key hash."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.records = Records(engine, _USERS, "user_id", "user")

    async def create(
        self, user: pb.User, actor: str, key: pb.Key | None = None, key_duration: str = ""
    ) -> tuple[pb.User, str, pb.Key | None]:
        """Store a new user, join it to ``user.team_ids``, and mint it a key when ``key`` is given.

        Returns ``(user, secret, key)``; the secret is "" and the key None without ``key``. The
        key belongs to the user and takes its role unless ``key.role`` is set.
        """
        at = utc_now()
        row = {
            "user_id": new_id(user.user_id, "user.user_id"),
            **_user_settings(user, USER_FIELDS - {"limits"}),
            **new_limit_columns(user.limits, "user.limits", at),
        }
        secret, minted = "", None
        async with self.records.errors("creating"), self.records.engine.begin() as conn:
            await self.records.insert(conn, row, actor)
            await join_teams(conn, row["user_id"], user.team_ids, actor, at)
            if key is not None:
                wanted = pb.Key()
                wanted.CopyFrom(key)
                wanted.user_id = row["user_id"]
                secret, minted = await mint(conn, wanted, key_duration, actor)
            return await _user(conn, row), secret, minted

    async def get(self, user_id: str) -> pb.User:
        """The user with its teams; ``not_found`` when there is none."""
        async with self.records.errors("reading"), self.records.engine.connect() as conn:
            return await _user(conn, await self.records.get(conn, user_id))

    async def list(
        self, page_size: int, page_token: str, *, role: int = 0, team_id: str = "", only: str | None = None
    ) -> tuple[builtins.list[pb.User], str]:
        """A page of users, newest first: with ``role``, in ``team_id``, or just the user ``only``."""
        columns = _USERS.c
        where: list[ColumnElement[bool]] = []
        if role:
            where.append(columns.user_role == role_name(role, "user_role"))
        if team_id:
            where.append(columns.user_id.in_(select(_MEMBERS.c.user_id).where(_MEMBERS.c.team_id == team_id)))
        if only is not None:
            where.append(columns.user_id == only)
        page = await self.records.page(where, [str(role), team_id, str(only)], page_size, page_token)
        async with self.records.errors("reading"), self.records.engine.connect() as conn:
            return [await _user(conn, row) for row in page.rows], page.next_page_token

    async def update(self, user: pb.User, paths: Sequence[str], actor: str) -> pb.User:
        """Set the fields ``paths`` names; ``not_found`` for an unknown id.

        A new ``user_role`` applies to keys minted afterwards; existing keys keep their role.
        """
        fields, limits = split_mask(paths, USER_FIELDS)
        at = utc_now()
        changes = {**_user_settings(user, fields), **limit_columns(user.limits, limits, "user.limits", at)}
        async with self.records.errors("updating"), self.records.engine.begin() as conn:
            return await _user(conn, await self.records.change(conn, user.user_id, changes, actor, at))

    async def delete(self, user_ids: Sequence[str], actor: str) -> builtins.list[str]:
        """Delete users and their memberships, all or none; a user that still owns keys is refused."""
        async with self.records.errors("deleting"), self.records.engine.begin() as conn:
            await self.records.refuse_in_use(conn, _KEYS.c.user_id, user_ids, "keys")
            await conn.execute(delete(_MEMBERS).where(_MEMBERS.c.user_id.in_(set(user_ids))))
            return await self.records.remove(conn, user_ids, actor, utc_now())


def _user_settings(user: pb.User, fields: set[str] | frozenset[str]) -> dict[str, Any]:
    values = settings(user, fields - {"user_role"}, "user")
    if "user_role" in fields:
        values["user_role"] = role_name(user.user_role, "user.user_role")
    return values


async def _user(conn: AsyncConnection, row: dict[str, Any]) -> pb.User:
    user = pb.User(
        user_id=row["user_id"],
        user_email=row["user_email"],
        user_alias=row["user_alias"],
        user_role=role_value(row["user_role"]),
        team_ids=sorted(await memberships(conn, row["user_id"])),
    )
    return cast(pb.User, fill_common(user, row))
