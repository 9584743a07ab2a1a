"""A fake OpenID Connect identity provider: signing keys, a JWKS endpoint, signed tokens.

Sources: RFC 7517 (JSON Web Key, the ``{"keys": [...]}`` set served at ``GET /jwks``), RFC 7518
(RS256 and ES256 parameters) and RFC 7519 (the registered claims ``iss``, ``sub``, ``aud``,
``exp``, ``nbf``, ``iat``). Keys are generated per instance with ``cryptography``.

Knobs: :meth:`FakeIdentityProvider.add_key` (``publish=False`` keeps a key out of the JWKS, for
rotations and forged signatures), ``down`` (every JWKS request answers 503), the fault queue of
:class:`~tests.fakes._common.FakeServer` (``delay_next`` for a hanging endpoint), and ``fetches``
(how many times the JWKS was asked for).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.fakes._common import FakeServer, Fault, RecordedRequest

ISSUER = "https://idp.example.test"
AUDIENCE = "switchyard-gateway"


@dataclass
class SigningKey:
    """One of the provider's key pairs."""

    kid: str
    algorithm: str
    private_key: Any

    def jwk(self) -> dict[str, Any]:
        """The public half as a JWK."""
        public = self.private_key.public_key()
        codec = RSAAlgorithm if self.algorithm == "RS256" else ECAlgorithm
        return {**codec.to_jwk(public, as_dict=True), "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def generate_key(algorithm: str = "RS256", kid: str | None = None) -> SigningKey:
    private = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    return SigningKey(kid or uuid.uuid4().hex[:12], algorithm, private)


class FakeIdentityProvider(FakeServer):
    """Serves ``GET /jwks`` with the published keys and signs tokens with any of its keys."""

    def __init__(self, *, issuer: str = ISSUER, audience: str = AUDIENCE) -> None:
        super().__init__()
        self.issuer = issuer
        self.audience = audience
        self.published: list[SigningKey] = []
        self.down = False
        self.fetches = 0

    @property
    def jwks_url(self) -> str:
        return f"{self.root_url}/jwks"

    def add_key(self, algorithm: str = "RS256", *, kid: str | None = None, publish: bool = True) -> SigningKey:
        key = generate_key(algorithm, kid)
        if publish:
            self.published.append(key)
        return key

    def token(
        self, key: SigningKey, *, lifetime: float = 300, headers: dict[str, Any] | None = None, **claims: Any
    ) -> str:
        """A token signed with ``key``; ``claims`` override the defaults (None removes a claim)."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "user-1",
            "aud": self.audience,
            "iat": now,
            "exp": now + int(lifetime),
        }
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        header = {"kid": key.kid, **(headers or {})}
        return jwt.encode(payload, key.private_key, algorithm=key.algorithm, headers=header)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/jwks", self.serve(self._jwks))

    async def _jwks(self, request: web.Request, recorded: RecordedRequest, fault: Fault | None) -> web.StreamResponse:
        self.fetches += 1
        if self.down:
            return web.json_response({"error": "temporarily_unavailable"}, status=503)
        return web.json_response({"keys": [key.jwk() for key in self.published]})
