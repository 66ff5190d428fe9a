"""Verification of OpenID Connect ID tokens (OpenID Connect Core 1.0 §3.1.3.7).

Every check runs on every token; each refusal raises :class:`InvalidIdToken` with the
reason in ``detail_for_log`` (logged, never shown to the client, so a forger learns
nothing about which check stopped them). Only a missing key set raises
:class:`ProviderUnavailable`. No PyJWT exception escapes.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

import jwt

from authgate.clock import Clock
from authgate.domain.emails import MAX_EMAIL_LENGTH
from authgate.domain.identity import VerifiedIdentity
from authgate.errors import InvalidIdToken
from authgate.identity.jwks import JwksCache, SigningKey, require_secure_url

if TYPE_CHECKING:
    from jwt.types import Options  # a TypedDict, for type checking only

# Asymmetric algorithms only. HMAC (HS*) is never acceptable for a third party's token:
# the "secret" would have to be shared with us, and accepting it is the classic way to
# forge tokens with the provider's *public* key as the HMAC secret (RFC 8725 §2.1, §3.1).
SUPPORTED_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}
)

# Tokens that providers sign with the same keys but that are not ID tokens. Accepting
# them would be token-type confusion (RFC 8725 §2.8, §3.11): an access token (RFC 9068
# §2.1, which also covers our own access tokens), a back-channel logout token (OIDC
# Back-Channel Logout §2.4) or a security event token (RFC 8417 §2.3).
_REFUSED_TYPES: Final = frozenset(
    {
        "at+jwt",
        "application/at+jwt",
        "logout+jwt",
        "application/logout+jwt",
        "secevent+jwt",
        "application/secevent+jwt",
    }
)

# ID tokens are 1-2 KB; the cap bounds the work an unauthenticated caller can cause.
MAX_TOKEN_CHARS: Final = 16 * 1024

# A JWS in compact form (RFC 7515 §7.1): three unpadded base64url parts (§2). PyJWT
# would also accept padding ("=="), "+" or "/", giving one token several spellings;
# only this one is accepted. (Five parts would be an encrypted JWE: refused too.)
_COMPACT_JWS: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")

# Google is the authority for its own mail domains, and for every address of a
# Workspace account (the ``hd`` claim names its organisation, whose domains Google
# has verified). Any other address on a Google account was only verified once, by a
# mail Google sent: its owner may have lost the domain since.
# https://developers.google.com/identity/openid-connect/openid-connect#an-id-tokens-payload
GOOGLE_MAIL_DOMAINS: Final = frozenset({"gmail.com", "googlemail.com"})

# The latest date a use record can be kept until (DATETIME's range on MariaDB).
_LAST_RECORDABLE: Final = datetime(9999, 12, 31, tzinfo=UTC)

# OIDC Core §2: sub is at most 255 ASCII characters. We allow visible ASCII only (no
# space or control characters) so two subjects cannot differ only in invisible bytes.
_SUBJECT: Final = re.compile(r"[\x21-\x7e]{1,255}")

# Provider names become URL path segments and log labels; "credentials" is the
# password sign-in route.
_PROVIDER_NAME: Final = re.compile(r"[a-z0-9_-]{1,32}")
RESERVED_PROVIDER_NAMES: Final = frozenset({"credentials"})

# Signature only: every claim is checked below, against the injected clock.
_DECODE_OPTIONS: Final[Options] = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
    # A short key is an error, not a warning we might never read.
    "enforce_minimum_key_length": True,
}


def validate_provider_name(name: str) -> str:
    if not isinstance(name, str) or not _PROVIDER_NAME.fullmatch(name):
        raise ValueError(f"provider name must match [a-z0-9_-]{{1,32}}: {name!r}")
    if name in RESERVED_PROVIDER_NAMES:
        raise ValueError(f"provider name {name!r} is reserved")
    return name


def _non_empty_strings(field: str, values: object) -> None:
    if not isinstance(values, tuple) or not values:
        raise ValueError(f"{field} must be a non-empty tuple of strings")
    for value in values:
        if not isinstance(value, str) or not value or value != value.strip():
            raise ValueError(f"{field} must hold non-empty strings without spaces: {value!r}")


class EmailTrust(StrEnum):
    """Which addresses a provider vouches for: the addresses that may link an identity
    to an existing account or claim the unique email key (always also ``email_verified``)."""

    # None: a generic provider lets its users type any address, and "verified" means
    # whatever that provider decided. Opt in per provider with "trustEmail": true.
    NONE = "none"
    # Every address it marks verified: Apple (which also relays private addresses),
    # and generic providers configured with "trustEmail": true.
    VERIFIED = "verified"
    # @gmail.com / @googlemail.com, or any address of a token with ``hd``.
    GOOGLE = "google"


@dataclass(frozen=True, slots=True)
class OidcProviderConfig:
    """What we trust about one provider. Validated at construction, so a bad setting
    stops start-up instead of weakening verification."""

    name: str
    # Exact string match (OIDC Core §3.1.3.7 step 2): no normalisation, so look-alikes
    # such as a trailing slash or http:// never match.
    issuers: tuple[str, ...]
    # Our client ids (Google) or bundle/services ids (Apple).
    audiences: tuple[str, ...]
    algorithms: tuple[str, ...]
    jwks_url: str
    # Defaults are the strict choice for a generic provider; the Google and Apple
    # presets choose theirs (see authgate.identity.providers).
    email_trust: EmailTrust = EmailTrust.NONE
    # Refuse tokens without a nonce (OIDC Core §3.1.2.1, §15.5.2): without one, a
    # captured ID token is as good as the sign-in that produced it.
    require_nonce: bool = True

    def __post_init__(self) -> None:
        validate_provider_name(self.name)
        _non_empty_strings("issuers", self.issuers)
        _non_empty_strings("audiences", self.audiences)
        _non_empty_strings("algorithms", self.algorithms)
        unsupported = sorted(set(self.algorithms) - SUPPORTED_ALGORITHMS)
        if unsupported:
            raise ValueError(
                f"unsupported algorithms {unsupported}; allowed: {sorted(SUPPORTED_ALGORITHMS)}"
            )
        require_secure_url(self.jwks_url)
        if not isinstance(self.email_trust, EmailTrust):
            raise ValueError(f"email_trust must be an EmailTrust: {self.email_trust!r}")
        if not isinstance(self.require_nonce, bool):
            raise ValueError(f"require_nonce must be true or false: {self.require_nonce!r}")


def _show(value: object) -> str:
    # Token contents are attacker-chosen: quoted (no log-line injection) and bounded.
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _numeric_date(value: object) -> float | None:
    """A JSON NumericDate (RFC 7519 §2) as float, or None if it is not one."""
    # bool is an int in Python; JSON true is not a date.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        as_float = float(value)
    except OverflowError:
        return None
    # Python's json accepts NaN/Infinity; NaN compares false with everything and would
    # slip through every time check.
    return as_float if math.isfinite(as_float) else None


class OidcVerifier:
    """Verifies one provider's ID tokens; implements ``IdTokenVerifier``."""

    def __init__(
        self,
        config: OidcProviderConfig,
        *,
        keys: JwksCache,
        clock: Clock,
        clock_skew_seconds: float = 60.0,
    ) -> None:
        if clock_skew_seconds < 0:
            raise ValueError("clock_skew_seconds must be >= 0")
        self.name = config.name
        self.config = config
        self.keys = keys
        self._clock = clock
        self._skew = float(clock_skew_seconds)
        self._issuers = frozenset(config.issuers)
        self._audiences = frozenset(config.audiences)
        self._algorithms = frozenset(config.algorithms)
        self._email_trust = config.email_trust
        self._require_nonce = config.require_nonce

    def _refuse(self, reason: str) -> InvalidIdToken:
        return InvalidIdToken(detail_for_log=f"{self.name} id token refused: {reason}")

    async def verify(self, token: str, *, nonce: str | None) -> VerifiedIdentity:
        alg, kid = self._check_header(token)
        candidates = await self.keys.get_keys(kid)
        fitting = [key for key in candidates if key.fits(alg)]
        if not fitting:
            # E.g. an RSA key named by a token claiming ES256: the alg must fit the key,
            # whatever the allowlist says (RFC 8725 §3.1).
            raise self._refuse(f"alg {_show(alg)} does not fit the key {_show(kid)}")
        claims = self._check_signature(token, alg, fitting)
        return self._check_claims(claims, nonce, signed_part=token.rpartition(".")[0])

    def _check_header(self, token: str) -> tuple[str, str | None]:
        if not isinstance(token, str) or not token:
            raise self._refuse("no token")
        if len(token) > MAX_TOKEN_CHARS:
            raise self._refuse(f"token longer than {MAX_TOKEN_CHARS} characters")
        if not _COMPACT_JWS.fullmatch(token):
            raise self._refuse("not a compact JWS of unpadded base64url parts")
        try:
            # Read only to choose the key and algorithm; nothing here is trusted yet.
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise self._refuse(f"unreadable header ({type(exc).__name__})") from None

        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() in _REFUSED_TYPES):
            raise self._refuse(f"typ {_show(typ)} is not an ID token")
        if "crit" in header:
            # RFC 7515 §4.1.11: extensions listed in crit must be understood; we
            # understand none, and ID tokens from our providers never use any.
            raise self._refuse("crit header present")

        alg = header.get("alg")
        if not isinstance(alg, str):
            raise self._refuse("alg missing")
        if alg.lower() == "none":
            raise self._refuse("alg none")  # an unsigned token proves nothing
        if alg.upper().startswith("HS"):
            raise self._refuse(f"symmetric alg {_show(alg)}")  # see SUPPORTED_ALGORITHMS
        if alg not in self._algorithms:
            raise self._refuse(f"alg {_show(alg)} not allowed for this provider")

        # jku, x5u, jwk and x5c are deliberately ignored (RFC 8725 §3.10): a token must
        # never tell us where to get the key that verifies it. Keys come only from the
        # provider's configured JWKS URL.
        kid = header.get("kid")  # PyJWT has already refused a non-string kid
        return alg, kid if isinstance(kid, str) else None

    def _check_signature(self, token: str, alg: str, keys: list[SigningKey]) -> dict[str, Any]:
        for signing_key in keys:
            try:
                # A single algorithm, the one already checked against the allowlist
                # and the key type: PyJWT must not pick one from the token.
                return jwt.decode(
                    token, key=signing_key.key, algorithms=[alg], options=_DECODE_OPTIONS
                )
            except jwt.InvalidSignatureError:
                continue  # a second key with the same kid (RFC 7517 §4.5) may fit
            except (jwt.PyJWTError, ValueError, TypeError) as exc:
                raise self._refuse(f"undecodable token ({type(exc).__name__})") from None
        raise self._refuse("signature does not verify")

    def _check_claims(
        self, claims: dict[str, Any], nonce: str | None, *, signed_part: str
    ) -> VerifiedIdentity:
        iss = claims.get("iss")
        if not isinstance(iss, str) or iss not in self._issuers:
            raise self._refuse(f"issuer {_show(iss)} is not pinned")

        # OIDC Core §3.1.3.7 step 3: aud must contain our client id, and a token that
        # also names an audience we do not trust is refused.
        aud = claims.get("aud")
        audiences: list[Any]
        if isinstance(aud, str):
            audiences = [aud]
        elif isinstance(aud, list) and aud:
            audiences = aud
        else:
            raise self._refuse("aud missing or malformed")
        untrusted = [a for a in audiences if not isinstance(a, str) or a not in self._audiences]
        if untrusted:
            raise self._refuse(f"untrusted audience(s) {_show(untrusted)}")
        # OIDC Core §2: azp is the party the token was issued to; it must be ours too.
        azp = claims.get("azp")
        if azp is not None and (not isinstance(azp, str) or azp not in self._audiences):
            raise self._refuse(f"untrusted azp {_show(azp)}")

        exp = self._check_times(claims)

        sub = claims.get("sub")
        if not isinstance(sub, str) or not _SUBJECT.fullmatch(sub):
            raise self._refuse("sub missing or not 1-255 visible ASCII characters")

        self._check_nonce(claims.get("nonce"), nonce)

        email = claims.get("email")
        if not isinstance(email, str) or not email or len(email) > MAX_EMAIL_LENGTH:
            # Over 254 characters is no address (RFC 5321 §4.5.3.1); treated as none
            # rather than stored cut, or refused by one database and not the other.
            email = None
        email_verified = email is not None and self._true(claims.get("email_verified"))
        return VerifiedIdentity(
            provider=self.name,
            subject=sub,
            email=email,
            email_verified=email_verified,
            is_private_email=email is not None and self._true(claims.get("is_private_email")),
            given_name=self._optional_string(claims.get("given_name")),
            family_name=self._optional_string(claims.get("family_name")),
            email_trusted=email is not None
            and email_verified
            and self._vouches_for(email, claims.get("hd")),
            token_hash=hashlib.sha256(signed_part.encode("ascii")).hexdigest(),
            token_expires_at=self._record_until(exp),
        )

    def _vouches_for(self, email: str, hosted_domain: object) -> bool:
        if self._email_trust is EmailTrust.VERIFIED:
            return True
        if self._email_trust is EmailTrust.GOOGLE:
            if isinstance(hosted_domain, str) and hosted_domain:
                return True  # a Workspace account: its organisation's verified domains
            return email.rpartition("@")[2].lower() in GOOGLE_MAIL_DOMAINS
        return False

    def _record_until(self, exp: float) -> datetime:
        try:
            return min(datetime.fromtimestamp(exp + self._skew, UTC), _LAST_RECORDABLE)
        except (OverflowError, OSError, ValueError):
            return _LAST_RECORDABLE  # exp far beyond any calendar a database stores

    def _check_times(self, claims: dict[str, Any]) -> float:
        """Check ``exp``, ``iat`` and ``nbf``; return ``exp``."""
        # Against the injected clock with a symmetric leeway for skew between our clock
        # and the provider's (RFC 7519 §4.1.4-4.1.6; OIDC Core §3.1.3.7 steps 9-10).
        now = self._clock.now().timestamp()
        exp = _numeric_date(claims.get("exp"))
        if exp is None:
            raise self._refuse("exp missing or not a number")
        if now >= exp + self._skew:
            raise self._refuse("expired")
        iat = _numeric_date(claims.get("iat"))
        if iat is None:
            raise self._refuse("iat missing or not a number")
        if iat > now + self._skew:
            raise self._refuse("issued in the future")
        if "nbf" in claims:
            nbf = _numeric_date(claims["nbf"])
            if nbf is None:
                raise self._refuse("nbf not a number")
            if now + self._skew < nbf:
                raise self._refuse("not yet valid (nbf)")
        return exp

    def _check_nonce(self, token_nonce: object, request_nonce: str | None) -> None:
        # OIDC Core §3.1.3.7 step 11 / §15.5.2: the nonce binds the token to the sign-in
        # the client started, so a captured token cannot be replayed. The client sends
        # the provider sha256(nonce) and us the raw nonce, which only it knows.
        if request_nonce is not None and not request_nonce:
            raise self._refuse("empty request nonce")
        if self._require_nonce and (token_nonce is None or request_nonce is None):
            raise self._refuse("this provider requires a nonce in the token and the request")
        if token_nonce is None:
            if request_nonce is not None:
                raise self._refuse("request has a nonce but the token has none")
            return
        if not isinstance(token_nonce, str):
            raise self._refuse("token nonce is not a string")
        if request_nonce is None:
            raise self._refuse("token has a nonce but the request gave none")
        expected = hashlib.sha256(request_nonce.encode("utf-8", "surrogatepass")).hexdigest()
        # Constant time, so response timing does not reveal how much of a guess matched.
        if not hmac.compare_digest(
            expected.encode("ascii"), token_nonce.encode("utf-8", "surrogatepass")
        ):
            raise self._refuse("nonce mismatch")

    def _true(self, value: object) -> bool:
        # Only an explicit true counts: JSON true, or the string "true" that Apple
        # sends (and other providers copy). A missing, null, 1 or "yes" claim must
        # never mark an address as verified (that would allow takeover by email).
        return value is True or value == "true"

    @staticmethod
    def _optional_string(value: object) -> str | None:
        return value if isinstance(value, str) and value else None
