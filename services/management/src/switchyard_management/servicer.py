"""gRPC surface of the management service: authorize the caller, unpack, call the store, pack."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf import timestamp_pb2

from switchyard.auth.v1.auth_service_pb2 import Principal
from switchyard.management.v1 import management_service_pb2 as pb
from switchyard_core.errors import SwitchyardError
from switchyard_core.key_events import KeyEventPublisher
from switchyard_core.model_access import model_allowed
from switchyard_management.access import AdminGate, is_admin_or_viewer
from switchyard_management.daily_spend import ReportQuery, SpendReports
from switchyard_management.keys import KeyFilters, KeyStore
from switchyard_management.model_store import ModelStore
from switchyard_management.scope import Scope, ScopeGate
from switchyard_management.store import SpendFilters, SpendPage, SpendStore
from switchyard_management.tenancy_servicer import TenancyServicer, TenancyStores

WRITE_SPEND_LOGS = "management.WriteSpendLogs"
LIST_SPEND_LOGS = "management.ListSpendLogs"
CREATE_KEY = "management.CreateKey"
GET_KEY = "management.GetKey"
LIST_KEYS = "management.ListKeys"
UPDATE_KEY = "management.UpdateKey"
DELETE_KEY = "management.DeleteKey"
REGENERATE_KEY = "management.RegenerateKey"
LOOKUP_KEY = "management.LookupKey"
LOOKUP_END_USER = "management.LookupEndUser"
LOOKUP_OWNERS = "management.LookupOwners"
CREATE_MODEL = "management.CreateModel"
DELETE_MODEL = "management.DeleteModel"
LIST_MODELS = "management.ListModels"
LIST_DEPLOYMENTS = "management.ListDeployments"
GET_SPEND_REPORT = "management.GetSpendReport"

_Message = TypeVar("_Message")


class ManagementServicer(TenancyServicer):
    """Admin RPCs need a proxy admin; ``GetKey`` and ``ListKeys`` serve every caller its scope.

    A viewer reads every key; an internal user its own key, its user's keys and its teams' keys
    (:mod:`switchyard_management.scope`). ``GetKey`` of any other key is ``not_found``, exactly
    like an unknown hash, so keys cannot be probed for existence. The tenancy RPCs are
    :class:`TenancyServicer`'s.
    """

    def __init__(
        self,
        gate: AdminGate,
        spend: SpendStore,
        keys: KeyStore,
        tenancy: TenancyStores,
        models: ModelStore,
        reports: SpendReports,
        events: KeyEventPublisher | None = None,
    ) -> None:
        super().__init__(ScopeGate(gate, tenancy.teams), tenancy, events)
        self._gate = gate
        self._spend = spend
        self._keys = keys
        self._models = models
        self._reports = reports

    async def WriteSpendLogs(self, request: pb.WriteSpendLogsRequest, context: Any) -> pb.WriteSpendLogsResponse:
        inserted, duplicates = await self._serve(
            context, self._gate.require_admin(context, WRITE_SPEND_LOGS), lambda _: self._spend.write(request.records)
        )
        return pb.WriteSpendLogsResponse(inserted=inserted, duplicates=duplicates)

    async def ListSpendLogs(self, request: pb.ListSpendLogsRequest, context: Any) -> pb.ListSpendLogsResponse:
        async def work(_: Principal) -> SpendPage:
            filters = SpendFilters(
                key_hash=request.key_hash,
                request_id=request.request_id,
                start_time=_time(request, "start_time"),
                end_time=_time(request, "end_time"),
            )
            return await self._spend.list(filters, request.page_size, request.page_token)

        page = await self._serve(context, self._gate.require_admin(context, LIST_SPEND_LOGS), work)
        return pb.ListSpendLogsResponse(logs=page.logs, next_page_token=page.next_page_token)

    async def CreateKey(self, request: pb.CreateKeyRequest, context: Any) -> pb.CreateKeyResponse:
        secret, key = await self._serve(
            context,
            self._gate.require_admin(context, CREATE_KEY),
            lambda admin: self._keys.create(request.key, request.duration, admin.key_hash),
        )
        return pb.CreateKeyResponse(secret=secret, key=key)

    async def GetKey(self, request: pb.GetKeyRequest, context: Any) -> pb.GetKeyResponse:
        async def work(scope: Scope) -> pb.Key:
            key = await self._keys.get(request.key_hash or scope.principal.key_hash)
            owner = scope.key_owner()
            if owner is not None and not owner.owns(key):
                raise SwitchyardError("not_found", "No such key.")
            return key

        return pb.GetKeyResponse(key=await self._serve(context, self._scopes.reader(context, GET_KEY), work))

    async def ListKeys(self, request: pb.ListKeysRequest, context: Any) -> pb.ListKeysResponse:
        filters = KeyFilters(team_id=request.team_id, user_id=request.user_id, key_alias=request.key_alias)
        page = await self._serve(
            context,
            self._scopes.reader(context, LIST_KEYS),
            lambda scope: self._keys.list(filters, request.page_size, request.page_token, scope.key_owner()),
        )
        return pb.ListKeysResponse(keys=page.keys, next_page_token=page.next_page_token)

    async def UpdateKey(self, request: pb.UpdateKeyRequest, context: Any) -> pb.UpdateKeyResponse:
        key = await self._serve(
            context,
            self._gate.require_admin(context, UPDATE_KEY),
            lambda admin: self._keys.update(request.key, list(request.update_mask.paths), admin.key_hash),
        )
        await self._events.publish([key.key_hash])
        return pb.UpdateKeyResponse(key=key)

    async def DeleteKey(self, request: pb.DeleteKeyRequest, context: Any) -> pb.DeleteKeyResponse:
        deleted = await self._serve(
            context,
            self._gate.require_admin(context, DELETE_KEY),
            lambda admin: self._keys.delete(request.key_hashes, request.key_aliases, admin.key_hash),
        )
        await self._events.publish(deleted)
        return pb.DeleteKeyResponse(deleted_key_hashes=deleted)

    async def RegenerateKey(self, request: pb.RegenerateKeyRequest, context: Any) -> pb.RegenerateKeyResponse:
        secret, key = await self._serve(
            context,
            self._gate.require_admin(context, REGENERATE_KEY),
            lambda admin: self._keys.regenerate(request.key_hash, admin.key_hash),
        )
        await self._events.publish([request.key_hash])  # the old secret stops working everywhere
        return pb.RegenerateKeyResponse(secret=secret, key=key)

    async def LookupKey(self, request: pb.LookupKeyRequest, context: Any) -> pb.LookupKeyResponse:
        async def work(_: Principal) -> pb.LookupKeyResponse:
            key = await self._keys.lookup(request.key_hash)
            if key is None:
                return pb.LookupKeyResponse(found=False)
            answer = pb.LookupKeyResponse(found=True, key=key)
            # The owners' limits and budgets apply to the key's requests too.
            await self._add_owners(answer, key.team_id, key.user_id)
            return answer

        return await self._serve(context, self._gate.require_admin(context, LOOKUP_KEY), work)

    async def LookupOwners(self, request: pb.LookupOwnersRequest, context: Any) -> pb.LookupOwnersResponse:
        async def work(_: Principal) -> pb.LookupOwnersResponse:
            answer = pb.LookupOwnersResponse()
            await self._add_owners(answer, request.team_id, request.user_id)
            return answer

        return await self._serve(context, self._gate.require_admin(context, LOOKUP_OWNERS), work)

    async def _add_owners(
        self, answer: pb.LookupKeyResponse | pb.LookupOwnersResponse, team_id: str, user_id: str
    ) -> None:
        """Fill in the team (with its organization) and the user that exist."""
        if team_id and (team := await _found(self._teams.get(team_id))) is not None:
            answer.team.CopyFrom(team)
            if team.organization_id and (org := await _found(self._organizations.get(team.organization_id))):
                answer.organization.CopyFrom(org)
        if user_id and (user := await _found(self._users.get(user_id))) is not None:
            answer.user.CopyFrom(user)

    async def LookupEndUser(self, request: pb.LookupEndUserRequest, context: Any) -> pb.LookupEndUserResponse:
        async def work(_: Principal) -> pb.EndUser | None:
            return await _found(self._end_users.get(request.end_user_id)) if request.end_user_id else None

        end_user = await self._serve(context, self._gate.require_admin(context, LOOKUP_END_USER), work)
        if end_user is None:
            return pb.LookupEndUserResponse(found=False)
        return pb.LookupEndUserResponse(found=True, end_user=end_user)

    # -- models stored in the database and spend reports --------------------------------------

    async def CreateModel(self, request: pb.CreateModelRequest, context: Any) -> pb.CreateModelResponse:
        model = await self._serve(
            context,
            self._gate.require_admin(context, CREATE_MODEL),
            lambda admin: self._models.create(request.model, admin.key_hash),
        )
        return pb.CreateModelResponse(model=model)

    async def DeleteModel(self, request: pb.DeleteModelRequest, context: Any) -> pb.DeleteModelResponse:
        model_id = await self._serve(
            context,
            self._gate.require_admin(context, DELETE_MODEL),
            lambda admin: self._models.delete(request.model_id, admin.key_hash),
        )
        return pb.DeleteModelResponse(model_id=model_id)

    async def ListModels(self, request: pb.ListModelsRequest, context: Any) -> pb.ListModelsResponse:
        async def work(caller: Principal) -> list[pb.ModelDeployment]:
            everything = is_admin_or_viewer(caller)
            allowed = list(caller.models)
            return await self._models.visible(
                lambda name: everything or model_allowed(name, allowed), request.model_name
            )

        models = await self._serve(context, self._gate.authenticate(context, LIST_MODELS), work)
        return pb.ListModelsResponse(models=models)

    async def ListDeployments(self, request: pb.ListDeploymentsRequest, context: Any) -> pb.ListDeploymentsResponse:
        models = await self._serve(
            context, self._gate.require_admin(context, LIST_DEPLOYMENTS), lambda _: self._models.deployments()
        )
        return pb.ListDeploymentsResponse(models=models)

    async def GetSpendReport(self, request: pb.GetSpendReportRequest, context: Any) -> pb.GetSpendReportResponse:
        async def work(caller: Principal) -> list[pb.SpendReportRow]:
            if not is_admin_or_viewer(caller):
                raise SwitchyardError("forbidden", f"Only proxy admins and admin viewers may call {GET_SPEND_REPORT}.")
            return await self._reports.report(ReportQuery.parse(request))

        rows = await self._serve(context, self._gate.authenticate(context, GET_SPEND_REPORT), work)
        return pb.GetSpendReportResponse(rows=rows)


def _time(request: pb.ListSpendLogsRequest, name: str) -> datetime | None:
    if not request.HasField(name):
        return None
    value: timestamp_pb2.Timestamp = getattr(request, name)
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise SwitchyardError("invalid_request", f"{name} is out of range.", param=name) from None


async def _found(read: Awaitable[_Message]) -> _Message | None:
    """The object ``read`` returns, or None when it is ``not_found``."""
    try:
        return await read
    except SwitchyardError as exc:
        if exc.reason == "not_found":
            return None
        raise
