"""A provider's signing keys (JWK Set, RFC 7517), fetched over HTTPS and cached.

Design points, each for a reason:

* Keys are parsed by PyJWT (``PyJWK``) into ``cryptography`` key objects once per
  fetch, never per token: parsing an RSA modulus is far more expensive than a lookup,
  and a key that cannot be parsed is dropped (and logged) once instead of failing every
  token. What we add around the library is policy: which key types, curves and sizes
  we accept, and that a key's declared ``alg`` fits its type.
* The cache lifetime follows the provider's ``Cache-Control: max-age`` (Google and Apple
  both publish one and rotate keys within it), clamped so a provider cannot make us
  fetch on every request (max-age=0) nor pin a key for weeks.
* An unknown ``kid`` triggers one refetch, because providers publish a new key and start
  signing with it at some point (OpenID Connect Core §10.1.1). Concurrent lookups share
  a single fetch, and a cool-down between fetches means a stream of forged kids cannot
  turn us into an amplifier against the provider (or exhaust our outbound connections).
* A failed refetch never discards keys we already trust: the provider being down must not
  break sign-in for tokens signed with a key we know. Only when we have no key at all for
  the token do we report :class:`ProviderUnavailable`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from authgate.clock import Clock
from authgate.domain.observations import NO_OBSERVER, Observer
from authgate.errors import InvalidIdToken, ProviderUnavailable

logger = logging.getLogger(__name__)

PublicKey = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey | Ed448PublicKey

# Which JWS algorithms (RFC 7518 §3.1, RFC 8037 §3.1) each key type can verify. A token's
# ``alg`` must fit the key it names: this is what stops algorithm-confusion tricks.
RSA_ALGORITHMS: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHM_BY_CURVE: Final[Mapping[str, str]] = {
    "P-256": "ES256",
    "P-384": "ES384",
    "P-521": "ES512",
}
# The same curves as cryptography names them on a parsed key.
_EC_ALGORITHM_BY_KEY_CURVE: Final[Mapping[str, str]] = {
    "secp256r1": "ES256",
    "secp384r1": "ES384",
    "secp521r1": "ES512",
}
_OKP_CURVES: Final = frozenset({"Ed25519", "Ed448"})

# NIST SP 800-131A: RSA below 2048 bits is no longer acceptable for signatures.
MIN_RSA_BITS: Final = 2048
# Google's and Apple's sets are 1-3 KB; anything near this cap is not a JWKS.
MAX_JWKS_BYTES: Final = 256 * 1024
# Parsing a key costs CPU; a provider has a handful. More than this is abuse or a bug.
MAX_KEYS: Final = 64
# Members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
_SECRET_MEMBERS: Final = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_secure_url(url: str, *, what: str = "JWKS URL") -> str:
    """Return ``url`` if it is https, or http on a loopback host; raise ValueError otherwise.

    Keys fetched over plain http could be swapped by anyone on the path, which would let
    them sign tokens for any user. Loopback is allowed only so tests can run a local
    provider; it never leaves the machine.
    """
    try:
        # Parse with httpx, the same parser that will make the request, so that no
        # parser difference can make the check see one host and the request reach another.
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"{what} is not a valid URL: {url!r}") from exc
    host = parsed.host
    if not host:
        raise ValueError(f"{what} has no host: {url!r}")
    if parsed.scheme == "https":
        return url
    if parsed.scheme == "http" and _is_loopback_host(host):
        return url
    raise ValueError(f"{what} must use https (http only on a loopback host): {url!r}")


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One usable verification key from a JWK Set."""

    kid: str | None
    key: PublicKey
    # The JWS algorithms this key may verify: its type's family, narrowed to the JWK's
    # own ``alg`` member when present (RFC 7517 §4.4).
    algorithms: frozenset[str]

    def fits(self, alg: str) -> bool:
        return alg in self.algorithms


class UnusableJwk(Exception):
    """A JWK that is skipped (never fatal for the rest of the set)."""


