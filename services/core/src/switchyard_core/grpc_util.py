"""Small helpers shared by servicers and clients: metadata, deadlines, key hashing."""

from __future__ import annotations

import hashlib
from typing import Any

AUTHORIZATION = "authorization"


def metadata_value(context: Any, key: str) -> str | None:
    """First value of an invocation metadata entry, or None."""
    for entry_key, value in context.invocation_metadata() or ():
        if entry_key == key:
            return value.decode() if isinstance(value, bytes) else value
    return None


def bearer_metadata(api_key: str) -> tuple[tuple[str, str], ...]:
    """Metadata carrying a caller's key to the next service."""
    return ((AUTHORIZATION, f"Bearer {api_key}"),)


def api_key_from_metadata(context: Any) -> str:
    """The caller's key from ``authorization: Bearer <key>``; empty when absent."""
    value = metadata_value(context, AUTHORIZATION) or ""
    scheme, _, key = value.partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def remaining(context: Any, default: float) -> float:
    """Seconds left of the caller's deadline, or ``default`` when the caller set none."""
    left = context.time_remaining()
    return default if left is None else min(left, default)


def hash_key(api_key: str) -> str:
    """SHA-256 hex digest: how keys are stored, logged and compared across services."""
    return hashlib.sha256(api_key.encode()).hexdigest()
