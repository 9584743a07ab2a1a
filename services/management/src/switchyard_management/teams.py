"""Organizations, teams and team memberships in the system of record, each change audited.

An organization owns teams; a team groups keys and users under shared models and limits; a
membership ``(team_id, user_id)`` gives a user a role (``admin`` or ``user``) in one team. The
memberships are what tenancy reads: an internal user sees the teams it belongs to and their keys
(:mod:`switchyard_management.scope`).

Deleting is conservative: an organization that still has teams, or a team that still owns keys,
is refused (``invalid_request``), so nothing that spends money is orphaned or silently removed.
A team's memberships go with it.

Audit rows: ``organization`` and ``team`` for the objects, ``team_membership`` (object id
``<team_id>/<user_id>``) for memberships. ``spend`` and ``budget_reset_time`` are read-only here.
"""

from __future__ import annotations

import builtins
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from google.protobuf import json_format
from sqlalchemy import ColumnElement, Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_management._records import (
    Page,
    Records,
    audit,
    fill_limits,
    invalid,
    limit_columns,
    models_value,
    new_id,
    new_limit_columns,
    not_found,
    split_mask,
    utc_now,
)
from switchyard_management.models import Organization, Team, TeamMembership, User, VirtualKey
from switchyard_management.store import set_timestamp

__all__ = [
    "ORGANIZATION_FIELDS",
    "TEAM_FIELDS",
    "OrganizationStore",
    "TeamStore",
    "fill_common",
    "join_teams",
    "memberships",
    "settings",
]

ORGANIZATION_FIELDS = frozenset({"organization_alias", "models", "metadata", "limits"})
"""Paths of ``Organization`` an update mask may name (``limits.<field>`` too)."""

TEAM_FIELDS = frozenset({"team_alias", "organization_id", "models", "blocked", "metadata", "limits"})
"""Paths of ``Team`` an update mask may name (``limits.<field>`` too)."""

_ORGS = cast(Table, Organization.__table__)
_TEAMS = cast(Table, Team.__table__)
_MEMBERS = cast(Table, TeamMembership.__table__)
_USERS = cast(Table, User.__table__)
_KEYS = cast(Table, VirtualKey.__table__)
_TEAM_ROLES = {pb.TEAM_ROLE_UNSPECIFIED: "user", pb.TEAM_ROLE_USER: "user", pb.TEAM_ROLE_ADMIN: "admin"}
_TEAM_ROLE_VALUES = {"user": pb.TEAM_ROLE_USER, "admin": pb.TEAM_ROLE_ADMIN}


def settings(message: Any, fields: Iterable[str], noun: str) -> dict[str, Any]:
    """Column values of the plain ``fields`` of an organization, team or user message, validated."""
    values: dict[str, Any] = {}
    for name in fields:
        if name == "models":
            values[name] = models_value(message.models, f"{noun}.models")
        elif name == "metadata":
            values[name] = json_format.MessageToDict(message.metadata)
        else:
            values[name] = getattr(message, name)
    return values