def _algorithms_of(key: object) -> frozenset[str]:
    """The JWS algorithms a parsed public key can verify, or :class:`UnusableJwk`."""
    if isinstance(key, RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise UnusableJwk(f"RSA key of {key.key_size} bits is too short")
        return RSA_ALGORITHMS
    if isinstance(key, EllipticCurvePublicKey):
        algorithm = _EC_ALGORITHM_BY_KEY_CURVE.get(key.curve.name)
        if algorithm is None:
            raise UnusableJwk(f"unsupported EC curve {key.curve.name!r}")
        return frozenset({algorithm})
    if isinstance(key, Ed25519PublicKey | Ed448PublicKey):
        return frozenset({"EdDSA"})
    # A private key object: refused by its members already; never trusted here.
    raise UnusableJwk(f"not a public signature key ({type(key).__name__})")


def parse_jwk(jwk: object) -> SigningKey:
    """Turn one JWK into a :class:`SigningKey`, or raise :class:`UnusableJwk`."""
    if not isinstance(jwk, dict):
        raise UnusableJwk("not a JSON object")
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise UnusableJwk("kid is not a string")
    use = jwk.get("use")
    if use is not None and use != "sig":
        # RFC 7517 §4.2: an "enc" key is for encryption and must not verify signatures.
        raise UnusableJwk(f"use is {use!r}, not 'sig'")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        # RFC 7517 §4.3: the key is not meant for verification.
        raise UnusableJwk("key_ops does not allow 'verify'")
    present_secrets = [m for m in _SECRET_MEMBERS if m in jwk]
    if present_secrets:
        # A published private or symmetric key can be used by anyone to forge tokens
        # ("oct" keys would also mean HMAC, where the "secret" is public). Never trust it.
        raise UnusableJwk(f"contains private/secret members {present_secrets}")
    declared_alg = jwk.get("alg")
    if declared_alg is not None and not isinstance(declared_alg, str):
        raise UnusableJwk("alg is not a string")

    kty = jwk.get("kty")
    crv = jwk.get("crv")
    # Allowlists first, on the members: "oct" (HMAC, a public "secret") and anything
    # new never reach the parser; X25519/X448 are key-agreement curves, never signature
    # keys (RFC 8037 §3.2); secp256k1 is not a JOSE curve we accept.
    if kty not in ("RSA", "EC", "OKP"):
        raise UnusableJwk(f"unsupported kty {kty!r}")
    if kty == "EC" and crv not in _EC_ALGORITHM_BY_CURVE:
        raise UnusableJwk(f"unsupported EC curve {crv!r:.40}")
    if kty == "OKP" and crv not in _OKP_CURVES:
        raise UnusableJwk(f"unsupported OKP curve {crv!r:.40}")
    # Key material is untrusted network input: PyJWT and cryptography raise a variety of
    # exception types for malformed members (PyJWKError, ValueError, TypeError, ...).
    # The broad catch is deliberate: one bad key must never make the whole set unusable.
    # The declared alg is left out of parsing: the key's type decides which algorithms
    # it can verify, and a contradicting alg is refused below with its own reason.
    try:
        key = jwt.PyJWK({name: value for name, value in jwk.items() if name != "alg"}).key
    except Exception as exc:
        raise UnusableJwk(f"unparseable key material ({type(exc).__name__})") from exc
    family = _algorithms_of(key)

    if declared_alg is not None:
        if declared_alg not in family:
            # A key whose declared alg contradicts its type is a broken entry; refusing it
            # is safer than guessing which of the two was meant.
            raise UnusableJwk(f"alg {declared_alg!r} does not fit kty {kty!r}")
        family = frozenset({declared_alg})
    return SigningKey(kid=kid, key=key, algorithms=family)


def freshness_seconds(headers: httpx.Headers) -> float | None:
    """Freshness lifetime left from ``Cache-Control``/``Age`` (RFC 9111 §4.2), or None.

    None means the response gave no max-age, so the caller's default applies.
    """
    max_age: int | None = None
    for directive in headers.get_list("cache-control", split_commas=True):
        name, _, value = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            # Clamped up to the minimum TTL by the caller: we still cache, briefly.
            return 0.0
        if name == "max-age":
            value = value.strip().strip('"')
            if value.isdigit() and value.isascii():
                # Several max-age directives are ambiguous (RFC 9111 §4.2.1); the
                # shortest is the safe reading.
                parsed = int(value)
                max_age = parsed if max_age is None else min(max_age, parsed)
    if max_age is None:
        return None
    # A response served by an intermediate cache is already ``Age`` seconds old.
    age_header = headers.get("age", "").strip()
    age = int(age_header) if age_header.isdigit() and age_header.isascii() else 0
    return float(max(0, max_age - age))


class _FetchFailed(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _KeySet:
    by_kid: Mapping[str, tuple[SigningKey, ...]]
    all_keys: tuple[SigningKey, ...]


_EMPTY = _KeySet(by_kid={}, all_keys=())


class JwksCache:
    """One provider's JWK Set, fetched with a shared ``httpx.AsyncClient``.

    The caller owns the client (and closes it). All time comes from ``clock``, except the
    network timeout, which is necessarily real time.
    """

    def __init__(
        self,
        url: str,
        *,
        http: httpx.AsyncClient,
        clock: Clock,
        timeout_seconds: float = 5.0,
        min_ttl_seconds: float = 60.0,
        max_ttl_seconds: float = 24 * 3600.0,
        default_ttl_seconds: float = 3600.0,
        refetch_cooldown_seconds: float = 60.0,
        label: str | None = None,
        observer: Observer = NO_OBSERVER,
    ) -> None:
        self.url = require_secure_url(url)
        self._observer = observer
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        if not 0 <= min_ttl_seconds <= max_ttl_seconds:
            raise ValueError("need 0 <= min_ttl_seconds <= max_ttl_seconds")
        if default_ttl_seconds < 0 or refetch_cooldown_seconds < 0:
            raise ValueError("default_ttl_seconds and refetch_cooldown_seconds must be >= 0")
        self.label = label or self.url
        self._http = http
        self._clock = clock
        self._timeout = timeout_seconds
        self._min_ttl = min_ttl_seconds
        self._max_ttl = max_ttl_seconds
        self._default_ttl = default_ttl_seconds
        self._cooldown = timedelta(seconds=refetch_cooldown_seconds)

        self._keys: _KeySet = _EMPTY
        self._expires_at: datetime | None = None  # None: never fetched successfully
        self._last_attempt: datetime | None = None
        self._last_ok = False
        # Bumped after every fetch attempt; a lookup that sees it change knows a fetch
        # happened since it started and reuses that result (single flight).
        self._generation = 0
        self._inflight: asyncio.Task[None] | None = None

    @property
    def last_fetch_ok(self) -> bool:
        return self._last_ok

    async def prefetch(self) -> bool:
        """Fetch now if the set is missing or stale (e.g. at start-up); True if keys exist."""
        await self._refresh(self._generation, only_if_stale=True)
        return bool(self._keys.all_keys)

    async def get_keys(self, kid: str | None) -> tuple[SigningKey, ...]:
        """The usable keys for ``kid`` (normally one).

        Raises :class:`InvalidIdToken` if the provider, as far as we can tell, has no such
        key, and :class:`ProviderUnavailable` if we could not ask it.
        """
        started = self._generation
        if self._is_stale():
            await self._refresh(started, only_if_stale=True)

        if kid is None:
            return self._only_key()

        found = self._keys.by_kid.get(kid)
        if found:
            return found
        # Unknown kid: the provider may have rotated (OIDC Core §10.1.1). One refetch,
        # shared with concurrent lookups and subject to the cool-down.
        await self._refresh(started, only_if_stale=False)
        found = self._keys.by_kid.get(kid)
        if found:
            return found
        if not self._last_ok:
            raise ProviderUnavailable(
                detail_for_log=f"JWKS {self.label}: no key {kid[:64]!r} and the last fetch failed"
            )
        raise InvalidIdToken(detail_for_log=f"JWKS {self.label}: unknown kid {kid[:64]!r}")

    def _only_key(self) -> tuple[SigningKey, ...]:
        # A token without kid is accepted only when the choice of key is unambiguous:
        # trying every key in turn would let a token "find" whichever key verifies it and
        # multiply the verification cost per forged token.
        keys = self._keys.all_keys
        if len(keys) == 1:
            return keys
        if not keys and not self._last_ok:
            raise ProviderUnavailable(detail_for_log=f"JWKS {self.label}: no keys available")
        raise InvalidIdToken(
            detail_for_log=f"JWKS {self.label}: token has no kid and the set has {len(keys)} keys"
        )

    def _is_stale(self) -> bool:
        return self._expires_at is None or self._clock.now() >= self._expires_at

    async def _refresh(self, seen_generation: int, *, only_if_stale: bool) -> None:
        # Everything up to the await runs without yielding to the event loop, so the
        # decision to start a fetch and the creation of the shared task are atomic.
        if self._generation != seen_generation:
            return  # a fetch completed since this lookup began: use its result
        inflight = self._inflight
        if inflight is None:
            if only_if_stale and not self._is_stale():
                return
            now = self._clock.now()
            if self._last_attempt is not None and now < self._last_attempt + self._cooldown:
                return  # cool-down: keep what we have (stale keys included)
            self._last_attempt = now
            inflight = asyncio.get_running_loop().create_task(
                self._fetch_and_store(now), name=f"jwks-fetch-{self.label}"
            )
            self._inflight = inflight  # also keeps the task referenced until it ends
        # Single flight: every concurrent lookup awaits the same fetch. The shield means a
        # caller that goes away (client disconnect, request timeout) does not cancel the
        # fetch for everyone else, nor burn the cool-down on a fetch that never finished.
        await asyncio.shield(inflight)

    async def _fetch_and_store(self, now: datetime) -> None:
        ok = False
        try:
            keys, ttl = await self._fetch()
        except _FetchFailed as exc:
            logger.warning(
                "JWKS fetch from %s failed (%s); keeping %d cached key(s)",
                self.label,
                exc,
                len(self._keys.all_keys),
            )
        except Exception:
            # A bug here must surface as "keys unavailable" (503) with a traceback in the
            # log, not as an exception raised into every waiting request.
            logger.exception("JWKS fetch from %s failed unexpectedly", self.label)
        else:
            self._keys = keys
            self._expires_at = now + timedelta(seconds=ttl)
            ok = True
        finally:
            self._last_ok = ok
            self._generation += 1
            self._inflight = None
            self._observer.jwks_fetch(self.label, ok=ok)

    async def _fetch(self) -> tuple[_KeySet, float]:
        try:
            # httpx's timeout is per network operation; the outer one bounds the whole
            # exchange so a provider trickling bytes cannot hold sign-ins hostage.
            async with asyncio.timeout(self._timeout):
                async with self._http.stream(
                    "GET",
                    self.url,
                    headers={"Accept": "application/json"},
                    timeout=self._timeout,
                    # A redirect could lead to a plain-http or unrelated host; the
                    # configured URL is the only place keys come from.
                    follow_redirects=False,
                ) as response:
                    if response.status_code != 200:
                        raise _FetchFailed(f"HTTP {response.status_code}")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_JWKS_BYTES:
                            raise _FetchFailed(f"response larger than {MAX_JWKS_BYTES} bytes")
                    headers = response.headers
        except TimeoutError as exc:
            raise _FetchFailed(f"timed out after {self._timeout}s") from exc
        except (httpx.HTTPError, httpx.StreamError, OSError) as exc:
            raise _FetchFailed(f"{type(exc).__name__}: {exc}") from exc

        try:
            document: Any = json.loads(bytes(body))
        except (ValueError, RecursionError) as exc:
            raise _FetchFailed("response is not JSON") from exc
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise _FetchFailed("response is not a JWK Set (no 'keys' array)")

        key_set = self._parse_keys(document["keys"])
        if not key_set.all_keys:
            # Replacing working keys with an empty set would turn a provider glitch into
            # an outage; treat it like any other failed fetch.
            raise _FetchFailed("no usable keys in the set")

        fresh = freshness_seconds(headers)
        ttl = self._default_ttl if fresh is None else fresh
        return key_set, min(max(ttl, self._min_ttl), self._max_ttl)

    def _parse_keys(self, raw_keys: list[Any]) -> _KeySet:
        if len(raw_keys) > MAX_KEYS:
            logger.warning(
                "JWKS %s has %d keys; only the first %d are used",
                self.label,
                len(raw_keys),
                MAX_KEYS,
            )
        usable: list[SigningKey] = []
        by_kid: dict[str, list[SigningKey]] = {}
        for index, raw in enumerate(raw_keys[:MAX_KEYS]):
            try:
                key = parse_jwk(raw)
            except UnusableJwk as exc:
                kid = raw.get("kid") if isinstance(raw, dict) else None
                logger.warning(
                    "JWKS %s: ignoring key #%d (kid=%.64r): %s", self.label, index, kid, exc
                )
                continue
            usable.append(key)
            if key.kid is not None:
                # RFC 7517 §4.5 allows one kid for keys of different types, so a kid
                # maps to a tuple; the verifier picks the one that fits the token's alg.
                by_kid.setdefault(key.kid, []).append(key)
        return _KeySet(
            by_kid={kid: tuple(keys) for kid, keys in by_kid.items()},
            all_keys=tuple(usable),
        )
