"""Private signing keys encrypted at rest: AES-256-GCM under a key-encryption key.

The key-encryption keys are derived from the server secret (``ServerSecret.
key_encryption_keys()``): the first encrypts, all decrypt, so a ``SECRET_KEY``
rotation (old one in ``SECRET_KEY_PREVIOUS``) keeps the ring readable. Instances
share nothing but that secret and the database.

The associated data binds a ciphertext to its row's ``kid`` and algorithm: a
ciphertext copied onto another row (a database writer swapping keys around) does
not open there. The ``kid`` is the public key's thumbprint, so the loader also
checks that the opened private key is the one the row publishes.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authgate.crypto.keys import (
    KeyError_,
    SigningKey,
    SigningPrivateKey,
    generate_private_key,
    make_signing_key,
)
from authgate.domain.signing_keys import NewSigningKey

_VERSION = b"\x01"
_NONCE_BYTES = 12  # 96-bit nonces, random: NIST SP 800-38D §8.2.2 (far below 2^32 keys)
_LABEL = b"authgate signing key v1"


class KeyDecryptionFailed(KeyError_):
    """No key-encryption key opens a stored private key (wrong SECRET_KEY, or tampered)."""


def _associated_data(kid: str, algorithm: str) -> bytes:
    return b"\x00".join((_LABEL, algorithm.encode("ascii"), kid.encode("ascii")))


class PrivateKeySealer:
    def __init__(self, key_encryption_keys: tuple[bytes, ...]) -> None:
        if not key_encryption_keys:
            raise ValueError("at least one key-encryption key is needed")
        self._ciphers = tuple(AESGCM(key) for key in key_encryption_keys)

    def seal(self, private_key: SigningPrivateKey, *, kid: str, algorithm: str) -> bytes:
        """version || nonce || AES-GCM(PKCS#8 DER) under the current KEK."""
        der = private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[0].encrypt(nonce, der, _associated_data(kid, algorithm))
        return _VERSION + nonce + sealed

    def open(self, sealed: bytes, *, kid: str, algorithm: str) -> SigningKey:
        """The signing key a row holds; :class:`KeyDecryptionFailed` if it does not open
        under any KEK or is not the key the row's ``kid`` names."""
        if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _VERSION:
            raise KeyDecryptionFailed(f"signing key {kid}: not a sealed key")
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        for cipher in self._ciphers:
            try:
                der = cipher.decrypt(nonce, body, _associated_data(kid, algorithm))
            except InvalidTag:
                continue
            break
        else:
            raise KeyDecryptionFailed(
                f"signing key {kid}: cannot decrypt it with SECRET_KEY (or SECRET_KEY_PREVIOUS); "
                "was the server secret changed without keeping the old one as SECRET_KEY_PREVIOUS?"
            )
        key = serialization.load_der_private_key(der, None)
        if not isinstance(key, SigningPrivateKey):
            raise KeyDecryptionFailed(f"signing key {kid}: unsupported key type")
        signing = make_signing_key(key, algorithm)
        if signing.kid != kid:
            raise KeyDecryptionFailed(f"signing key {kid}: the private key is another key")
        return signing


class SealedKeyMaker:
    """The :class:`~authgate.domain.signing_keys.SigningKeyMaker` of the database ring."""

    def __init__(self, sealer: PrivateKeySealer) -> None:
        self._sealer = sealer

    def make(self, algorithm: str) -> NewSigningKey:
        signing = make_signing_key(generate_private_key(algorithm), algorithm)
        return NewSigningKey(
            kid=signing.kid,
            algorithm=algorithm,
            public_jwk=dict(signing.verification.jwk),
            sealed_private_key=self._sealer.seal(
                signing.private_key, kid=signing.kid, algorithm=algorithm
            ),
        )