class OrganizationStore:
    """Organizations; one per process, shared by all tasks. ``actor`` is the caller's key hash."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.records = Records(engine, _ORGS, "organization_id", "organization")

    async def create(self, organization: pb.Organization, actor: str) -> pb.Organization:
        """Store a new organization; its id is generated when empty."""
        at = utc_now()
        row = {
            "organization_id": new_id(organization.organization_id, "organization.organization_id"),
            **settings(organization, ORGANIZATION_FIELDS - {"limits"}, "organization"),
            **new_limit_columns(organization.limits, "organization.limits", at),
        }
        async with self.records.errors("creating"), self.records.engine.begin() as conn:
            await self.records.insert(conn, row, actor)
        return _organization(row)

    async def get(self, organization_id: str) -> pb.Organization:
        async with self.records.errors("reading"), self.records.engine.connect() as conn:
            return _organization(await self.records.get(conn, organization_id))

    async def list(self, page_size: int, page_token: str) -> tuple[list[pb.Organization], str]:
        page = await self.records.page([], [], page_size, page_token)
        return [_organization(row) for row in page.rows], page.next_page_token

    async def update(self, organization: pb.Organization, paths: Sequence[str], actor: str) -> pb.Organization:
        """Set the fields ``paths`` names; ``not_found`` for an unknown id."""
        fields, limits = split_mask(paths, ORGANIZATION_FIELDS)
        at = utc_now()
        changes = {
            **settings(organization, fields, "organization"),
            **limit_columns(organization.limits, limits, "organization.limits", at),
        }
        async with self.records.errors("updating"), self.records.engine.begin() as conn:
            row = await self.records.change(conn, organization.organization_id, changes, actor, at)
        return _organization(row)

    async def delete(self, organization_ids: Sequence[str], actor: str) -> builtins.list[str]:
        """Delete organizations, all or none; one that still has teams is refused."""
        async with self.records.errors("deleting"), self.records.engine.begin() as conn:
            await self.records.refuse_in_use(conn, _TEAMS.c.organization_id, organization_ids, "teams")
            return await self.records.remove(conn, organization_ids, actor, utc_now())


class TeamStore:
    """Teams and their memberships; one per process, shared by all tasks.

    ``actor`` arguments are the caller's key hash, written to the audit log.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.records = Records(engine, _TEAMS, "team_id", "team")

    async def create(self, team: pb.Team, actor: str) -> pb.Team:
        """Store a new team (without members); its id is generated when empty."""
        at = utc_now()
        row = {
            "team_id": new_id(team.team_id, "team.team_id"),
            **settings(team, TEAM_FIELDS - {"limits"}, "team"),
            **new_limit_columns(team.limits, "team.limits", at),
        }
        async with self.records.errors("creating"), self.records.engine.begin() as conn:
            await _check_organization(conn, row)
            await self.records.insert(conn, row, actor)
        return _team(row, [])

    async def get(self, team_id: str) -> pb.Team:
        """The team with its members; ``not_found`` when there is none."""
        async with self.records.errors("reading"), self.records.engine.connect() as conn:
            row = await self.records.get(conn, team_id)
            return (await _with_members(conn, [row]))[0]

    async def list(
        self,
        page_size: int,
        page_token: str,
        *,
        organization_id: str = "",
        user_id: str = "",
        visible: frozenset[str] | None = None,
    ) -> tuple[list[pb.Team], str]:
        """A page of teams, newest first: of ``organization_id``, with member ``user_id``, among ``visible``."""
        columns = _TEAMS.c
        where: list[ColumnElement[bool]] = []
        if organization_id:
            where.append(columns.organization_id == organization_id)
        if user_id:
            where.append(columns.team_id.in_(select(_MEMBERS.c.team_id).where(_MEMBERS.c.user_id == user_id)))
        if visible is not None:
            where.append(columns.team_id.in_(visible))
        filters = [organization_id, user_id, ",".join(sorted(visible or ()))]
        page: Page = await self.records.page(where, filters, page_size, page_token)
        async with self.records.errors("reading"), self.records.engine.connect() as conn:
            return await _with_members(conn, page.rows), page.next_page_token

    async def update(self, team: pb.Team, paths: Sequence[str], actor: str) -> pb.Team:
        """Set the fields ``paths`` names; ``not_found`` for an unknown id.

        Keys already in the team keep their models: narrowing a team's models bounds new keys,
        and model access at call time is the auth service's.
        """
        fields, limits = split_mask(paths, TEAM_FIELDS)
        at = utc_now()
        changes = {**settings(team, fields, "team"), **limit_columns(team.limits, limits, "team.limits", at)}
        async with self.records.errors("updating"), self.records.engine.begin() as conn:
            if "organization_id" in changes:
                await _check_organization(conn, changes)
            row = await self.records.change(conn, team.team_id, changes, actor, at)
            return (await _with_members(conn, [row]))[0]

    async def delete(self, team_ids: Sequence[str], actor: str) -> builtins.list[str]:
        """Delete teams and their memberships, all or none; a team that still owns keys is refused."""
        at = utc_now()
        async with self.records.errors("deleting"), self.records.engine.begin() as conn:
            await self.records.refuse_in_use(conn, _KEYS.c.team_id, team_ids, "keys")
            members = (await conn.execute(select(_MEMBERS).where(_MEMBERS.c.team_id.in_(set(team_ids))))).all()
            await conn.execute(delete(_MEMBERS).where(_MEMBERS.c.team_id.in_(set(team_ids))))
            for member in members:
                await _audit_member(conn, at, actor, "delete", dict(member._mapping), None)
            return await self.records.remove(conn, team_ids, actor, at)

    async def add_members(self, team_id: str, members: Sequence[pb.TeamMember], actor: str) -> pb.Team:
        """Add users to the team, or change the role of those already in it; the team after."""
        if not members:
            raise invalid("members", "must name at least one user")
        at = utc_now()
        async with self.records.errors("updating"), self.records.engine.begin() as conn:
            team = await self.records.get(conn, team_id, lock=True)
            for index, member in enumerate(members):
                await _put_member(conn, team_id, member, f"members[{index}]", actor, at)
            return (await _with_members(conn, [team]))[0]

    async def remove_members(self, team_id: str, user_ids: Sequence[str], actor: str) -> pb.Team:
        """Remove users from the team, all or none (``not_found`` if one is not a member)."""
        if not user_ids:
            raise invalid("user_ids", "must name at least one user")
        at = utc_now()
        async with self.records.errors("updating"), self.records.engine.begin() as conn:
            team = await self.records.get(conn, team_id, lock=True)
            query = select(_MEMBERS).where(_MEMBERS.c.team_id == team_id, _MEMBERS.c.user_id.in_(set(user_ids)))
            rows = [dict(row._mapping) for row in (await conn.execute(query)).all()]
            if set(user_ids) - {row["user_id"] for row in rows}:
                raise not_found("team member")
            await conn.execute(
                delete(_MEMBERS).where(_MEMBERS.c.team_id == team_id, _MEMBERS.c.user_id.in_(set(user_ids)))
            )
            for row in rows:
                await _audit_member(conn, at, actor, "delete", row, None)
            return (await _with_members(conn, [team]))[0]

    async def teams_of(self, user_id: str) -> frozenset[str]:
        """Ids of the teams ``user_id`` belongs to."""
        if not user_id:
            return frozenset()
        async with self.records.errors("reading"), self.records.engine.connect() as conn:
            return await memberships(conn, user_id)


