"""Secrets of stored models: encrypted at rest, masked in answers.

A deployment's ``litellm_params`` is stored as given, except that every string under a
secret-looking key (:func:`switchyard_core.config.is_secret_key`: ``api_key``,
``aws_secret_access_key``, ``vertex_credentials``, ``*token*``..., nested ones too) is replaced by
a Fernet token (AES-128-CBC with HMAC-SHA256, from ``cryptography``). Reading the row back needs
the same key; the table alone reveals nothing.

The Fernet key is derived with HKDF-SHA256 from ``SWITCHYARD_SALT_KEY`` when that environment
variable is set, else from ``general_settings.master_key``. Set ``SWITCHYARD_SALT_KEY`` to rotate
the master key without losing stored models: changing whichever one is in use makes stored
secrets unreadable (listed as errors in the management log, the models skipped by routers).

Answers to admins and readers never carry a secret: :func:`masked` turns each into null, except
an ``os.environ/NAME`` reference, which names a variable rather than holding a key.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from switchyard_core.config import ENV_PREFIX, is_secret_key

__all__ = ["ParamsCipher", "UnreadableSecret", "masked"]

_HKDF_SALT = b"switchyard/model-params/v1"
_HKDF_INFO = b"fernet key for litellm_params secrets"


class UnreadableSecret(ValueError):
    """A stored secret cannot be decrypted: the row was written under another salt or master key."""


class ParamsCipher:
    """Encrypts and decrypts the secret values of ``litellm_params``; one per process."""

    def __init__(self, key_material: str) -> None:
        if not key_material:
            raise ValueError("stored model secrets need SWITCHYARD_SALT_KEY or a master key")
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
            key_material.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with every secret string replaced by its Fernet token."""
        result: dict[str, Any] = _map_secrets(params, lambda value: self._fernet.encrypt(value.encode()).decode())
        return result

    def decrypt(self, params: dict[str, Any]) -> dict[str, Any]:
        """The clear ``params`` of an :meth:`encrypt` result; :class:`UnreadableSecret` if the key differs."""
        result: dict[str, Any] = _map_secrets(params, self._decrypt_one)
        return result

    def _decrypt_one(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise UnreadableSecret("a stored secret was encrypted with another key") from None


def masked(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as anyone may see them: secrets are null, ``os.environ/NAME`` references stay."""
    result: dict[str, Any] = _map_secrets(params, lambda value: value if value.startswith(ENV_PREFIX) else None)
    return result


def _map_secrets(value: Any, change: Callable[[str], Any], secret: bool = False) -> Any:
    """A copy of ``value`` with ``change`` applied to every string under a secret-looking key."""
    if isinstance(value, dict):
        return {name: _map_secrets(item, change, secret or is_secret_key(str(name))) for name, item in value.items()}
    if isinstance(value, list):
        return [_map_secrets(item, change, secret) for item in value]
    if secret and isinstance(value, str):
        return change(value)
    return value
