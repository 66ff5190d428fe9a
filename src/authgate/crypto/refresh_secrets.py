"""Refresh-token secrets: generation, the stored hash, and the sealed successor.

Only ``sha256(token)`` is stored. For the reuse leeway, a successor's row keeps
the successor sealed with AES-256-GCM under a key derived with HKDF-SHA256 from
both the server's sealing key (derived from the server secret, which is not in the
database) and the *parent* token (which only the client holds). The parent's hash
is bound as associated data. Someone with a copy of the database and an old token
of the session still lacks the server secret, so no sealed copy opens for them;
someone with the server secret but not the parent token lacks the other half.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TOKEN_BYTES = 32  # 256 random bits
MAX_TOKEN_LENGTH = 256  # anything longer is not ours; refuse before hashing
_NONCE_BYTES = 12
# v2: the server's sealing key is the HKDF salt (v1 derived from the parent alone).
_SEAL_INFO = b"authgate refresh-token successor v2"
_KEY_BYTES = 32


def new_refresh_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SuccessorSealer:
    """Seals a successor for its parent token, under the server's sealing keys.

    ``keys`` come from :meth:`authgate.server_secret.ServerSecret.refresh_sealing_keys`:
    the first seals; every one is tried when opening, so successors sealed before a
    rotation of the server secret still open while the previous secret is configured.
    """

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys or any(len(key) < _KEY_BYTES for key in keys):
            raise ValueError("a successor sealer needs at least one 32-byte key")
        self._keys = tuple(keys)

    def seal(self, parent_token: str, successor_token: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        # The parent's hash is bound as associated data: a sealed blob copied onto
        # another row does not open.
        aad = hash_refresh_token(parent_token).encode("ascii")
        key = _sealing_key(self._keys[0], parent_token)
        return nonce + AESGCM(key).encrypt(nonce, successor_token.encode("utf-8"), aad)

    def open(self, parent_token: str, sealed: bytes) -> str | None:
        """The successor, or None if no configured key and this parent open ``sealed``."""
        if len(sealed) <= _NONCE_BYTES:
            return None
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        aad = hash_refresh_token(parent_token).encode("ascii")
        for server_key in self._keys:
            try:
                plain = AESGCM(_sealing_key(server_key, parent_token)).decrypt(
                    nonce, ciphertext, aad
                )
            except InvalidTag:
                continue
            return plain.decode("utf-8")
        return None


def _sealing_key(server_key: bytes, parent_token: str) -> bytes:
    # HKDF-Extract with the server key as salt is HMAC(server key, parent token)
    # (RFC 5869 §2.2): a secret salt is allowed, and neither half alone yields it.
    return HKDF(
        algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=server_key, info=_SEAL_INFO
    ).derive(parent_token.encode("utf-8"))
