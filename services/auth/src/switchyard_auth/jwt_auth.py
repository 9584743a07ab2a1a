"""JWT bearer tokens (``general_settings.enable_jwt_auth``): token -> principal, no database.

An identity provider signs tokens; auth checks them against the provider's public keys and turns
their claims into a :class:`Principal`. Three parts:

- :class:`PublicKeys` holds the keys: those of a file (``public_key_file``: a JWKS, one JWK or a
  PEM key/certificate, read once) and those of JWKS endpoints (``public_key_url`` /
  ``JWT_PUBLIC_KEY_URL``), fetched with a :data:`FETCH_TIMEOUT` and kept ``public_key_ttl``
  seconds. A token naming an unknown ``kid`` makes it fetch again at once (the provider may have
  rotated its keys), at most once per :data:`REFETCH_INTERVAL`, so made-up ``kid`` values cannot
  flood the provider. When a fetch fails the keys already held stay in use; with none held the
  answer is ``service_unavailable`` (503), and the next attempt waits :data:`REFETCH_INTERVAL`.
  Concurrent requests share one fetch.
- :class:`JwtVerifier` checks one token: only RS256 and ES256 (never ``none`` nor HS*, so a
  public key can never serve as an HMAC secret), the signature with the key its ``kid`` names
  (every key of the algorithm's type when it names none), ``exp`` (required), ``nbf`` and ``iat``
  with :data:`LEEWAY` seconds of clock skew, ``aud`` and ``iss`` when configured.
- :func:`principal_from_claims` maps verified claims to a principal, in one place, so team and
  user budgets can extend it. Identity: ``key_hash`` is ``"jwt:"`` + SHA-256 of (``iss``,
  ``sub``): every token of one subject shares limits and spend, and the token itself is never
  stored. Role: ``admin_jwt_scope`` in the ``scope`` (or ``scp``) claim makes a proxy admin;
  otherwise the roles in ``user_roles_jwt_field``, mapped through ``jwt_litellm_role_map`` or
  named as Switchyard roles, give the most privileged of them, else ``internal_user``.

A refused token is ``invalid_api_key`` (401) with a message naming what failed, never any part
of the token; roles outside ``user_allowed_roles`` are ``forbidden`` (403). Tokens never reach a
log line. :func:`looks_like_jwt` tells JWTs from other keys: with JWT auth on, only credentials of
that shape take this path, every other key is checked as before.
"""

from __future__ import annotations

import asyncio
import binascii
import hashlib
import json
import logging
import re
import time
from base64 import urlsafe_b64decode
from collections.abc import Awaitable, Callable, Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.types import Options

from switchyard.auth.v1 import auth_service_pb2
from switchyard_core.config import ConfigError, JwtAuthSettings
from switchyard_core.errors import SwitchyardError

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256")
"""Signature algorithms accepted; everything else (``none``, HS*, PS*) is refused."""
LEEWAY = 5.0
"""Seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat``."""
FETCH_TIMEOUT = 2.0
"""Longest wait for a JWKS endpoint, in seconds; a fetch can be on the request path."""
REFETCH_INTERVAL = 5.0
"""Least seconds between fetches forced by an unknown ``kid`` or retried after a failure."""
MAX_JWKS_BYTES = 1024 * 1024
"""Largest JWKS document read."""

_Role = auth_service_pb2.PrincipalRole
ROLES: dict[str, auth_service_pb2.PrincipalRole] = {
    "proxy_admin": _Role.PRINCIPAL_ROLE_PROXY_ADMIN,
    "proxy_admin_viewer": _Role.PRINCIPAL_ROLE_PROXY_ADMIN_VIEWER,
    "internal_user": _Role.PRINCIPAL_ROLE_INTERNAL_USER,
    "internal_user_viewer": _Role.PRINCIPAL_ROLE_INTERNAL_USER_VIEWER,
}
"""Role names (LiteLLM's) -> roles, most privileged first."""
DEFAULT_ROLE = _Role.PRINCIPAL_ROLE_INTERNAL_USER

UNAVAILABLE = SwitchyardError(
    "service_unavailable", "The identity provider's public keys cannot be fetched; try again shortly.", retry_after=1
)
UNKNOWN_KEY = SwitchyardError("invalid_api_key", "The JWT is signed with a key this gateway does not know.")
MALFORMED = SwitchyardError("invalid_api_key", "The JWT is malformed.")
WRONG_ALGORITHM = SwitchyardError(
    "invalid_api_key", f"The JWT's signature algorithm is not accepted; use one of {', '.join(ALGORITHMS)}."
)
NO_SUBJECT = SwitchyardError("invalid_api_key", "The JWT names no subject (sub).")
ROLE_NOT_ALLOWED = SwitchyardError("forbidden", "The JWT's roles are not allowed on this gateway.")

