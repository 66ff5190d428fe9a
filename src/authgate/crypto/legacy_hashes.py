"""Imported password hashes, wrapped in argon2id so no weak hash is ever stored.

The seeds stored passwords as unsalted SHA3-512 hex (serverless seed) or node-bcrypt
``$2b$10$`` (TimeLapseMe seed). Neither is kept: at import the legacy value is treated
as a password and hashed with argon2id, and only that wrapper (plus, for bcrypt, the
salt and cost its computation needs) is stored:

- ``$authgate-legacy$sha3-512$<argon2id over the 128 hex characters>``
- ``$authgate-legacy$bcrypt$2b$10$<22-character salt><argon2id over the 60-character
  bcrypt string>``

At sign-in the legacy computation runs on the presented password, its output is
checked against the wrapper with argon2id, and the account is re-hashed to plain
argon2id. A raw legacy value in ``users.password_hash`` (a hex digest, a ``$2b$``
string) is not an argon2 hash and never verifies: this marker is the only way in.

This module parses and computes; the argon2 part is
:class:`authgate.crypto.passwords.Argon2PasswordHasher`'s.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

import bcrypt

LEGACY_MARKER = "$authgate-legacy$"

# node-bcrypt (and every bcrypt since OpenBSD's) reads at most 72 bytes of the key.
BCRYPT_MAX_BYTES = 72

_SHA3_HEX = re.compile(r"[0-9a-f]{128}")
# $2a$/$2b$/$2y$, two-digit cost, 22 salt characters, 31 checksum characters.
_BCRYPT = re.compile(r"\$(2[aby])\$(\d\d)\$([./A-Za-z0-9]{22})[./A-Za-z0-9]{31}")
_BCRYPT_PREFIX = re.compile(r"bcrypt\$(2[aby])\$(\d\d)\$([./A-Za-z0-9]{22})(\$argon2id\$.+)")
_SHA3_PREFIX = re.compile(r"sha3-512(\$argon2id\$.+)")
# bcrypt's own bounds (4..31); the seeds used 10.
_BCRYPT_COSTS = range(4, 32)

Scheme = Literal["sha3-512", "bcrypt"]


class LegacyHashError(ValueError):
    """A seed's password value that is not a hash of the expected shape."""


@dataclass(frozen=True, slots=True)
class LegacyHash:
    """A seed's hash, checked, ready to be wrapped (``secret`` is what argon2 hashes)."""

    scheme: Scheme
    secret: str
    # For bcrypt: the setting (``$2b$10$<salt>``) that recomputes it from a password.
    setting: str = ""

    def wrapped(self, argon2_encoded: str) -> str:
        """The stored form around ``argon2_encoded`` (argon2id of :attr:`secret`)."""
        if self.scheme == "sha3-512":
            return f"{LEGACY_MARKER}sha3-512{argon2_encoded}"
        return f"{LEGACY_MARKER}bcrypt{self.setting}{argon2_encoded}"


@dataclass(frozen=True, slots=True)
class WrappedHash:
    """A stored wrapper: how to recompute the legacy value, and the argon2id to check."""

    scheme: Scheme
    setting: str
    argon2_encoded: str

    def legacy_secret(self, password: str) -> str:
        """The seed's computation on ``password``: what the wrapper's argon2id covers.

        The password as typed, not NFKC-normalized: the seeds hashed the raw UTF-8."""
        if self.scheme == "sha3-512":
            return sha3_hex(password)
        key = password.encode("utf-8")[:BCRYPT_MAX_BYTES]
        return bcrypt.hashpw(key, self.setting.encode("ascii")).decode("ascii")


def sha3_hex(password: str) -> str:
    return hashlib.sha3_512(password.encode("utf-8")).hexdigest()


def is_wrapped(password_hash: str) -> bool:
    return password_hash.startswith(LEGACY_MARKER)


def parse_wrapped(password_hash: str) -> WrappedHash | None:
    """The wrapper in ``password_hash``, or None if it is not one."""
    if not is_wrapped(password_hash):
        return None
    rest = password_hash[len(LEGACY_MARKER) :]
    if match := _SHA3_PREFIX.fullmatch(rest):
        return WrappedHash("sha3-512", "", match.group(1))
    if (match := _BCRYPT_PREFIX.fullmatch(rest)) and int(match.group(2)) in _BCRYPT_COSTS:
        variant, cost, salt, encoded = match.groups()
        return WrappedHash("bcrypt", f"${variant}${cost}${salt}", encoded)
    return None


def sha3_legacy(value: str) -> LegacyHash:
    """The serverless seed's ``PASSWORD``: 128 hex characters (CHAR padding stripped)."""
    digest = value.strip().lower()
    if not _SHA3_HEX.fullmatch(digest):
        raise LegacyHashError("PASSWORD is not a SHA3-512 hex digest")
    return LegacyHash("sha3-512", digest)


def bcrypt_legacy(value: str) -> LegacyHash:
    """The TimeLapseMe seed's ``passwordHash``: a 60-character ``$2b$10$`` string."""
    match = _BCRYPT.fullmatch(value.strip())
    if match is None or int(match.group(2)) not in _BCRYPT_COSTS:
        raise LegacyHashError("passwordHash is not a bcrypt hash")
    variant, cost, salt = match.groups()
    try:
        # At the cheapest cost: pyca/bcrypt refuses a salt whose last character has
        # bits set that bcrypt ignores, and such an account could never sign in.
        bcrypt.hashpw(b"", f"${variant}$04${salt}".encode("ascii"))
    except ValueError:
        raise LegacyHashError("passwordHash has a salt bcrypt cannot use") from None
    return LegacyHash("bcrypt", match.group(0), setting=f"${variant}${cost}${salt}")
