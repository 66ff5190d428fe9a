"""Seed 001 (TimeLapseMe auth server): table ``Users`` (Sequelize).

``authenticationMethod`` is CREDENTIALS (``passwordHash``: node-bcrypt ``$2b$10$``,
only the first 72 bytes of a password count), GOOGLE or APPLE (``passwordHash`` NULL;
the seed keyed these by email only, no subject). Names: ``firstName``/``lastName``
in the version at 13bb39c, ``nickname`` (display name and first name) in a later one;
both are read. Provider users' addresses were vouched for by their provider when they
signed up, so they are imported as verified; CREDENTIALS addresses were never
verified by the seed and are imported unverified. ``RefreshTokens`` is not imported
(plaintext tokens; users sign in again).
"""

from __future__ import annotations

from collections.abc import Mapping

from authgate.crypto.legacy_hashes import LegacyHashError, bcrypt_legacy
from authgate.importers.records import InvalidRow, SeedUser, seed_email, seed_name

NAME = "timelapseme-seed"
TABLE = "Users"
# Every column: which name columns exist depends on the seed's version.
QUERY = "SELECT * FROM `Users` ORDER BY `id`"
_PROVIDERS = {"GOOGLE": "google", "APPLE": "apple"}


def row_id(row: Mapping[str, object]) -> str:
    return f"id={row.get('id')}"


def parse_row(row: Mapping[str, object]) -> SeedUser:
    email = seed_email(row.get("email"))
    method = row.get("authenticationMethod")
    given = seed_name(row.get("firstName"), "firstName")
    family = seed_name(row.get("lastName"), "lastName")
    display = seed_name(row.get("nickname"), "nickname", limit=200)
    if display and not given:
        given = seed_name(row.get("nickname"), "nickname")
    if method == "CREDENTIALS":
        password = row.get("passwordHash")
        if not isinstance(password, str):
            raise InvalidRow("CREDENTIALS user without passwordHash")
        try:
            legacy = bcrypt_legacy(password)
        except LegacyHashError as exc:
            raise InvalidRow(str(exc)) from None
        return SeedUser(row_id(row), email, given, family, display, password=legacy)
    provider = _PROVIDERS.get(method) if isinstance(method, str) else None
    if provider is None:
        raise InvalidRow("authenticationMethod is not GOOGLE, APPLE or CREDENTIALS")
    # A provider user's passwordHash (NULL in the seed) is ignored: that account
    # signed in through its provider only.
    return SeedUser(row_id(row), email, given, family, display, provider=provider)