# PyJWT's refusals -> what the caller is told; looked up along the exception's class hierarchy.
_REFUSALS: dict[type[jwt.PyJWTError], str] = {
    jwt.ExpiredSignatureError: "The JWT has expired.",
    jwt.ImmatureSignatureError: "The JWT is not valid yet (nbf or iat lies in the future).",
    jwt.InvalidAudienceError: "The JWT is meant for another audience (aud).",
    jwt.InvalidIssuerError: "The JWT comes from an issuer this gateway does not trust (iss).",
    jwt.MissingRequiredClaimError: "The JWT lacks a required claim.",
    jwt.InvalidIssuedAtError: "The JWT's issued-at time (iat) is invalid.",
    jwt.InvalidSignatureError: "The JWT's signature does not verify.",
    jwt.DecodeError: "The JWT is malformed.",
}
_DEFAULT_REFUSAL = "The JWT is invalid."
_REQUIRED_CLAIMS = frozenset({"exp", "aud", "iss"})
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def looks_like_jwt(credential: str) -> bool:
    """Whether ``credential`` has a JWT's shape: three base64url segments, a header naming ``alg``."""
    if not _JWT_SHAPE.fullmatch(credential):
        return False
    header = credential[: credential.index(".")]
    try:
        decoded = json.loads(urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(decoded, dict) and isinstance(decoded.get("alg"), str)


# --- public keys ---------------------------------------------------------------------------------

Fetch = Callable[[str], Awaitable[Any]]
"""Fetches a JWKS document (parsed JSON) from a URL; raises :class:`FetchError` when it cannot."""


class FetchError(Exception):
    """A JWKS endpoint did not answer with a usable document; the message names no secret."""


class HttpFetch:
    """:data:`Fetch` over HTTP; one aiohttp session, opened on first use, closed by :meth:`close`."""

    def __init__(self, timeout: float = FETCH_TIMEOUT) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, url: str) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(url, headers={"accept": "application/json"}) as response:
                if response.status != 200:
                    raise FetchError(f"HTTP {response.status}")
                body = await response.content.read(MAX_JWKS_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FetchError(type(exc).__name__) from None
        if len(body) > MAX_JWKS_BYTES:
            raise FetchError("document too large")
        try:
            return json.loads(body)
        except ValueError:
            raise FetchError("not JSON") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def parse_jwks(document: Any) -> tuple[jwt.PyJWK, ...]:
    """The usable signature keys of a JWKS (``{"keys": [...]}``) or a single JWK.

    Keys for encryption (``use: enc``), of other algorithms or that do not parse are skipped:
    one odd key must not disable the others.
    """
    entries = document.get("keys") if isinstance(document, dict) and "keys" in document else [document]
    keys = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
        if key.algorithm_name in ALGORITHMS:
            keys.append(key)
    return tuple(keys)


def load_key_file(path: str) -> tuple[jwt.PyJWK, ...]:
    """The keys of a JWKS / JWK JSON file or a PEM public key or certificate; ValueError when none."""
    data = Path(path).read_bytes()
    if data.lstrip().startswith(b"{"):
        keys = parse_jwks(json.loads(data))
    elif b"BEGIN CERTIFICATE" in data:
        keys = (_pem_jwk(x509.load_pem_x509_certificate(data).public_key()),)
    else:
        keys = (_pem_jwk(serialization.load_pem_public_key(data)),)
    if not keys:
        raise ValueError("holds no RS256 or ES256 public key")
    return keys


def _pem_jwk(public_key: Any) -> jwt.PyJWK:
    if isinstance(public_key, rsa.RSAPublicKey):
        return jwt.PyJWK(RSAAlgorithm.to_jwk(public_key, as_dict=True), "RS256")
    if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP256R1):
        return jwt.PyJWK(ECAlgorithm.to_jwk(public_key, as_dict=True), "ES256")
    raise ValueError("is neither an RSA nor a P-256 public key")


