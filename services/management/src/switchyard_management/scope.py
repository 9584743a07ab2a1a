"""What a caller may read and write: its role, its user and the teams it belongs to.

    role                    reads                                               writes
    PROXY_ADMIN             everything                                          everything
    PROXY_ADMIN_VIEWER      everything                                          nothing (forbidden)
    INTERNAL_USER(_VIEWER)  its own user, its teams, its own and its teams' keys nothing (forbidden)

A caller's teams are the team of its key plus every team its user is a member of, read from the
memberships on each call (so removing a member takes effect at once). Anything outside a
caller's scope is answered exactly like an object that does not exist (``not_found``), so ids
cannot be probed; lists only contain what the caller may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from switchyard.auth.v1 import auth_service_pb2
from switchyard_core.grpc_util import remaining
from switchyard_management.access import AdminGate
from switchyard_management.errors import DATABASE_TIMEOUT, database_deadline
from switchyard_management.keys import Owner
from switchyard_management.teams import TeamStore

__all__ = ["Scope", "ScopeGate"]

_Role = auth_service_pb2.PrincipalRole
_READS_ALL = frozenset({_Role.PRINCIPAL_ROLE_PROXY_ADMIN, _Role.PRINCIPAL_ROLE_PROXY_ADMIN_VIEWER})


@dataclass(frozen=True, slots=True)
class Scope:
    """One caller's view of the tenancy objects."""

    principal: auth_service_pb2.Principal
    reads_all: bool
    team_ids: frozenset[str]
    """Teams a caller that does not read everything may see."""

    @property
    def user_id(self) -> str:
        return self.principal.user_id

    def sees_team(self, team_id: str) -> bool:
        return self.reads_all or team_id in self.team_ids

    def sees_user(self, user_id: str) -> bool:
        return self.reads_all or bool(user_id and user_id == self.user_id)

    def visible_teams(self) -> frozenset[str] | None:
        """Teams a list may contain; None means all."""
        return None if self.reads_all else self.team_ids

    def key_owner(self) -> Owner | None:
        """Whose keys a list may contain; None means all."""
        if self.reads_all:
            return None
        return Owner(key_hash=self.principal.key_hash, user_id=self.user_id, team_ids=self.team_ids)


class ScopeGate:
    """Turns a call's credential into a :class:`Scope`; writes need a proxy admin (``forbidden``)."""

    def __init__(self, gate: AdminGate, teams: TeamStore) -> None:
        self._gate = gate
        self._teams = teams

    async def reader(self, context: Any, operation: str) -> Scope:
        """The caller's scope; raises what ``AdminGate.authenticate`` raises."""
        principal = await self._gate.authenticate(context, operation)
        if principal.role in _READS_ALL:
            return Scope(principal, reads_all=True, team_ids=frozenset())
        async with database_deadline(remaining(context, DATABASE_TIMEOUT)):
            teams = await self._teams.teams_of(principal.user_id)
        return Scope(principal, reads_all=False, team_ids=(teams | {principal.team_id}) - {""})

    async def writer(self, context: Any, operation: str) -> str:
        """The key hash of a proxy-admin caller (the audit log's actor), else ``forbidden``."""
        return (await self._gate.require_admin(context, operation)).key_hash
