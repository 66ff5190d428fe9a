"""Email addresses: syntax check and the normalized key that makes them unique."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from authgate.errors import InvalidInput

# RFC 5321 limits a forward path to 256 octets including the brackets; 254
# characters is the usable maximum for an address.
MAX_EMAIL_LENGTH = 254


@dataclass(frozen=True, slots=True)
class EmailAddress:
    display: str
    key: str


def email_key(address: str) -> str:
    """The key that makes an address unique: NFC, then the local part ``lower()``ed and
    the domain lowercased, so ``Cow@Cow.jp`` and ``cow@cow.jp`` are one account.

    Exact otherwise: never NFKC, never casefold. ``straße@example.com`` and
    ``strasse@example.com`` are different mailboxes, and so are ``ﬀ`` and ``ff``; a
    looser key would let one address's owner link into (or block) the other's
    account. ``address`` is expected in the form :func:`parse_email` gives, whose
    domain email-validator has already mapped with IDNA (UTS 46, non-transitional:
    lowercase, ``ß`` kept). Applied identically before every insert and lookup, so
    the unique index behaves the same on SQLite and MariaDB (a binary column).
    """
    local, at, domain = unicodedata.normalize("NFC", address).rpartition("@")
    if not at:
        return domain.lower()  # not an address: a key that matches no account
    return f"{local.lower()}@{domain.lower()}"


def parse_email(raw: str) -> EmailAddress:
    candidate = raw.strip()
    if not candidate or len(candidate) > MAX_EMAIL_LENGTH:
        raise InvalidInput("The email address is not valid.")
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"The email address is not valid: {exc}") from None
    key = email_key(result.normalized)
    if len(key) > MAX_EMAIL_LENGTH:
        # Lowering can lengthen an address ("İ" becomes two code points): the key
        # must fit its column on every database, not only SQLite.
        raise InvalidInput("The email address is too long.")
    return EmailAddress(display=result.normalized, key=key)


def lookup_key(raw: str) -> str:
    """The key to look an account up by. An address that does not parse still gets a
    key (which matches no account), so callers take the same path either way."""
    try:
        return parse_email(raw).key
    except InvalidInput:
        return email_key(raw.strip())