class PublicKeys:
    """The keys tokens may be signed with; one per process, safe to share between tasks.

    ``static`` keys (from a file) are always held; ``urls`` are JWKS endpoints read with ``fetch``
    and kept ``ttl`` seconds (see the module docstring). ``clock`` is monotonic seconds.
    """

    def __init__(
        self,
        urls: Sequence[str] = (),
        static: Sequence[jwt.PyJWK] = (),
        *,
        fetch: Fetch | None = None,
        ttl: float = 600.0,
        refetch_interval: float = REFETCH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._urls = tuple(urls)
        self._static = tuple(static)
        self._fetch: Fetch = fetch if fetch is not None else HttpFetch()
        self._ttl = ttl
        self._refetch_interval = refetch_interval
        self._clock = clock
        self._fetched: dict[str, tuple[jwt.PyJWK, ...]] = {}
        self._fresh_until = float("-inf")
        self._next_refetch = float("-inf")
        self._pending: asyncio.Future[bool] | None = None

    async def candidates(self, kid: str | None, algorithm: str) -> list[jwt.PyJWK]:
        """The keys that may have signed a token with ``kid`` (None: any) and ``algorithm``.

        Raises ``service_unavailable`` when no key at all is held and none can be fetched.
        """
        if self._urls and self._clock() >= self._fresh_until:
            await self._refresh()
        found = self._match(kid, algorithm)
        if not found and kid is not None and self._urls and self._clock() >= self._next_refetch:
            # An unknown kid: the provider may have rotated its keys since the last fetch.
            await self._refresh()
            found = self._match(kid, algorithm)
        if not found and not self._static and not any(self._fetched.values()):
            raise UNAVAILABLE
        return found

    def _match(self, kid: str | None, algorithm: str) -> list[jwt.PyJWK]:
        keys = [*self._static, *(key for keys in self._fetched.values() for key in keys)]
        # A key without a kid (a PEM file, a one-key JWKS) may have signed a token naming any kid.
        return [k for k in keys if k.algorithm_name == algorithm and (kid is None or k.key_id in (None, kid))]

    async def _refresh(self) -> None:
        """Fetch every URL once; concurrent callers share the fetch, which outlives a caller that leaves."""
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._fetch_all())
            self._pending.add_done_callback(self._settled)
        await asyncio.shield(self._pending)

    def _settled(self, done: asyncio.Future[bool]) -> None:
        self._pending = None
        if not done.cancelled():
            done.exception()  # retrieved, so a fetch whose callers all left logs no warning

    async def _fetch_all(self) -> bool:
        started = self._clock()
        self._next_refetch = started + self._refetch_interval
        results = await asyncio.gather(*(self._fetch_one(url) for url in self._urls))
        complete = all(results)
        # After a failure, try again after the refetch interval, not on every request.
        self._fresh_until = started + (self._ttl if complete else self._refetch_interval)
        return complete

    async def _fetch_one(self, url: str) -> bool:
        try:
            document = await self._fetch(url)
        except FetchError as exc:
            held = "keeping the keys held" if self._fetched.get(url) else "no keys held"
            log.warning("JWKS fetch from %s failed (%s); %s", url, exc, held)
            return False
        keys = parse_jwks(document)
        if not keys:
            log.warning("JWKS from %s holds no RS256 or ES256 signature key", url)
        self._fetched[url] = keys
        return True

    async def close(self) -> None:
        close = getattr(self._fetch, "close", None)
        if close is not None:
            await close()


# --- verification --------------------------------------------------------------------------------


