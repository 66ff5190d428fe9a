"""One-time tokens for links in mail: 256 random bits, stored only as SHA-256.

SHA-256 without salt or stretching is enough: the token is a 256-bit random value,
not a password, so nothing can be guessed from its hash.
"""

from __future__ import annotations

import hashlib
import secrets

# token_urlsafe(32) is 43 characters; anything much longer is not ours.
MAX_ONE_TIME_TOKEN_LENGTH = 128


def new_one_time_token() -> str:
    return secrets.token_urlsafe(32)


def hash_one_time_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
