"""The public keys a verifier trusts, addressed by ``kid``, and where they come from.

A token never chooses its key beyond naming a ``kid`` among keys we already hold: there
is no path from a token header (``jku``, ``x5u``, ``jwk``, ``x5c``) to a key (RFC 8725
§3.10). JWKs are parsed by PyJWT (``PyJWK``) once per fetch, never per token.

Three sources, one protocol (:class:`KeySource`):

* :class:`JwksKeys` fetches a JWK Set over HTTP(S) and caches it (see its docstring);
* :class:`StaticKeys` holds keys given at start-up (a JWKS document or PEM files);
* :class:`KeyLookup` asks a function, e.g. a server's own key ring, for keys by ``kid``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from authgate.resource.errors import VerifierUnavailable

logger = logging.getLogger(__name__)

PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

# Asymmetric JWS algorithms only (RFC 7518 §3.1, RFC 8037). HMAC would need a secret
# shared with every service, and accepting HS* with a public key as the "secret" is
# the classic forgery (RFC 8725 §2.1); "none" proves nothing.
SUPPORTED_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "EdDSA"}
)
# What authgate signs with.
DEFAULT_ALGORITHMS: Final = ("RS256", "ES256", "EdDSA")

# NIST SP 800-131A: RSA below 2048 bits is no longer acceptable for signatures.
_MIN_RSA_BITS: Final = 2048
# authgate publishes a handful of keys (current, next, previous): far below these.
_MAX_JWKS_BYTES: Final = 256 * 1024
_MAX_KEYS: Final = 64


def key_fits(algorithm: str, key: object) -> bool:
    """Whether ``key`` can verify ``algorithm``: the key type (kty/crv) must fit the alg.

    This is what stops algorithm confusion (RFC 8725 §3.1): an RSA key named by a
    token that says ES256, or a P-384 key for ES256, never verifies anything.
    """
    if algorithm not in SUPPORTED_ALGORITHMS:
        return False
    if algorithm[:2] in ("RS", "PS"):
        return isinstance(key, rsa.RSAPublicKey) and key.key_size >= _MIN_RSA_BITS
    if algorithm == "EdDSA":
        return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)
    # ES256 is ECDSA on P-256 and nothing else (RFC 7518 §3.4).
    return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """One public key we verify tokens with: its ``kid``, its one algorithm, the key."""

    kid: str
    algorithm: str
    key: PublicKey

    def __post_init__(self) -> None:
        if not isinstance(self.kid, str) or not self.kid:
            raise ValueError("a trusted key needs a non-empty kid")
        if self.algorithm not in SUPPORTED_ALGORITHMS:
            raise ValueError(
                f"unsupported algorithm {self.algorithm!r}; use one of "
                f"{sorted(SUPPORTED_ALGORITHMS)}"
            )
        if not key_fits(self.algorithm, self.key):
            raise ValueError(f"key {self.kid!r} does not fit {self.algorithm}")

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> TrustedKey:
        """Parse one public JWK (RFC 7517) with PyJWT; ``ValueError`` if unusable."""
        if not isinstance(jwk, Mapping):
            raise ValueError("a JWK is a JSON object")
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            raise ValueError("JWK without kid")  # a token could not name it
        use = jwk.get("use")
        if use is not None and use != "sig":
            raise ValueError(f"JWK {kid!r} has use {use!r}, not sig")
        key_ops = jwk.get("key_ops")
        if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
            raise ValueError(f"JWK {kid!r} key_ops do not allow verify")
        try:
            parsed = jwt.PyJWK(dict(jwk))
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"JWK {kid!r} unusable: {type(exc).__name__}: {exc}") from None
        key = parsed.key
        if hasattr(key, "private_bytes"):
            # A published private key is the publisher's bug; never keep the secret part.
            logger.warning("JWK %r carries a private key; only its public half is kept", kid)
            key = key.public_key()
        return cls(kid=kid, algorithm=parsed.algorithm_name, key=key)

    @classmethod
    def from_pem(cls, pem: bytes | str, *, kid: str, algorithm: str) -> TrustedKey:
        """A PEM public key (SubjectPublicKeyInfo) under the ``kid`` tokens name it by."""
        data = pem.encode("ascii") if isinstance(pem, str) else pem
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, PublicKey):
            raise ValueError(f"unsupported public key type {type(key).__name__}")
        return cls(kid=kid, algorithm=algorithm, key=key)


def parse_jwks(document: Mapping[str, Any] | str | bytes) -> tuple[TrustedKey, ...]:
    """The usable keys of a JWK Set. Unusable entries are skipped and logged, so one
    odd key (an encryption key, a new key type) does not hide the others."""
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise ValueError(f"JWKS is not JSON: {exc}") from None
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError('a JWKS is an object with a "keys" array')
    entries = document["keys"]
    if len(entries) > _MAX_KEYS:
        raise ValueError(f"JWKS has {len(entries)} keys; at most {_MAX_KEYS} are read")
    keys: list[TrustedKey] = []
    for entry in entries:
        try:
            keys.append(TrustedKey.from_jwk(entry))
        except ValueError as exc:
            logger.warning("JWKS entry skipped: %s", exc)
    return tuple(keys)


def _by_kid(keys: Iterable[TrustedKey]) -> dict[str, tuple[TrustedKey, ...]]:
    grouped: dict[str, list[TrustedKey]] = {}
    for key in keys:
        # RFC 7517 §4.5 allows two keys under one kid (e.g. different kty); keep both.
        grouped.setdefault(key.kid, []).append(key)
    return {kid: tuple(group) for kid, group in grouped.items()}


class KeySource(Protocol):
    """Where a :class:`~authgate.resource.TokenVerifier` gets keys by ``kid``.

    Return the keys held under ``kid`` (empty if none). Raise
    :class:`~authgate.resource.VerifierUnavailable` only when no key can be had at all.
    It is asked on every verification, also for tokens verified before, so a key that
    leaves the source (retired) stops verifying at once: keep it a cheap lookup.
    """

    async def keys_for(self, kid: str) -> Sequence[TrustedKey]: ...


@runtime_checkable
class SyncKeySource(KeySource, Protocol):
    """A :class:`KeySource` that can often answer from memory, without awaiting.

    ``keys_now(kid)`` returns what ``keys_for(kid)`` would, or None when answering
    needs I/O (then the verifier awaits ``keys_for``). A token verified before is then
    re-checked without a coroutine: the hit path of a busy route. Return the same
    :class:`TrustedKey` objects each time; the verifier compares keys by identity first.
    """

    def keys_now(self, kid: str) -> Sequence[TrustedKey] | None: ...


class StaticKeys:
    """Keys fixed at start-up: a JWKS document, or :class:`TrustedKey` objects."""

    def __init__(self, keys: Iterable[TrustedKey]) -> None:
        self._keys = _by_kid(keys)
        if not self._keys:
            raise ValueError("StaticKeys needs at least one key")

    @classmethod
    def from_jwks(cls, document: Mapping[str, Any] | str | bytes) -> StaticKeys:
        return cls(parse_jwks(document))

    async def keys_for(self, kid: str) -> Sequence[TrustedKey]:
        return self._keys.get(kid, ())

    def keys_now(self, kid: str) -> Sequence[TrustedKey]:
        return self._keys.get(kid, ())


class KeyLookup:
    """Keys from a function ``kid -> keys``: for a key ring that refreshes itself.

    authgate's own guard uses this with its key ring, so it verifies exactly as the
    services that consume its tokens do.
    """

    def __init__(self, lookup: Callable[[str], Iterable[TrustedKey]]) -> None:
        self._lookup = lookup

    async def keys_for(self, kid: str) -> Sequence[TrustedKey]:
        return tuple(self._lookup(kid))

    def keys_now(self, kid: str) -> Sequence[TrustedKey]:
        found = self._lookup(kid)
        # Called on every request: a tuple is passed on as it is, not copied.
        return found if isinstance(found, tuple) else tuple(found)


def _secure_url(url: str, *, allow_http: bool = False) -> str:
    """HTTPS, or plain HTTP to a loopback address (tests, a sidecar on the same host).

    Keys fetched over plain HTTP across a network can be swapped by anyone on the path;
    ``allow_http`` is for a private network you trust, and says so in the code.
    """
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname:
        if allow_http or parts.hostname == "localhost":
            return url
        try:
            if ipaddress.ip_address(parts.hostname).is_loopback:
                return url
        except ValueError:
            pass
    raise ValueError(f"{url!r} must be https:// (plain http only to loopback or allow_http)")


def _freshness_seconds(headers: httpx.Headers) -> float | None:
    """Seconds of freshness left by ``Cache-Control: max-age`` minus ``Age`` (RFC 9111
    §4.2), 0 for ``no-store``/``no-cache``, or None when the answer gives no max-age."""
    max_age: int | None = None
    for directive in headers.get_list("cache-control", split_commas=True):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            value = value.strip().strip('"')
            if value.isascii() and value.isdigit():
                # Several max-age directives are ambiguous; the shortest is the safe one.
                max_age = int(value) if max_age is None else min(max_age, int(value))
    if max_age is None:
        return None
    age = headers.get("age", "").strip()
    return float(max(0, max_age - (int(age) if age.isascii() and age.isdigit() else 0)))


class _FetchFailed(Exception):
    pass


class JwksKeys:
    """A JWK Set fetched from ``url`` and cached by ``kid``.

    * Cached for the answer's ``Cache-Control: max-age`` (``default_cache_seconds``
      without one), clamped to ``[min_cache_seconds, max_cache_seconds]`` so the
      publisher can neither make us fetch on every request nor pin a key for weeks.
    * An unknown ``kid`` refetches at once (a key published since our last fetch),
      but at most once per ``refetch_cooldown_seconds``: inside the cool-down an
      unknown ``kid`` is refused without a fetch, so a stream of made-up kids cannot
      make us hammer the key server. An expired set is fetched again on its next use
      whatever the cool-down (a key retired upstream must stop verifying here within
      the set's lifetime), except right after a failed fetch: then once per cool-down.
    * Single flight: concurrent lookups that need a fetch share one request.
    * A failed fetch keeps the keys we have (the key server being down must not log
      everyone out); only with no keys at all is :class:`VerifierUnavailable` raised.
    * ``http_client`` is used if given (and never closed here); otherwise each fetch,
      a rare event, uses a short-lived client. Redirects are not followed.
    """

    def __init__(
        self,
        url: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        timeout_seconds: float = 5.0,
        refetch_cooldown_seconds: float = 30.0,
        default_cache_seconds: float = 300.0,
        min_cache_seconds: float = 30.0,
        max_cache_seconds: float = 86_400.0,
        allow_http: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= min_cache_seconds <= max_cache_seconds:
            raise ValueError("need 0 <= min_cache_seconds <= max_cache_seconds")
        if refetch_cooldown_seconds < 0 or timeout_seconds <= 0:
            raise ValueError("refetch_cooldown_seconds >= 0 and timeout_seconds > 0 please")
        self.url = _secure_url(url, allow_http=allow_http)
        self._client = http_client
        self._timeout = timeout_seconds
        self._cooldown = refetch_cooldown_seconds
        self._default_ttl = default_cache_seconds
        self._min_ttl = min_cache_seconds
        self._max_ttl = max_cache_seconds
        self._clock = clock
        self._keys: dict[str, tuple[TrustedKey, ...]] = {}
        self._loaded = False
        self._expires_at = 0.0
        self._last_attempt: float | None = None
        self._failed_at: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self.fetch_count = 0  # attempts, for metrics and tests

    def keys_now(self, kid: str) -> Sequence[TrustedKey] | None:
        """The keys under ``kid`` while the cache is fresh and holds it; else None."""
        if self._loaded and self._clock() < self._expires_at:
            return self._keys.get(kid)
        return None

    async def keys_for(self, kid: str) -> Sequence[TrustedKey]:
        now = self._clock()
        fresh = self._loaded and now < self._expires_at
        if fresh and kid in self._keys:
            return self._keys[kid]
        if fresh:
            # An unknown kid while the set is fresh: anyone can send one, so at most
            # one refetch per cool-down.
            may_fetch = self._last_attempt is None or now - self._last_attempt >= self._cooldown
        else:
            # Expired (its max-age, at least min_cache_seconds): fetch again, so a key
            # retired upstream stops verifying here; after a failed fetch, only once
            # per cool-down, so a JWKS endpoint that is down is not hammered.
            may_fetch = self._failed_at is None or now - self._failed_at >= self._cooldown
        if may_fetch:
            await self._refresh()
        elif not self._loaded:
            raise VerifierUnavailable(f"no keys from {self.url} (last fetch failed)")
        if not self._loaded:
            raise VerifierUnavailable(f"no keys from {self.url}")
        return self._keys.get(kid, ())

    async def _refresh(self) -> None:
        loop = asyncio.get_running_loop()
        task = self._inflight
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(self._fetch())
            self._inflight = task
        # Shielded: one caller giving up (its request was cancelled) must not cancel
        # the fetch the others are waiting for.
        await asyncio.shield(task)

    async def _fetch(self) -> None:
        self._last_attempt = self._clock()
        self.fetch_count += 1
        try:
            body, headers = await self._download()
            keys = parse_jwks(body)
        except Exception as exc:
            # Whatever went wrong (HTTP, a hostile or broken document: even JSON nested
            # deep enough to raise RecursionError), the keys we hold stay, and every
            # caller waiting on this shared fetch gets an answer instead of the error.
            logger.warning("JWKS fetch from %s failed: %s: %s", self.url, type(exc).__name__, exc)
            self._failed_at = self._clock()
            return
        self._failed_at = None
        freshness = _freshness_seconds(headers)
        ttl = self._default_ttl if freshness is None else freshness
        self._keys = _by_kid(keys)
        self._loaded = True
        self._expires_at = self._clock() + min(max(ttl, self._min_ttl), self._max_ttl)

    async def _download(self) -> tuple[bytes, httpx.Headers]:
        if self._client is not None:
            return await self._get(self._client)
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            return await self._get(client)

    async def _get(self, client: httpx.AsyncClient) -> tuple[bytes, httpx.Headers]:
        async with client.stream(
            "GET",
            self.url,
            headers={"Accept": "application/jwk-set+json, application/json"},
            timeout=self._timeout,
            follow_redirects=False,
        ) as response:
            if response.status_code != 200:
                raise _FetchFailed(f"status {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > _MAX_JWKS_BYTES:
                    raise _FetchFailed(f"larger than {_MAX_JWKS_BYTES} bytes")
            return bytes(body), response.headers