class JwtVerifier:
    """Token -> verified claims (see the module docstring); one per process, safe to share."""

    def __init__(self, settings: JwtAuthSettings, keys: PublicKeys) -> None:
        self._settings = settings
        self._keys = keys
        self._options: Options = {"require": ["exp"], "verify_aud": bool(settings.audience)}

    async def claims(self, token: str) -> dict[str, Any]:
        """The token's claims once every check passed; raises ``SwitchyardError`` otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise MALFORMED from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise WRONG_ALGORITHM
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise MALFORMED
        candidates = await self._keys.candidates(kid, algorithm)
        if not candidates:
            raise UNKNOWN_KEY
        refusal: jwt.PyJWTError = jwt.InvalidSignatureError()
        for key in candidates:
            try:
                return jwt.decode(
                    token,
                    key.key,
                    algorithms=[algorithm],
                    audience=self._settings.audience or None,
                    issuer=self._settings.issuer or None,
                    leeway=LEEWAY,
                    options=self._options,
                )
            except jwt.InvalidSignatureError as exc:
                refusal = exc  # without a kid several keys may fit: try the next
            except jwt.PyJWTError as exc:
                raise _refused(exc) from None
        raise _refused(refusal)


def _refused(exc: jwt.PyJWTError) -> SwitchyardError:
    if isinstance(exc, jwt.MissingRequiredClaimError) and exc.claim in _REQUIRED_CLAIMS:
        # The claim name is one of ours (exp, aud, iss), never text taken from the token.
        return SwitchyardError("invalid_api_key", f"The JWT lacks the required claim '{exc.claim}'.")
    message = next((_REFUSALS[kind] for kind in type(exc).__mro__ if kind in _REFUSALS), _DEFAULT_REFUSAL)
    return SwitchyardError("invalid_api_key", message)


# --- claims -> principal -------------------------------------------------------------------------


def principal_from_claims(claims: Mapping[str, Any], settings: JwtAuthSettings) -> auth_service_pb2.Principal:
    """The principal verified ``claims`` describe; raises ``SwitchyardError`` when they do not admit one."""
    user_id = _text(claim(claims, settings.user_id_jwt_field))
    team_ids = _texts(claim(claims, settings.team_ids_jwt_field))
    team_id = _text(claim(claims, settings.team_id_jwt_field)) or next(iter(team_ids), "")
    subject = _text(claims.get("sub")) or user_id or team_id
    if not subject:
        raise NO_SUBJECT
    identity = hashlib.sha256(f"{_text(claims.get('iss'))}\0{subject}".encode()).hexdigest()
    return auth_service_pb2.Principal(
        key_hash=f"jwt:{identity}",
        key_alias="jwt",
        team_id=team_id,
        user_id=user_id,
        role=principal_role(claims, settings),
        models=_texts(claim(claims, settings.models_jwt_field)),
        end_user=_text(claim(claims, settings.end_user_id_jwt_field)),
        org_id=_text(claim(claims, settings.org_id_jwt_field)),
    )


def principal_role(claims: Mapping[str, Any], settings: JwtAuthSettings) -> auth_service_pb2.PrincipalRole:
    """Proxy admin for ``admin_jwt_scope``; else the most privileged role the token's roles grant."""
    scopes = _texts(claims.get("scope")) or _texts(claims.get("scp"))
    if settings.admin_jwt_scope and settings.admin_jwt_scope in scopes:
        return _Role.PRINCIPAL_ROLE_PROXY_ADMIN
    named = _texts(claim(claims, settings.user_roles_jwt_field))
    granted = [role for role in (_granted(name, settings) for name in named) if role]
    allowed = settings.user_allowed_roles
    if allowed and not any(name in allowed for name in (*named, *granted)):
        raise ROLE_NOT_ALLOWED
    return next((role for name, role in ROLES.items() if name in granted), DEFAULT_ROLE)


def _granted(name: str, settings: JwtAuthSettings) -> str:
    """The role a token role grants: the first matching ``jwt_litellm_role_map`` entry, else itself
    when it names a role, else none."""
    for mapping in settings.role_map:
        if fnmatchcase(name, mapping.jwt_role):
            return mapping.role
    return name if name in ROLES else ""


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """The claim ``path`` names: a top-level claim, else a dotted path into nested ones; None if absent."""
    if not path:
        return None
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _text(value: Any) -> str:
    """A string or number claim as text; anything else as ""."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return ""
    return str(value)


def _texts(value: Any) -> list[str]:
    """A list claim, or a space-separated string claim, as its non-empty texts."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [text for text in map(_text, value) if text]
    return []


# --- the hook authorizer calls -------------------------------------------------------------------


class JwtAuthenticator:
    """Bearer JWT -> principal; what :class:`~switchyard_auth.authorizer.Authorizer` asks."""

    def __init__(self, settings: JwtAuthSettings, keys: PublicKeys) -> None:
        self._settings = settings
        self._verifier = JwtVerifier(settings, keys)
        self._keys = keys

    def accepts(self, credential: str) -> bool:
        """Whether ``credential`` is for this authenticator (shaped like a JWT)."""
        return looks_like_jwt(credential)

    async def authenticate(self, token: str) -> auth_service_pb2.Principal:
        """The principal ``token`` proves; raises ``SwitchyardError`` (reasons in the module docstring)."""
        return principal_from_claims(await self._verifier.claims(token), self._settings)

    async def close(self) -> None:
        await self._keys.close()


def build_authenticator(settings: JwtAuthSettings, config_path: str) -> JwtAuthenticator:
    """The authenticator ``settings`` describe; a key file that holds no usable key is a ``ConfigError``."""
    static: tuple[jwt.PyJWK, ...] = ()
    if settings.public_key_file:
        try:
            static = load_key_file(settings.public_key_file)
        except (OSError, ValueError) as exc:
            raise ConfigError(config_path, "general_settings.litellm_jwtauth.public_key_file", str(exc)) from None
    keys = PublicKeys(settings.public_key_urls, static, ttl=settings.public_key_ttl)
    return JwtAuthenticator(settings, keys)
