"""What a seed row becomes: a user to import, or the reason it cannot be."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from authgate.crypto.legacy_hashes import LegacyHash
from authgate.domain.emails import EmailAddress, parse_email
from authgate.errors import InvalidInput
from authgate.services.accounts import clean_name

SeedName = Literal["serverless-seed", "timelapseme-seed"]


class InvalidRow(ValueError):
    """A seed row that cannot become an account; the message says why (no secrets)."""


@dataclass(frozen=True, slots=True)
class SeedUser:
    """One seed row, checked: exactly one of ``password`` and ``provider`` is set."""

    row_id: str
    email: EmailAddress
    given_name: str
    family_name: str
    display_name: str
    password: LegacyHash | None = None
    # "google" / "apple": bound to the provider's subject at its first sign-in.
    provider: str | None = None

    @property
    def kind(self) -> str:
        return self.provider or "password"


def seed_email(value: object) -> EmailAddress:
    if not isinstance(value, str):
        raise InvalidRow("email is missing")
    try:
        return parse_email(value)
    except InvalidInput:
        raise InvalidRow("email is not a valid address") from None


def seed_name(value: object, column: str, *, limit: int = 100) -> str:
    """A name as authgate's sign-up would accept it; NULL is an empty name."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRow(f"{column} is not text")
    try:
        return clean_name(value, limit=limit)
    except InvalidInput as exc:
        raise InvalidRow(f"{column}: {exc}") from None
