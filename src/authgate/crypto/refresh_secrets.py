"""Refresh-token secrets: generation, the stored hash, and the sealed successor.

Only ``sha256(token)`` is stored. For the reuse leeway, a successor's row keeps
the successor sealed with AES-256-GCM under a key derived (HKDF) from the *parent*
token, which only the client holds; a database reader has the parent's hash,
from which that key cannot be computed.
"""

from __future__ import annotations

import hashlib
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TOKEN_BYTES = 32  # 256 random bits
MAX_TOKEN_LENGTH = 256  # anything longer is not ours; refuse before hashing
_NONCE_BYTES = 12
_SEAL_INFO = b"authgate refresh-token successor v1"


def new_refresh_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _sealing_key(parent_token: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(
        parent_token.encode("utf-8")
    )


def seal_successor(parent_token: str, successor_token: str) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    # The parent's hash is bound as associated data: a sealed blob copied onto
    # another row does not open.
    aad = hash_refresh_token(parent_token).encode("ascii")
    return nonce + AESGCM(_sealing_key(parent_token)).encrypt(
        nonce, successor_token.encode("utf-8"), aad
    )


def open_successor(parent_token: str, sealed: bytes) -> str | None:
    if len(sealed) <= _NONCE_BYTES:
        return None
    nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    aad = hash_refresh_token(parent_token).encode("ascii")
    try:
        plain = AESGCM(_sealing_key(parent_token)).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        return None
    return plain.decode("utf-8")
