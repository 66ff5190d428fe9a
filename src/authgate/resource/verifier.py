"""Verify authgate access tokens (RFC 9068 JWTs) in any Python service.

Every check, in order; any failure raises :class:`InvalidToken` with the reason for the
log (the caller answers the same 401 whatever failed):

1. shape: a string of at most ``max_token_length`` characters in JWS compact form
   (three base64url parts: a JWE or a JSON serialization is not a token of ours);
2. header: ``typ`` is ``at+jwt`` (RFC 9068 §2.1, so an ID token or another JWT signed
   by the same keys is refused); ``alg`` is in our allowlist (never ``none`` or HS*);
   a ``kid`` is named; no ``crit``; no ``jku``/``x5u``/``jwk``/``x5c`` (a token must
   never say where its key comes from, RFC 8725 §3.10);
3. key: a key we hold under that ``kid`` whose type fits the ``alg``;
4. signature, by PyJWT, with that one algorithm; for ES256 the signature must be in
   low-s form (authgate signs low-s; the high-s twin of a signature is malleable);
5. claims: ``iss`` equal to ours; ``aud`` contains an audience we accept; ``exp`` and
   ``nbf`` against the clock with ``leeway_seconds``; ``iat`` not in the future; ``sub``
   and ``jti`` present; ``sid`` present unless ``require_session=False``;
6. per call: required scopes (:class:`InsufficientScope`), and introspection if asked.

Tokens that passed 1-5 are remembered by their SHA-256 so a client presenting the same
token on every request costs a dictionary look-up; time, the key's presence (a retired
key stops verifying at once), audience, scopes and introspection are checked on every
call all the same. That hit path is synchronous when the key source can answer without
I/O (:class:`~authgate.resource.keys.SyncKeySource`): no coroutine per key look-up, and
the time window and the default audience are worked out once, when the token is cached.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

import httpx
import jwt

from authgate.resource.claims import Claims
from authgate.resource.errors import InsufficientScope, InvalidToken
from authgate.resource.introspection import Introspection
from authgate.resource.keys import (
    DEFAULT_ALGORITHMS,
    SUPPORTED_ALGORITHMS,
    JwksKeys,
    KeySource,
    SyncKeySource,
    TrustedKey,
    key_fits,
)

if TYPE_CHECKING:
    from jwt.types import Options

logger = logging.getLogger(__name__)

_ACCESS_TOKEN_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})
_COMPACT_JWS: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# Headers that would let a token pick its own key (RFC 8725 §3.10).
_KEY_LOCATING_HEADERS: Final = frozenset({"jku", "x5u", "jwk", "x5c"})
# Order of the P-256 group (SEC 2 §2.4.2): a signature (r, s) with s > n/2 has a twin
# (r, n - s) that verifies too; authgate only produces the low one.
_P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
# How far in the future an ``iat`` may be (clock skew between the issuer and us).
_IAT_SKEW_SECONDS: Final = 60.0
_MAX_SUBJECT_CHARS: Final = 255

# The signature only: every claim is checked below, against the injected clock.
_SIGNATURE_ONLY: Final[Options] = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
    "enforce_minimum_key_length": True,
}


def _audiences(value: str | Iterable[str]) -> frozenset[str]:
    names = frozenset([value] if isinstance(value, str) else value)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ValueError("audience must be a non-empty string or strings")
    return names


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    """A JSON NumericDate (RFC 7519 §2), None when absent; refuses anything else."""
    if name not in claims:
        return None
    value = claims[name]
    # bool is an int to Python but not a date; NaN would pass every comparison.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidToken(f"{name} is not a number")
    return float(value)


def _optional_text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidToken(f"{name} is not a non-empty string")
    return value


class _Verified:
    """A cache entry: the claims, their key, and what a hit re-checks, precomputed."""

    __slots__ = ("claims", "default_audience", "expires", "key", "valid_from")

    def __init__(
        self,
        claims: Claims,
        key: TrustedKey,
        *,
        leeway: float,
        accepted: frozenset[str],
    ) -> None:
        raw = claims.raw
        self.claims = claims
        self.key = key
        # Good while valid_from <= now < expires: exp, nbf and iat with the leeway
        # folded in (all checked as numbers already), so a hit costs two comparisons.
        self.expires = float(raw["exp"]) + leeway
        starts = [float(raw["iat"]) - leeway - _IAT_SKEW_SECONDS]
        if "nbf" in raw:
            starts.append(float(raw["nbf"]) - leeway)
        self.valid_from = max(starts)
        # Whether the verifier's own audience(s) accept it: the usual call.
        self.default_audience = not accepted.isdisjoint(claims.aud)


class TokenVerifier:
    """Verifies access tokens against ``keys`` for one ``issuer`` and ``audience``.

    ``audience`` is one name or several (a token must carry at least one of them).
    ``now`` returns the Unix time; inject it in tests instead of sleeping.
    """

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str | Iterable[str],
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway_seconds: float = 0.0,
        require_session: bool = True,
        max_token_length: int = 8192,
        introspection: Introspection | None = None,
        cache_size: int = 4096,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(issuer, str) or not issuer:
            raise ValueError("issuer must be a non-empty string")
        allowed = frozenset(algorithms)
        refused = sorted(allowed - SUPPORTED_ALGORITHMS)
        if refused or not allowed:
            # HS256 and none end here, at start-up, not per token.
            raise ValueError(
                f"algorithms {refused} are not allowed; choose from {sorted(SUPPORTED_ALGORITHMS)}"
            )
        if leeway_seconds < 0 or max_token_length <= 0 or cache_size < 0:
            raise ValueError("leeway_seconds, max_token_length and cache_size must be >= 0")
        self.keys = keys
        self.issuer = issuer
        self.audiences = _audiences(audience)
        self.algorithms = allowed
        self.introspection = introspection
        self._leeway = float(leeway_seconds)
        self._require_session = require_session
        self._max_length = max_token_length
        self._now = now
        self._cache_size = cache_size
        self._verified: dict[bytes, _Verified] = {}
        # A source that can answer from memory (static keys, a server's own key ring,
        # a fresh JWKS cache) spares the hit path a coroutine.
        self._keys_now = keys.keys_now if isinstance(keys, SyncKeySource) else None

    @classmethod
    def from_jwks_url(
        cls,
        url: str,
        *,
        issuer: str,
        audience: str | Iterable[str],
        http_client: httpx.AsyncClient | None = None,
        allow_http: bool = False,
        refetch_cooldown_seconds: float = 30.0,
        **options: Any,
    ) -> TokenVerifier:
        """A verifier whose keys come from a JWKS URL (authgate: ``/.well-known/jwks.json``).

        ``options`` are the other keyword arguments of :class:`TokenVerifier`.
        """
        keys = JwksKeys(
            url,
            http_client=http_client,
            allow_http=allow_http,
            refetch_cooldown_seconds=refetch_cooldown_seconds,
        )
        return cls(keys, issuer=issuer, audience=audience, **options)

    async def verify(
        self,
        token: str,
        *,
        audience: str | Iterable[str] | None = None,
        scopes: Iterable[str] = (),
        introspect: bool = False,
    ) -> Claims:
        """The token's claims, or :class:`InvalidToken` (:class:`InsufficientScope`).

        ``audience`` replaces the verifier's accepted audience(s) for this call;
        ``scopes`` must all be granted; ``introspect`` also asks the introspection
        endpoint whether the token is still active (revocation).
        May raise :class:`VerifierUnavailable` when no key or introspection answer can
        be had.
        """
        if introspect and self.introspection is None:
            raise ValueError("introspect=True needs a TokenVerifier(introspection=...)")
        digest = self._digest(token)
        entry = self._verified.get(digest)
        if entry is not None:
            # The hit path: no coroutine unless the key source must do I/O to answer.
            keys_now = self._keys_now
            held = keys_now(entry.key.kid) if keys_now is not None else None
            if held is None:
                held = await self.keys.keys_for(entry.key.kid)
            entry = self._recheck(digest, entry, held)
        else:
            # Checked before anything is decoded; a hit skips it (see _digest).
            if not _COMPACT_JWS.fullmatch(token):
                raise InvalidToken("not a JWS in compact form")
            claims, key = await self._check(token)
            entry = _Verified(claims, key, leeway=self._leeway, accepted=self.audiences)
            if self._cache_size:
                if len(self._verified) >= self._cache_size:
                    # Oldest first (dicts keep insertion order): cheap and bounded.
                    self._verified.pop(next(iter(self._verified)), None)
                self._verified[digest] = entry
        claims = entry.claims
        if audience is None:
            if not entry.default_audience:
                accepted = sorted(self.audiences)
                raise InvalidToken(f"audience {list(claims.aud)!r} is not {accepted!r}")
        else:
            accepted_now = _audiences(audience)
            if accepted_now.isdisjoint(claims.aud):
                raise InvalidToken(f"audience {list(claims.aud)!r} is not {sorted(accepted_now)!r}")
        if scopes:
            required = frozenset(scopes)
            if not required <= claims.scopes:
                raise InsufficientScope(required, claims.scopes)
        if introspect:
            assert self.introspection is not None  # checked above  # noqa: S101
            if not await self.introspection.is_active(token):
                raise InvalidToken("introspection says the token is not active")
        return claims

    def _digest(self, token: str) -> bytes:
        """The cache key of a token: SHA-256 of its bytes (only hashes of bearer
        secrets are kept in memory).

        The shape (compact JWS, unpadded base64url) is checked on a miss only. A hit
        means these exact bytes passed every check before (a second preimage of
        SHA-256 is out of reach), so the regex would only repeat itself, at half the
        cost of a hit. The length cap comes first: it bounds the hashing work.
        """
        if not isinstance(token, str) or not token:
            raise InvalidToken("no token")
        if len(token) > self._max_length:
            raise InvalidToken(f"token longer than {self._max_length} characters")
        try:
            return hashlib.sha256(token.encode("ascii")).digest()
        except UnicodeEncodeError:
            raise InvalidToken("not a JWS in compact form") from None

    def _recheck(self, digest: bytes, entry: _Verified, held: Sequence[TrustedKey]) -> _Verified:
        """``entry`` if it still holds now; otherwise it leaves the cache and this raises.

        ``held`` are the keys the source holds under the token's ``kid`` now: a key
        retired since stops its tokens at once.
        """
        key = entry.key
        for candidate in held:
            if candidate is key:  # identity: a hit compares no key material
                break
        else:
            # A refetched JWKS parses new objects for the same keys: an equal key
            # verified this token as well as the old object did.
            replacement = next((candidate for candidate in held if candidate == key), None)
            if replacement is None:
                self._verified.pop(digest, None)
                raise InvalidToken(f"key {key.kid!r} is no longer trusted")
            entry.key = replacement
        now = self._now()
        if not entry.valid_from <= now < entry.expires:
            self._verified.pop(digest, None)
            self._check_times(entry.claims.raw)  # raises with the reason for the log
            raise InvalidToken("outside its validity window")  # pragma: no cover
        return entry

    async def _check(self, token: str) -> tuple[Claims, TrustedKey]:
        alg, kid = self._check_header(token)
        candidates = [key for key in await self.keys.keys_for(kid) if key.algorithm == alg]
        fitting = [key for key in candidates if key_fits(alg, key.key)]
        if not fitting:
            raise InvalidToken(f"no key {kid!r} for {alg}")
        if alg == "ES256":
            self._check_low_s(token)
        for key in fitting:
            try:
                payload = jwt.decode(token, key.key, algorithms=[alg], options=_SIGNATURE_ONLY)
            except jwt.InvalidSignatureError:
                continue  # a second key under the same kid (RFC 7517 §4.5) may fit
            except (jwt.PyJWTError, ValueError, TypeError) as exc:
                raise InvalidToken(f"undecodable token: {type(exc).__name__}") from None
            return self._check_claims(payload), key
        raise InvalidToken("signature does not verify")

    def _check_header(self, token: str) -> tuple[str, str]:
        try:
            # Read only to choose the key; nothing in it is trusted yet.
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise InvalidToken(f"unreadable header: {type(exc).__name__}") from None
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCESS_TOKEN_TYPES:
            raise InvalidToken(f"typ {typ!r:.40} is not at+jwt")
        if "crit" in header:
            raise InvalidToken("crit header: no extension is understood")  # RFC 7515 §4.1.11
        carried = sorted(_KEY_LOCATING_HEADERS.intersection(header))
        if carried:
            raise InvalidToken(f"header names its own key ({', '.join(carried)})")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidToken(f"alg {alg!r:.40} is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("no kid")
        return alg, kid

    @staticmethod
    def _check_low_s(token: str) -> None:
        encoded = token.rsplit(".", 1)[1]
        try:
            signature = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise InvalidToken("signature is not base64url") from None
        if len(signature) != 64:
            raise InvalidToken("ES256 signature is not 64 bytes")
        if int.from_bytes(signature[32:], "big") > _P256_ORDER // 2:
            raise InvalidToken("ES256 signature is not low-s")

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._now()
        exp = _numeric_date(claims, "exp")
        if exp is None:
            raise InvalidToken("no exp")
        if now >= exp + self._leeway:
            raise InvalidToken("expired")
        nbf = _numeric_date(claims, "nbf")
        if nbf is not None and now + self._leeway < nbf:
            raise InvalidToken("not yet valid (nbf)")
        iat = _numeric_date(claims, "iat")
        if iat is None:
            raise InvalidToken("no iat")
        if iat > now + self._leeway + _IAT_SKEW_SECONDS:
            raise InvalidToken("issued in the future")

    def _check_claims(self, payload: dict[str, Any]) -> Claims:
        iss = payload.get("iss")
        if iss != self.issuer:
            raise InvalidToken(f"issuer {iss!r:.80} is not ours")
        aud = payload.get("aud")
        audiences = (aud,) if isinstance(aud, str) else aud
        if not isinstance(audiences, list | tuple) or not audiences:
            raise InvalidToken("aud missing")
        if not all(isinstance(name, str) for name in audiences):
            raise InvalidToken("aud is not strings")
        self._check_times(payload)
        sub = payload.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > _MAX_SUBJECT_CHARS:
            raise InvalidToken("sub missing or not a string of 1-255 characters")
        jti = payload.get("jti")
        if not isinstance(jti, str) or not jti:
            raise InvalidToken("jti missing")
        sid = _optional_text(payload, "sid")
        if sid is None and self._require_session:
            # A service token (client_credentials) has no session: never a user.
            raise InvalidToken("no sid: not a user token")
        scope = payload.get("scope")
        if scope is not None and not isinstance(scope, str):
            raise InvalidToken("scope is not a string")
        nbf = _numeric_date(payload, "nbf")
        return Claims(
            sub=sub,
            iss=self.issuer,
            aud=tuple(audiences),
            exp=math.floor(payload["exp"]),
            iat=math.floor(payload["iat"]),
            jti=jti,
            sid=sid,
            client_id=_optional_text(payload, "client_id"),
            scopes=frozenset(scope.split()) if scope else frozenset(),
            nbf=None if nbf is None else math.floor(nbf),
            email=payload.get("email") if isinstance(payload.get("email"), str) else None,
            raw=MappingProxyType(payload),
        )
