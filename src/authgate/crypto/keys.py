"""Signing keys: loaded and checked once at start-up, addressed by ``kid``.

One signer, many verifiers: the key that signs is also published; extra public keys
(a previous key during rotation) verify but never sign. The ``kid`` is the RFC 7638
JWK thumbprint, so it is derived from the key itself and cannot drift.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from authgate.private_files import make_private_directory

logger = logging.getLogger(__name__)

SigningPrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
VerifyingPublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


class KeyError_(Exception):
    """A key file is missing, unreadable, or does not fit the configured algorithm."""


def _b64url_uint(value: int) -> str:
    length = max(1, (value.bit_length() + 7) // 8)
    return _b64url(value.to_bytes(length, "big"))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(key: VerifyingPublicKey) -> dict[str, str]:
    """The public members of a JWK (RFC 7517/7518/8037), without kid/alg/use."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {"kty": "RSA", "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyError_(f"unsupported EC curve {key.curve.name}; ES256 needs P-256")
        ec_numbers = key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url(ec_numbers.x.to_bytes(32, "big")),
            "y": _b64url(ec_numbers.y.to_bytes(32, "big")),
        }
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}


# RFC 7638 section 3.2: only the required members, in lexicographic order.
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return _b64url(hashlib.sha256(canonical).digest())


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
    signing: SigningKey
    extra_verification: tuple[VerificationKey, ...] = ()
    by_kid: dict[str, VerificationKey] = field(init=False)

    def __post_init__(self) -> None:
        keys = {self.signing.kid: self.signing.verification}
        keys.update({key.kid: key for key in self.extra_verification})
        object.__setattr__(self, "by_kid", keys)

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
    try:
        key: PrivateKeyTypes = serialization.load_pem_private_key(_read(path, variable), None)
    except (ValueError, TypeError) as exc:
        raise KeyError_(
            f"{variable}: {path} is not an unencrypted PEM private key ({exc})"
        ) from None
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise KeyError_(f"{variable}: {path} holds an unsupported key type")
    return key


def load_public_key(path: Path, variable: str = "JWT_PUBLIC_KEY_PATH") -> VerifyingPublicKey:
    try:
        key: PublicKeyTypes = serialization.load_pem_public_key(_read(path, variable))
    except (ValueError, TypeError) as exc:
        raise KeyError_(f"{variable}: {path} is not a PEM public key ({exc})") from None
    if not isinstance(key, VerifyingPublicKey):
        raise KeyError_(f"{variable}: {path} holds an unsupported key type")
    return key


def load_key_set(
    *,
    private_key_path: Path,
    public_key_path: Path | None,
    algorithm: str,
    extra_public_key_paths: Iterable[Path] = (),
) -> KeySet:
    private_key = load_private_key(private_key_path)
    try:
        signing = make_signing_key(private_key, algorithm)
    except KeyError_ as exc:
        raise KeyError_(f"JWT_PRIVATE_KEY_PATH: {exc} (JWT_ALGORITHM={algorithm})") from None
    if public_key_path is not None:
        public_key = load_public_key(public_key_path)
        try:
            published = make_verification_key(public_key, algorithm)
        except KeyError_ as exc:
            raise KeyError_(f"JWT_PUBLIC_KEY_PATH: {exc}") from None
        # A mismatched pair would publish a key that verifies nothing we sign.
        if published.kid != signing.kid:
            raise KeyError_(
                "JWT_PUBLIC_KEY_PATH: the public key is not the public half of JWT_PRIVATE_KEY_PATH"
            )
    extra = tuple(
        make_verification_key(load_public_key(p, "JWT_EXTRA_PUBLIC_KEY_PATHS"), algorithm)
        for p in extra_public_key_paths
    )
    return KeySet(signing=signing, extra_verification=extra)


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


def ensure_development_keys(data_dir: Path, algorithm: str) -> tuple[Path, Path, bool]:
    """Development keys under the data directory, created once.

    Returns (private path, public path, whether they were created now)."""
    directory = data_dir / "keys"
    # The data directory holds secrets (these keys, the server secret): 0700.
    make_private_directory(data_dir, warn_existing=True)
    make_private_directory(directory, warn_existing=True)
    stem = f"dev-{algorithm.lower()}"
    private_path = directory / f"{stem}-private.pem"
    public_path = directory / f"{stem}-public.pem"
    if private_path.exists() and public_path.exists():
        return private_path, public_path, False
    write_key_pair(directory, algorithm, stem=stem)
    return private_path, public_path, True


def jwks_json(key_set: KeySet) -> bytes:
    return json.dumps(key_set.jwks(), separators=(",", ":")).encode("utf-8")


def describe(jwk: dict[str, Any]) -> str:
    return f"{jwk.get('alg')} key {jwk.get('kid')}"