async def memberships(conn: AsyncConnection, user_id: str) -> frozenset[str]:
    query = select(_MEMBERS.c.team_id).where(_MEMBERS.c.user_id == user_id)
    return frozenset((await conn.execute(query)).scalars().all())


async def join_teams(conn: AsyncConnection, user_id: str, team_ids: Sequence[str], actor: str, at: datetime) -> None:
    """Make a new user a plain member of ``team_ids`` (each must exist: ``user.team_ids``)."""
    for team_id in dict.fromkeys(team_ids):
        await _put_member(conn, team_id, pb.TeamMember(user_id=user_id), "user.team_ids", actor, at)


async def _put_member(
    conn: AsyncConnection, team_id: str, member: pb.TeamMember, param: str, actor: str, at: datetime
) -> None:
    if member.role not in _TEAM_ROLES:
        raise invalid(f"{param}.role", "must be admin or user")
    if not (await conn.execute(select(_TEAMS.c.team_id).where(_TEAMS.c.team_id == team_id))).first():
        raise invalid(param, f"names no team: '{team_id}'")
    if not (await conn.execute(select(_USERS.c.user_id).where(_USERS.c.user_id == member.user_id))).first():
        raise invalid(f"{param}.user_id", f"names no user: '{member.user_id}'")
    key = (_MEMBERS.c.team_id == team_id, _MEMBERS.c.user_id == member.user_id)
    found = (await conn.execute(select(_MEMBERS).where(*key).with_for_update())).first()
    row = {"team_id": team_id, "user_id": member.user_id, "role": _TEAM_ROLES[member.role], "create_time": at}
    if found is None:
        await conn.execute(insert(_MEMBERS), [row])
        await _audit_member(conn, at, actor, "create", None, row)
    elif found.role != row["role"]:
        before = dict(found._mapping)
        await conn.execute(update(_MEMBERS).where(*key).values(role=row["role"]))
        await _audit_member(conn, at, actor, "update", before, {**before, "role": row["role"]})


async def _audit_member(conn: AsyncConnection, at: datetime, actor: str, action: str, before: Any, after: Any) -> None:
    row = after or before
    await audit(conn, at, actor, action, "team_membership", f"{row['team_id']}/{row['user_id']}", before, after)


async def _check_organization(conn: AsyncConnection, row: dict[str, Any]) -> None:
    """An empty organization id is stored as NULL; a set one must name an organization."""
    organization_id = row["organization_id"] or None
    row["organization_id"] = organization_id
    if organization_id is None:
        return
    query = select(_ORGS.c.organization_id).where(_ORGS.c.organization_id == organization_id)
    if (await conn.execute(query)).first() is None:
        raise invalid("team.organization_id", f"names no organization: '{organization_id}'")


async def _with_members(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[pb.Team]:
    members: dict[str, list[pb.TeamMember]] = defaultdict(list)
    if rows:
        ids = {row["team_id"] for row in rows}
        query = select(_MEMBERS).where(_MEMBERS.c.team_id.in_(ids)).order_by(_MEMBERS.c.create_time, _MEMBERS.c.user_id)
        for member in (await conn.execute(query)).all():
            item = pb.TeamMember(user_id=member.user_id, role=_TEAM_ROLE_VALUES.get(member.role, pb.TEAM_ROLE_USER))
            set_timestamp(item.create_time, member.create_time)
            members[member.team_id].append(item)
    return [_team(row, members[row["team_id"]]) for row in rows]


def fill_common(message: Any, row: dict[str, Any]) -> Any:
    """Fill the parts organizations, teams and users share: models, limits, metadata, times."""
    message.models.extend(row["models"])
    fill_limits(message.limits, row)
    if row["metadata"]:
        message.metadata.update(row["metadata"])
    set_timestamp(message.create_time, row["create_time"])
    set_timestamp(message.update_time, row["update_time"])
    return message


def _organization(row: dict[str, Any]) -> pb.Organization:
    message = pb.Organization(organization_id=row["organization_id"], organization_alias=row["organization_alias"])
    return cast(pb.Organization, fill_common(message, row))


def _team(row: dict[str, Any], members: list[pb.TeamMember]) -> pb.Team:
    message = pb.Team(
        team_id=row["team_id"],
        team_alias=row["team_alias"],
        organization_id=row["organization_id"] or "",
        blocked=row["blocked"],
        members=members,
    )
    return cast(pb.Team, fill_common(message, row))
