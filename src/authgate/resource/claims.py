"""The verified claims of an access token, as the services that consume it see them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class Claims:
    """An access token that passed every check (RFC 9068 §2.2 names).

    ``raw`` is the whole payload, read-only, for claims this class does not name.
    """

    sub: str
    iss: str
    aud: tuple[str, ...]
    exp: int
    iat: int
    jti: str
    # The authgate session; None only for service tokens (``require_session=False``).
    sid: str | None = None
    client_id: str | None = None
    scopes: frozenset[str] = frozenset()
    nbf: int | None = None
    email: str | None = None
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @property
    def scope(self) -> str:
        """The scopes as the space-separated ``scope`` claim (RFC 8693 §4.2)."""
        return " ".join(sorted(self.scopes))

    def has_scopes(self, *required: str) -> bool:
        return set(required) <= self.scopes
