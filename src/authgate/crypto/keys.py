"""Signing keys: loaded and checked once at start-up, addressed by ``kid``.

One signer, many verifiers: the key that signs is also published; extra public keys
(the next and previous keys of the ring, crypto.keyring) verify but never sign. The
``kid`` is the RFC 7638 JWK thumbprint, so it is derived from the key itself and
cannot drift. JWK export and thumbprints are joserfc's, not written here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

from authgate.resource.keys import TrustedKey

logger = logging.getLogger(__name__)

SigningPrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
VerifyingPublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


class KeyError_(Exception):
    """A key file is missing, unreadable, or does not fit the configured algorithm."""


def public_jwk(key: VerifyingPublicKey) -> dict[str, str]:
    """The public members of a JWK (RFC 7517/7518/8037), without kid/alg/use.

    Exported by joserfc (the JOSE library that also computes RFC 7638 thumbprints)."""
    if isinstance(key, ec.EllipticCurvePublicKey) and not isinstance(key.curve, ec.SECP256R1):
        raise KeyError_(f"unsupported EC curve {key.curve.name}; ES256 needs P-256")
    members = _jose_key(key).as_dict(private=False)
    return {name: str(value) for name, value in sorted(members.items())}


def _jose_key(key: VerifyingPublicKey) -> RSAKey | ECKey | OKPKey:
    if isinstance(key, rsa.RSAPublicKey):
        return RSAKey.import_key(key)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return ECKey.import_key(key)
    return OKPKey.import_key(key)


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 thumbprint (SHA-256) of a public JWK: our ``kid``."""
    public = {name: value for name, value in jwk.items() if name not in ("d", "p", "q")}
    return JWKRegistry.import_key(dict(public)).thumbprint()


def algorithm_for(key: VerifyingPublicKey | SigningPrivateKey) -> str:
    """The one algorithm we use a key with, from its type (a key never serves two)."""
    for algorithm in ("RS256", "ES256", "EdDSA"):
        if algorithm_fits(algorithm, key):
            return algorithm
    raise KeyError_("unsupported key: RS256 needs RSA-2048+, ES256 P-256, EdDSA Ed25519")


def algorithm_fits(algorithm: str, key: VerifyingPublicKey | SigningPrivateKey) -> bool:
    if algorithm == "RS256":
        return isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) and key.key_size >= 2048
    if algorithm == "ES256":
        return isinstance(
            key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey
        ) and isinstance(key.curve, ec.SECP256R1)
    if algorithm == "EdDSA":
        return isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey)
    return False


@dataclass(frozen=True)
class VerificationKey:
    kid: str
    algorithm: str
    public_key: VerifyingPublicKey
    jwk: dict[str, str]


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private_key: SigningPrivateKey
    verification: VerificationKey


