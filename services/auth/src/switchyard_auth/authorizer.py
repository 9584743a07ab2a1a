"""Admission decisions: key -> principal.

Three kinds of credential:

- the master key (``general_settings.master_key``), compared in constant time: a proxy admin;
- with ``enable_jwt_auth``, JWT bearer tokens, checked by a
  :class:`~switchyard_auth.jwt_auth.JwtAuthenticator` (only credentials shaped like a JWT);
- virtual keys, minted through ManagementService: the presented key is hashed and the hash looked
  up through a :class:`~switchyard_auth.key_cache.KeyCache`. A hash is never accepted as a
  credential: whatever is presented is hashed first.

Refusals: a missing or unknown key is ``invalid_api_key``, a blocked key ``key_blocked``, a key
past its ``expires`` ``key_expired`` (all 401); a request for a model outside the key's
``models`` is ``model_not_allowed`` (403). When the key cannot be checked (management unreachable
and the key not cached) the answer is ``service_unavailable`` (503).

Limits and budgets: a virtual key's ``rpm_limit``, ``tpm_limit``, ``max_parallel_requests`` and
``max_budget`` (see :mod:`switchyard_auth.scopes`) are checked last for requests that call a model
(a non-empty ``model``), by a :class:`~switchyard_auth.limits.RateLimiter`, charging the request's
``estimated_tokens`` and reserving its ``estimated_cost``; a refusal is ``rate_limit_exceeded`` or
``budget_exceeded`` (429) with ``retry_after`` and the ``x-ratelimit-*`` figures, which an admitted
request carries too (``rate_limit_headers``). When a slot or a reservation is taken,
``reservation_id`` is the request id (one is made up when the request has none); ``RecordUsage``
settles it with the actual cost. The master key has no limits.
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from google.protobuf import timestamp_pb2

from switchyard.auth.v1 import auth_service_pb2
from switchyard.management.v1 import management_service_pb2
from switchyard_auth.key_cache import KeyCache, owners_ref
from switchyard_auth.limits import LocalRateLimiter, RateLimiter
from switchyard_auth.scopes import request_scopes
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import hash_key
from switchyard_core.model_access import model_allowed

if TYPE_CHECKING:  # JWT support (PyJWT, cryptography) is loaded only when enable_jwt_auth is on
    from switchyard_auth.jwt_auth import JwtAuthenticator

_Role = auth_service_pb2.PrincipalRole

MISSING_KEY = SwitchyardError(
    "invalid_api_key",
    "Missing API key. Pass it as 'Authorization: Bearer <key>' or in the 'x-api-key' header.",
)
INVALID_KEY = SwitchyardError("invalid_api_key", "Invalid API key.")
BLOCKED_KEY = SwitchyardError("key_blocked", "This API key is blocked.")
BLOCKED_TEAM = SwitchyardError("key_blocked", "This API key's team is blocked.")
EXPIRED_KEY = SwitchyardError("key_expired", "This API key has expired.")


class Authorizer:
    """Answers ``Authorize``; one per process, safe to share between tasks.

    ``keys`` resolves virtual keys (with their team, user and organization) and ``end_users`` the
    end users requests are made for; without them (no master key, hence no credential to ask
    management with) only the master key is accepted. ``limiter`` enforces per-key rate limits
    (in process when not given). ``jwt`` admits JWTs (None: JWT auth is off). ``clock`` is
    wall-clock seconds, for expiry.
    """

    def __init__(
        self,
        master_key: str,
        keys: KeyCache[management_service_pb2.LookupKeyResponse] | None = None,
        *,
        end_users: KeyCache[management_service_pb2.EndUser] | None = None,
        owners: KeyCache[management_service_pb2.LookupKeyResponse] | None = None,
        limiter: RateLimiter | None = None,
        jwt: JwtAuthenticator | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._master_key = master_key.encode()
        self._keys = keys if master_key else None
        self._end_users = end_users if master_key else None
        self._owners = owners if master_key else None
        self._limiter: RateLimiter = limiter if limiter is not None else LocalRateLimiter()
        self._jwt = jwt
        self._clock = clock
        self._master_principal = auth_service_pb2.AuthorizeResponse(
            principal=auth_service_pb2.Principal(
                key_hash=hash_key(master_key) if master_key else "",
                key_alias="master_key",
                role=_Role.PRINCIPAL_ROLE_PROXY_ADMIN,
            )
        )

    async def authorize(self, request: auth_service_pb2.AuthorizeRequest) -> auth_service_pb2.AuthorizeResponse:
        """Admit the request or raise ``SwitchyardError`` (reasons in the module docstring).

        The returned message is shared between requests: never mutate it.
        """
        if not request.api_key:
            raise MISSING_KEY
        # Constant-time comparison: the time taken must not reveal how much of a guess matched.
        if self._master_key and hmac.compare_digest(request.api_key.encode(), self._master_key):
            return self._master_principal
        if self._jwt is not None and self._jwt.accepts(request.api_key):
            return await self._authorize_jwt(self._jwt, request)
        if self._keys is None:
            raise INVALID_KEY
        found = await self._keys.get(hash_key(request.api_key))
        if found is None:
            raise INVALID_KEY
        key = found.key
        if key.blocked:
            raise BLOCKED_KEY
        if found.team.blocked:
            raise BLOCKED_TEAM
        if key.HasField("expires") and _seconds(key.expires) <= self._clock():
            raise EXPIRED_KEY
        if request.model and not (
            model_allowed(request.model, key.models) and model_allowed(request.model, found.team.models)
        ):
            raise _model_not_allowed(request.model)
        response = _response(key)
        response.principal.org_id = found.team.organization_id
        return await self._admit(request, found, response, request.end_user)

    async def _authorize_jwt(
        self, authenticator: JwtAuthenticator, request: auth_service_pb2.AuthorizeRequest
    ) -> auth_service_pb2.AuthorizeResponse:
        principal = await authenticator.authenticate(request.api_key)
        found = await self._owners_of(principal)
        if found.team.blocked:
            raise BLOCKED_TEAM
        if request.model and not (
            model_allowed(request.model, principal.models) and model_allowed(request.model, found.team.models)
        ):
            raise _model_not_allowed(request.model)
        response = auth_service_pb2.AuthorizeResponse(principal=principal)
        # The token's end user wins over the request's, as in the spend rows.
        return await self._admit(request, found, response, principal.end_user or request.end_user)

    async def _owners_of(self, principal: auth_service_pb2.Principal) -> management_service_pb2.LookupKeyResponse:
        """A JWT's team and user as management has them (their limits apply), under the token's identity."""
        found = management_service_pb2.LookupKeyResponse(found=True)
        if self._owners is not None and (principal.team_id or principal.user_id):
            try:
                owners = await self._owners.get(owners_ref(principal.team_id, principal.user_id))
            except SwitchyardError:
                owners = None  # management cannot tell: the token alone decides
            if owners is not None:
                found.CopyFrom(owners)
        found.key.key_hash = principal.key_hash
        return found

    async def _admit(
        self,
        request: auth_service_pb2.AuthorizeRequest,
        found: management_service_pb2.LookupKeyResponse,
        response: auth_service_pb2.AuthorizeResponse,
        end_user_id: str,
    ) -> auth_service_pb2.AuthorizeResponse:
        """Check and charge the limits of every scope of the request; ``response`` when admitted."""
        # Limits count model calls; admin RPCs and model listings (no model) neither count nor wait.
        if not request.model:
            return response
        end_user = await self._end_user(end_user_id)
        scopes = request_scopes(found, request.model, end_user, self._clock())
        if not scopes:
            return response
        request_id = request.request_id or uuid.uuid4().hex
        decision = await self._limiter.check(scopes, request.estimated_tokens, request.estimated_cost, request_id)
        if not decision.admitted:
            raise decision.error()
        response.rate_limit_headers.update(decision.headers())
        if decision.reserved:
            response.reservation_id = request_id
        return response

    async def _end_user(self, end_user_id: str) -> management_service_pb2.EndUser | None:
        """The request's end user, when it is a known one (unknown end users have no limits)."""
        if not end_user_id or self._end_users is None:
            return None
        try:
            return await self._end_users.get(end_user_id)
        except SwitchyardError:
            return None  # management cannot tell: the key's own limits still hold

    async def settle(self, records: Sequence[auth_service_pb2.UsageRecord]) -> None:
        """Settle finished requests: free their slots, turn their reservations into their cost."""
        settlements = [(record.reservation_id, record.cost) for record in records if record.reservation_id]
        if settlements:
            await self._limiter.settle(settlements)


def _model_not_allowed(model: str) -> SwitchyardError:
    return SwitchyardError("model_not_allowed", f"This API key may not use the model '{model}'.", param="model")


def _response(key: management_service_pb2.Key) -> auth_service_pb2.AuthorizeResponse:
    role = key.role or _Role.PRINCIPAL_ROLE_INTERNAL_USER
    return auth_service_pb2.AuthorizeResponse(
        principal=auth_service_pb2.Principal(
            key_hash=key.key_hash,
            key_alias=key.key_alias,
            team_id=key.team_id,
            user_id=key.user_id,
            role=role,
            models=key.models,
        )
    )


def _seconds(value: timestamp_pb2.Timestamp) -> float:
    return value.seconds + value.nanos / 1e9
