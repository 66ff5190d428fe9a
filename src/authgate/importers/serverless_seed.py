"""Seed 000 (serverless JWT OAuth): table ``USER_LIST``.

``PASSWORD`` is SHA3-512 of the UTF-8 password, 128 lowercase hex characters, unsalted
(js-sha3); ``DISPLAY_NAME`` (at most 16 characters) is the only name, and becomes the
display name and the first name. ``EMAIL`` has no unique index in the seed, so the
same address may appear twice (see :mod:`.service` for which row wins). The seed never
verified an address: imported addresses are unverified. ``REFRESH_TOKEN`` is not
imported (users sign in again).
"""

from __future__ import annotations

from collections.abc import Mapping

from authgate.crypto.legacy_hashes import LegacyHashError, sha3_legacy
from authgate.importers.records import InvalidRow, SeedUser, seed_email, seed_name

NAME = "serverless-seed"
TABLE = "USER_LIST"
QUERY = "SELECT `CIF`, `EMAIL`, `PASSWORD`, `DISPLAY_NAME` FROM `USER_LIST` ORDER BY `CIF`"


def row_id(row: Mapping[str, object]) -> str:
    return f"CIF={row.get('CIF')}"


def parse_row(row: Mapping[str, object]) -> SeedUser:
    email = seed_email(row.get("EMAIL"))
    password = row.get("PASSWORD")
    if not isinstance(password, str):
        raise InvalidRow("PASSWORD is missing")
    try:
        legacy = sha3_legacy(password)
    except LegacyHashError as exc:
        raise InvalidRow(str(exc)) from None
    display = seed_name(row.get("DISPLAY_NAME"), "DISPLAY_NAME")
    return SeedUser(
        row_id=row_id(row),
        email=email,
        given_name=display,
        family_name="",
        display_name=display,
        password=legacy,
    )