@dataclass(frozen=True)
class KeySet:
    """One snapshot of the ring: the key that signs, and every key that verifies.

    ``extra_verification`` holds the next and previous keys (published, verify, never
    sign). Lookups and the JWKS body are computed once here, never per request."""

    signing: SigningKey
    extra_verification: tuple[VerificationKey, ...] = ()
    by_kid: dict[str, VerificationKey] = field(init=False)
    trusted: dict[str, tuple[TrustedKey, ...]] = field(init=False)
    jwks_body: bytes = field(init=False)

    def __post_init__(self) -> None:
        keys = {self.signing.kid: self.signing.verification}
        keys.update({key.kid: key for key in self.extra_verification})
        object.__setattr__(self, "by_kid", keys)
        trusted = {
            kid: (TrustedKey(kid=kid, algorithm=key.algorithm, key=key.public_key),)
            for kid, key in keys.items()
        }
        object.__setattr__(self, "trusted", trusted)
        body = json.dumps(self.jwks(), separators=(",", ":")).encode("utf-8")
        object.__setattr__(self, "jwks_body", body)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Public keys only: a private member must never appear here."""
        return {"keys": [dict(key.jwk) for key in self.by_kid.values()]}


def make_verification_key(public_key: VerifyingPublicKey, algorithm: str) -> VerificationKey:
    if not algorithm_fits(algorithm, public_key):
        raise KeyError_(f"the public key does not fit {algorithm}")
    members = public_jwk(public_key)
    kid = jwk_thumbprint(members)
    jwk = {**members, "kid": kid, "alg": algorithm, "use": "sig"}
    return VerificationKey(kid=kid, algorithm=algorithm, public_key=public_key, jwk=jwk)


def make_signing_key(private_key: SigningPrivateKey, algorithm: str) -> SigningKey:
    if not algorithm_fits(algorithm, private_key):
        raise KeyError_(f"the private key is not a key for {algorithm}")
    verification = make_verification_key(private_key.public_key(), algorithm)
    return SigningKey(
        kid=verification.kid,
        algorithm=algorithm,
        private_key=private_key,
        verification=verification,
    )


def _read(path: Path, variable: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyError_(f"{variable}: cannot read {path}: {exc.strerror}") from None


def load_private_key(path: Path, variable: str = "JWT_PRIVATE_KEY_PATH") -> SigningPrivateKey:
    return parse_private_key(_read(path, variable), variable, str(path))


def parse_private_key(data: bytes, variable: str, where: str = "the value") -> SigningPrivateKey:
    """A PEM private key; ``where`` names its file (never its text) in errors."""
    try:
        key: PrivateKeyTypes = serialization.load_pem_private_key(data, None)
    except (ValueError, TypeError) as exc:
        raise KeyError_(
            f"{variable}: {where} is not an unencrypted PEM private key ({exc})"
        ) from None
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise KeyError_(f"{variable}: {where} holds an unsupported key type")
    return key


def load_public_key(path: Path, variable: str = "JWT_PUBLIC_KEY_PATH") -> VerifyingPublicKey:
    return parse_public_key(_read(path, variable), variable, str(path))


def parse_public_key(data: bytes, variable: str, where: str = "the value") -> VerifyingPublicKey:
    try:
        key: PublicKeyTypes = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyError_(f"{variable}: {where} is not a PEM public key ({exc})") from None
    if not isinstance(key, VerifyingPublicKey):
        raise KeyError_(f"{variable}: {where} holds an unsupported key type")
    return key


def load_key_set(
    *,
    private_key_path: Path | None = None,
    public_key_path: Path | None,
    algorithm: str,
    extra_public_key_paths: Iterable[Path] = (),
    private_key_pem: bytes | None = None,
    public_key_pem: bytes | None = None,
) -> KeySet:
    """The static ring: the pair from files (``*_path``) or PEM text (``*_pem``,
    JWT_PRIVATE_KEY / JWT_PUBLIC_KEY), plus earlier public keys from files."""
    if private_key_pem is not None:
        private_variable = "JWT_PRIVATE_KEY"
        private_key = parse_private_key(private_key_pem, private_variable)
    elif private_key_path is not None:
        private_variable = "JWT_PRIVATE_KEY_PATH"
        private_key = load_private_key(private_key_path)
    else:
        raise ValueError("a static ring needs a private key (a path or PEM text)")
    try:
        signing = make_signing_key(private_key, algorithm)
    except KeyError_ as exc:
        raise KeyError_(f"{private_variable}: {exc} (JWT_ALGORITHM={algorithm})") from None
    public_key: VerifyingPublicKey | None = None
    if public_key_pem is not None:
        public_variable = "JWT_PUBLIC_KEY"
        public_key = parse_public_key(public_key_pem, public_variable)
    elif public_key_path is not None:
        public_variable = "JWT_PUBLIC_KEY_PATH"
        public_key = load_public_key(public_key_path)
    if public_key is not None:
        try:
            published = make_verification_key(public_key, algorithm)
        except KeyError_ as exc:
            raise KeyError_(f"{public_variable}: {exc}") from None
        # A mismatched pair would publish a key that verifies nothing we sign.
        if published.kid != signing.kid:
            raise KeyError_(
                f"{public_variable}: the public key is not the public half of {private_variable}"
            )
    extra: list[VerificationKey] = []
    for path in extra_public_key_paths:
        # Each previous key verifies with its own algorithm: JWT_ALGORITHM may have
        # changed since it signed.
        previous = load_public_key(path, "JWT_PREVIOUS_PUBLIC_KEY_PATHS")
        try:
            key = make_verification_key(previous, algorithm_for(previous))
        except KeyError_ as exc:
            raise KeyError_(f"JWT_PREVIOUS_PUBLIC_KEY_PATHS: {path}: {exc}") from None
        if key.kid != signing.kid and all(key.kid != other.kid for other in extra):
            extra.append(key)
    return KeySet(signing=signing, extra_verification=tuple(extra))


def generate_private_key(algorithm: str) -> SigningPrivateKey:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise KeyError_(f"unsupported algorithm {algorithm}")


def write_key_pair(directory: Path, algorithm: str, *, stem: str = "jwt") -> tuple[Path, Path]:
    """Write ``<stem>-private.pem`` (mode 0600) and ``<stem>-public.pem``; never overwrite."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / f"{stem}-private.pem"
    public_path = directory / f"{stem}-public.pem"
    for path in (private_path, public_path):
        if path.exists():
            raise KeyError_(f"{path} already exists; refusing to overwrite a key")
    key = generate_private_key(algorithm)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # O_EXCL: two processes starting at once must not both write (and mix) a key.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    public_path.write_bytes(public_pem)
    return private_path, public_path


def jwks_json(key_set: KeySet) -> bytes:
    return key_set.jwks_body


def describe(jwk: dict[str, Any]) -> str:
    return f"{jwk.get('alg')} key {jwk.get('kid')}"
