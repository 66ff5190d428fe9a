"""The server secret: one value shared by every instance of a deployment, never
stored in the database, from which each purpose key is derived.

Its one job is to load that secret (``SECRET_KEY`` or ``SECRET_KEY_PATH``, plus an
optional previous one for rotation), refuse weak or exposed material, create a
development secret on first run, and derive purpose keys from it with HKDF-SHA256
(RFC 5869), one ``info`` label per purpose so that no two purposes share a key:

- sealing the successor of a rotated refresh token (crypto.refresh_secrets);
- the HMAC that turns emails and addresses into throttle keys (throttling);
- the key-encryption key of the signing-key ring (not used yet).

Only the composition roots (web/app.py, the CLI) load it; services receive the
derived keys, never the secret or the settings. It imports nothing of authgate's
but the settings it is loaded from.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authgate.config import SettingsError

if TYPE_CHECKING:
    from authgate.config import Settings

logger = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32
DEVELOPMENT_SECRET_FILE = "secret.key"  # noqa: S105 (a file name, not a secret)

# One label per purpose. Changing a label changes that key: sealed successors and
# throttle counters made under the old one stop matching (both are short-lived).
_REFRESH_SEALING = b"authgate server-secret: refresh-successor sealing v1"
_THROTTLE_HMAC = b"authgate server-secret: throttle-key hmac v1"
_KEY_ENCRYPTION = b"authgate server-secret: key-ring key encryption v1"

_HEX = frozenset("0123456789abcdefABCDEF")
# Fewer distinct characters than this is a repetition ("aaaa...", "passwordpassword").
_MIN_DISTINCT = 8


class ServerSecretError(SettingsError):
    """The server secret is missing, too weak, unreadable or readable by others.

    A :class:`SettingsError`: one line that names the variable, and the CLI's
    usual "authgate: error: ..." exit."""


def secret_strength_problem(material: bytes) -> str | None:
    """Why ``material`` cannot be a server secret, or None if it can.

    Entropy cannot be measured, only bounded: text of hex digits counts 4 bits a
    character, other text 6 (base64's), anything else 8 bits a byte; 256 bits are
    needed, so 64 hex digits, 43 base64 characters (``openssl rand -base64 32``)
    or 32 raw bytes. Values of few distinct characters are refused as repetitions.
    """
    try:
        text = material.decode("ascii")
    except UnicodeDecodeError:
        bits = 8 * len(material)
    else:
        bits = len(text) * (4 if set(text) <= _HEX else 6)
        if len(set(text)) < _MIN_DISTINCT:
            return "is a repetition of a few characters, not a random value"
    if bits < 8 * MIN_SECRET_BYTES:
        return (
            f"must hold at least {MIN_SECRET_BYTES} random bytes: 64 hex digits, 43 base64 "
            "characters (openssl rand -base64 32) or 32 raw bytes in a file"
        )
    return None


def _derive(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(material)


@dataclass(frozen=True)
class ServerSecret:
    """The current secret and, during a rotation, the previous one.

    New material is always made under the current secret; material made under the
    previous one still opens until the operator removes ``SECRET_KEY_PREVIOUS``."""

    current: bytes = field(repr=False)
    previous: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name, material in (("current", self.current), ("previous", self.previous)):
            if material is not None and secret_strength_problem(material) is not None:
                raise ValueError(f"the {name} server secret is too weak")

    def _all(self) -> tuple[bytes, ...]:
        return (self.current,) if self.previous is None else (self.current, self.previous)

    def refresh_sealing_keys(self) -> tuple[bytes, ...]:
        """Keys for sealing refresh-token successors: the first seals, all open."""
        return tuple(_derive(material, _REFRESH_SEALING) for material in self._all())

    def throttle_key(self) -> bytes:
        """The HMAC key of throttle counter keys (current secret only: after a
        rotation counters start again, which costs at most one window)."""
        return _derive(self.current, _THROTTLE_HMAC)

    def key_encryption_keys(self) -> tuple[bytes, ...]:
        """Keys that encrypt stored signing keys: the first encrypts, all decrypt."""
        return tuple(_derive(material, _KEY_ENCRYPTION) for material in self._all())


@dataclass(frozen=True)
class LoadedSecret:
    secret: ServerSecret
    # Set when the development secret file was used: (its path, created now?).
    development_file: tuple[Path, bool] | None = None


def load_server_secret(settings: Settings) -> LoadedSecret:
    """The configured secret, or in development one created once in the data directory.

    Raises :class:`ServerSecretError` with one line naming the variable."""
    current = _configured(settings, "SECRET_KEY")
    development_file: tuple[Path, bool] | None = None
    if current is None:
        if settings.is_production:
            # Settings already refuse this; kept so no caller can get around it.
            raise ServerSecretError(MISSING_IN_PRODUCTION)
        path, created = ensure_development_secret(settings.authgate_data_dir)
        current = _read_file(path, "SECRET_KEY_PATH", production=False)
        development_file = (path, created)
    previous = _configured(settings, "SECRET_KEY_PREVIOUS")
    return LoadedSecret(ServerSecret(current, previous), development_file)


def warn_if_development(loaded: LoadedSecret) -> None:
    """The one warning about a development secret. Separate from loading so a root
    can load the secret first (its file makes the data directory private) and still
    report every configuration error before any warning."""
    if loaded.development_file is None:
        return
    path, created = loaded.development_file
    logger.warning(
        "USING A DEVELOPMENT SERVER SECRET (%s, %s): set SECRET_KEY or SECRET_KEY_PATH "
        "before production; AUTHGATE_ENV=production refuses to start without one",
        "created now" if created else "created earlier",
        path,
    )


MISSING_IN_PRODUCTION = (
    "SECRET_KEY / SECRET_KEY_PATH: AUTHGATE_ENV=production needs the server secret; set "
    "SECRET_KEY_PATH to a file of 32 random bytes (mode 0600), e.g. "
    "'openssl rand -base64 32 > secret.key && chmod 600 secret.key', or SECRET_KEY to such a value"
)


def _configured(settings: Settings, variable: str) -> bytes | None:
    """``<variable>`` or ``<variable>_PATH``, as bytes; None when neither is set."""
    value = getattr(settings, variable.lower())
    path: Path | None = getattr(settings, f"{variable.lower()}_path")
    if value is not None:
        material: bytes = value.get_secret_value().encode("utf-8")
        problem = secret_strength_problem(material)
        if problem is not None:
            raise ServerSecretError(f"{variable}: {problem}")
        return material
    if path is not None:
        return _read_file(path, f"{variable}_PATH", production=settings.is_production)
    return None


def _read_file(path: Path, variable: str, *, production: bool) -> bytes:
    try:
        mode = path.stat().st_mode
        material = path.read_bytes()
    except OSError as exc:
        raise ServerSecretError(f"{variable}: cannot read {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise ServerSecretError(f"{variable}: {path} is not a regular file")
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        message = (
            f"{variable}: {path} is readable by group or others (mode "
            f"{stat.S_IMODE(mode):04o}); run 'chmod 600 {path}'"
        )
        if production:
            raise ServerSecretError(message)
        logger.warning("%s (AUTHGATE_ENV=production refuses to start)", message)
    if _is_text(material):
        # A text file's line ending is not part of the secret (echo and editors add
        # one). Binary files are taken whole: random bytes may end in 0x0a.
        material = material.rstrip(b"\r\n")
    problem = secret_strength_problem(material)
    if problem is not None:
        raise ServerSecretError(f"{variable}: {path} {problem}")
    return material


def _is_text(material: bytes) -> bool:
    try:
        material.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def ensure_development_secret(data_dir: Path) -> tuple[Path, bool]:
    """``<data_dir>/secret.key``, created once: 32 random bytes as base64url text,
    mode 0600, in a directory created 0700. Returns (path, whether created now)."""
    path = data_dir / DEVELOPMENT_SECRET_FILE
    if path.exists():
        return path, False
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = base64.urlsafe_b64encode(secrets.token_bytes(MIN_SECRET_BYTES)).rstrip(b"=")
    # Written whole under a temporary name, then linked into place: link() fails if
    # the name exists, so of two processes starting at once exactly one secret wins
    # and nobody ever reads a half-written file.
    temporary = data_dir / f".{DEVELOPMENT_SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(value + b"\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            return path, False
    finally:
        temporary.unlink(missing_ok=True)
    return path, True
