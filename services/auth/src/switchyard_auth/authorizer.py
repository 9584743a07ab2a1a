"""Admission decisions: key -> principal.

Today the only credential is ``general_settings.master_key``; virtual keys, limits and budgets
arrive with the keys issue and extend :meth:`Authorizer.authorize` without changing its contract.
"""

from __future__ import annotations

import hmac

from switchyard.auth.v1 import auth_service_pb2
from switchyard_core.errors import SwitchyardError
from switchyard_core.grpc_util import hash_key

_Role = auth_service_pb2.PrincipalRole

MISSING_KEY = SwitchyardError(
    "invalid_api_key",
    "Missing API key. Pass it as 'Authorization: Bearer <key>' or in the 'x-api-key' header.",
)
INVALID_KEY = SwitchyardError("invalid_api_key", "Invalid API key.")


class Authorizer:
    """Answers ``Authorize`` from memory; one per process, safe to share between tasks."""

    def __init__(self, master_key: str) -> None:
        self._master_key = master_key.encode()
        self._master_principal = auth_service_pb2.AuthorizeResponse(
            principal=auth_service_pb2.Principal(
                key_hash=hash_key(master_key) if master_key else "",
                key_alias="master_key",
                role=_Role.PRINCIPAL_ROLE_PROXY_ADMIN,
            )
        )

    def authorize(self, request: auth_service_pb2.AuthorizeRequest) -> auth_service_pb2.AuthorizeResponse:
        """Admit the request or raise ``invalid_api_key``."""
        if not request.api_key:
            raise MISSING_KEY
        # Constant-time comparison: the time taken must not reveal how much of a guess matched.
        if self._master_key and hmac.compare_digest(request.api_key.encode(), self._master_key):
            return self._master_principal
        raise INVALID_KEY
