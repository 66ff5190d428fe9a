"""Private signing keys at rest: AES-GCM under the server secret, bound to their row;
and kids (RFC 7638 thumbprints, now computed by joserfc) that did not change."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from authgate.crypto.key_encryption import KeyDecryptionFailed, PrivateKeySealer, SealedKeyMaker
from authgate.crypto.keys import (
    generate_private_key,
    jwk_thumbprint,
    make_signing_key,
    make_verification_key,
    public_jwk,
)
from authgate.server_secret import ServerSecret

OLD = ServerSecret(secrets.token_urlsafe(32).encode())
NEW = ServerSecret(secrets.token_urlsafe(32).encode())
ALGORITHMS = ["RS256", "ES256", "EdDSA"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_sealed_key_opens_to_the_same_key(algorithm: str) -> None:
    sealer = PrivateKeySealer(NEW.key_encryption_keys())
    made = SealedKeyMaker(sealer).make(algorithm)
    opened = sealer.open(made.sealed_private_key, kid=made.kid, algorithm=algorithm)
    assert opened.kid == made.kid
    assert opened.verification.jwk == made.public_jwk
    assert "d" not in made.public_jwk
    # Nothing of the private key is readable in what is stored.
    der = opened.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert der not in made.sealed_private_key
    assert der[-32:] not in made.sealed_private_key


def test_another_server_secret_cannot_open_it() -> None:
    made = SealedKeyMaker(PrivateKeySealer(OLD.key_encryption_keys())).make("EdDSA")
    with pytest.raises(KeyDecryptionFailed, match="SECRET_KEY_PREVIOUS"):
        PrivateKeySealer(NEW.key_encryption_keys()).open(
            made.sealed_private_key, kid=made.kid, algorithm="EdDSA"
        )


def test_the_previous_secret_still_opens_it_after_a_secret_rotation() -> None:
    made = SealedKeyMaker(PrivateKeySealer(OLD.key_encryption_keys())).make("ES256")
    rotated = ServerSecret(NEW.current, previous=OLD.current)
    opened = PrivateKeySealer(rotated.key_encryption_keys()).open(
        made.sealed_private_key, kid=made.kid, algorithm="ES256"
    )
    assert opened.kid == made.kid


def test_a_ciphertext_moved_to_another_row_does_not_open() -> None:
    sealer = PrivateKeySealer(NEW.key_encryption_keys())
    first, second = SealedKeyMaker(sealer).make("EdDSA"), SealedKeyMaker(sealer).make("EdDSA")
    with pytest.raises(KeyDecryptionFailed):
        sealer.open(first.sealed_private_key, kid=second.kid, algorithm="EdDSA")
    with pytest.raises(KeyDecryptionFailed):
        sealer.open(first.sealed_private_key, kid=first.kid, algorithm="ES256")


@pytest.mark.parametrize("where", [0, 5, 20, -1])
def test_a_tampered_ciphertext_does_not_open(where: int) -> None:
    sealer = PrivateKeySealer(NEW.key_encryption_keys())
    made = SealedKeyMaker(sealer).make("EdDSA")
    tampered = bytearray(made.sealed_private_key)
    tampered[where] ^= 0x01
    with pytest.raises(KeyDecryptionFailed):
        sealer.open(bytes(tampered), kid=made.kid, algorithm="EdDSA")
    with pytest.raises(KeyDecryptionFailed):
        sealer.open(b"\x01short", kid=made.kid, algorithm="EdDSA")


def _old_thumbprint(jwk: dict[str, str]) -> str:
    """The hand-written RFC 7638 code joserfc replaced, kept here as the oracle."""
    required = {
        "RSA": ("e", "kty", "n"),
        "EC": ("crv", "kty", "x", "y"),
        "OKP": ("crv", "kty", "x"),
    }
    members = {name: jwk[name] for name in required[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def _fixed_keys() -> list[tuple[str, object]]:
    # Fixed keys: the same kid must come out on every run and every library version.
    rsa_key = rsa.RSAPublicNumbers(e=65537, n=(1 << 2047) | 0xC0FFEF).public_key()
    ec_key = ec.derive_private_key(123456789, ec.SECP256R1()).public_key()
    ed_key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))).public_key()
    return [("RS256", rsa_key), ("ES256", ec_key), ("EdDSA", ed_key)]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["RS256", "ES256", "EdDSA"])
def test_kids_are_the_same_rfc7638_thumbprints_as_before(index: int) -> None:
    algorithm, key = _fixed_keys()[index]
    made = make_verification_key(key, algorithm)  # type: ignore[arg-type]
    assert made.kid == _old_thumbprint(public_jwk(key))  # type: ignore[arg-type]
    assert made.kid == jwk_thumbprint(made.jwk)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_generated_keys_keep_their_kid(algorithm: str) -> None:
    signing = make_signing_key(generate_private_key(algorithm), algorithm)
    assert signing.kid == _old_thumbprint(signing.verification.jwk)
