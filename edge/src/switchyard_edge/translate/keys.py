"""Virtual keys: LiteLLM ``/key/*`` bodies -> ``ManagementService`` requests; ``Key`` -> LiteLLM JSON.

What leaves the edge and what comes back:

- A key named in a body or a query (its secret ``sk-...`` or its id) is sent only as its SHA-256
  hash (:func:`key_hash`); the caller's own key travels only as the call's credential.
- The secret appears in exactly two answers, once: ``/key/generate`` and ``/key/regenerate``
  (``"key"``). Those answers carry no hash.
- A key's id (the hash) is returned as ``token`` by ``/key/info`` and ``/key/list`` only, as LiteLLM
  does, so that a key can be named without its secret; it is never accepted as a credential.
- Nothing else echoes a key: ``/key/delete`` reports a deleted secret as ``sk-...<last4>``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format, timestamp_pb2

from switchyard.management.v1 import management_service_pb2
from switchyard_core.durations import duration_seconds
from switchyard_core.grpc_util import hash_key
from switchyard_edge.protocol.keys import DeleteKeysRequest, KeySettings, UpdateKeyRequest
from switchyard_edge.translate._struct import fill_struct

__all__ = [
    "blocked_request",
    "create_request",
    "delete_request",
    "deleted_json",
    "generated_json",
    "info_json",
    "is_key_hash",
    "iso",
    "key_hash",
    "key_json",
    "list_json",
    "masked",
    "update_request",
]

_HEX = frozenset("0123456789abcdef")

# Body field -> path of management_service_pb2.Key (the FieldMask vocabulary). "duration" is not a
# Key field: it sets "expires".
_PATHS: dict[str, str] = {
    "key_alias": "key_alias",
    "duration": "expires",
    "models": "models",
    "max_budget": "max_budget",
    "budget_duration": "budget_duration",
    "tpm_limit": "tpm_limit",
    "rpm_limit": "rpm_limit",
    "max_parallel_requests": "max_parallel_requests",
    "model_rpm_limit": "model_rpm_limit",
    "model_tpm_limit": "model_tpm_limit",
    "metadata": "metadata",
    "team_id": "team_id",
    "user_id": "user_id",
    "blocked": "blocked",
}


def is_key_hash(value: str) -> bool:
    """Whether ``value`` is a key id: 64 lowercase hex digits (secrets start with ``sk-``)."""
    return len(value) == 64 and _HEX.issuperset(value)


def key_hash(ref: str) -> str:
    """The id of the key ``ref`` names: a secret is hashed, an id is kept as it is."""
    return ref if is_key_hash(ref) else hash_key(ref)


def masked(ref: str) -> str:
    """How a key named by the caller may be shown back: an id as it is, a secret as ``sk-...<last4>``."""
    return ref if is_key_hash(ref) else f"sk-...{ref[-4:]}"


def _fill(target: management_service_pb2.Key, body: KeySettings, fields: Sequence[str]) -> None:
    """Copy the non-null ``fields`` of ``body`` (except ``duration``) into ``target``."""
    for field in fields:
        value = getattr(body, field)
        if value is None or field == "duration":
            continue
        if field == "models":
            target.models.extend(value)
        elif field == "metadata":
            fill_struct(target.metadata, value, "metadata")
        elif field in ("model_rpm_limit", "model_tpm_limit"):
            getattr(target, field).update(value)
        else:
            setattr(target, field, value)


def create_request(body: KeySettings) -> management_service_pb2.CreateKeyRequest:
    """``CreateKeyRequest`` for a ``/key/generate`` body; ``duration`` is passed on for management to apply."""
    request = management_service_pb2.CreateKeyRequest(duration=body.duration or "")
    _fill(request.key, body, tuple(_PATHS))
    return request


def update_request(body: UpdateKeyRequest, now: datetime) -> management_service_pb2.UpdateKeyRequest:
    """``UpdateKeyRequest`` changing exactly the fields present in a ``/key/update`` body.

    A field sent as null is in the mask and unset, so management clears it (no budget, no limit,
    all models). ``duration`` becomes ``expires`` counted from ``now``; null means never.
    """
    present = [field for field in _PATHS if field in body.model_fields_set]
    request = management_service_pb2.UpdateKeyRequest()
    request.key.key_hash = key_hash(body.key)
    _fill(request.key, body, present)
    if body.duration is not None:
        request.key.expires.FromDatetime(now + timedelta(seconds=duration_seconds(body.duration) or 0))
    request.update_mask.paths.extend(_PATHS[field] for field in present)
    return request


def blocked_request(ref: str, blocked: bool) -> management_service_pb2.UpdateKeyRequest:
    """``UpdateKeyRequest`` that blocks or unblocks the key ``ref`` names, and changes nothing else."""
    request = management_service_pb2.UpdateKeyRequest()
    request.key.key_hash = key_hash(ref)
    request.key.blocked = blocked
    request.update_mask.paths.append("blocked")
    return request


def delete_request(body: DeleteKeysRequest) -> management_service_pb2.DeleteKeyRequest:
    """``DeleteKeyRequest`` for a ``/key/delete`` body, keys as hashes."""
    return management_service_pb2.DeleteKeyRequest(
        key_hashes=[key_hash(ref) for ref in body.keys or ()], key_aliases=body.key_aliases or ()
    )


def deleted_json(body: DeleteKeysRequest, response: management_service_pb2.DeleteKeyResponse) -> dict[str, Any]:
    """LiteLLM's ``{"deleted_keys": [...]}``.

    Lists the keys named in the body that were deleted (secrets masked, ids as sent), then the
    aliases as sent: management reports deletions by hash only, so an alias cannot be told apart
    from another and is listed when the call succeeded, as LiteLLM does.
    """
    gone = set(response.deleted_key_hashes)
    names = [masked(ref) for ref in body.keys or () if key_hash(ref) in gone]
    return {"deleted_keys": names + list(body.key_aliases or ())}


def iso(stamp: timestamp_pb2.Timestamp) -> str | None:
    """A timestamp as ISO 8601 with ``Z``; None when unset."""
    if not stamp.seconds and not stamp.nanos:
        return None
    return stamp.ToDatetime(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _optional(key: management_service_pb2.Key, field: str) -> Any:
    return getattr(key, field) if key.HasField(field) else None


def key_json(key: management_service_pb2.Key, *, with_token: bool) -> dict[str, Any]:
    """A key shaped like LiteLLM's ``LiteLLM_VerificationToken``; ``token`` (its id) only if ``with_token``."""
    spend = key.spend if math.isfinite(key.spend) else 0.0
    data: dict[str, Any] = {"token": key.key_hash} if with_token else {}
    data.update(
        {
            "key_name": key.key_name,
            "key_alias": key.key_alias or None,
            "spend": spend,
            "max_budget": _optional(key, "max_budget"),
            "expires": iso(key.expires),
            "models": list(key.models),
            "tpm_limit": _optional(key, "tpm_limit"),
            "rpm_limit": _optional(key, "rpm_limit"),
            "max_parallel_requests": _optional(key, "max_parallel_requests"),
            "model_rpm_limit": dict(key.model_rpm_limit) or None,
            "model_tpm_limit": dict(key.model_tpm_limit) or None,
            "budget_duration": key.budget_duration or None,
            "budget_reset_at": iso(key.budget_reset_time),
            "user_id": key.user_id or None,
            "team_id": key.team_id or None,
            "metadata": json_format.MessageToDict(key.metadata),
            "blocked": key.blocked,
            "created_at": iso(key.create_time),
        }
    )
    return data


def generated_json(secret: str, key: management_service_pb2.Key) -> dict[str, Any]:
    """LiteLLM's ``GenerateKeyResponse``: the secret (``key``, shown this once) and the key's settings."""
    return {"key": secret, **key_json(key, with_token=False)}


def info_json(key: management_service_pb2.Key) -> dict[str, Any]:
    """LiteLLM's ``/key/info`` answer; ``key`` is the id, never the secret the caller asked with."""
    return {"key": key.key_hash, "info": key_json(key, with_token=True)}


def list_json(keys: Sequence[management_service_pb2.Key], page: int, size: int, *, full: bool) -> dict[str, Any]:
    """LiteLLM's ``/key/list`` answer for page ``page`` (from 1) of ``size`` keys out of all ``keys``.

    ``keys`` lists ids, or key objects (with ``token``) when ``full`` (``return_full_object``).
    """
    start = (page - 1) * size
    chosen = keys[start : start + size]
    return {
        "keys": [key_json(key, with_token=True) if full else key.key_hash for key in chosen],
        "total_count": len(keys),
        "current_page": page,
        "total_pages": math.ceil(len(keys) / size),
    }
