"""The signing-key ring's records and ports: what the key-ring service reads and writes.

A key moves one way through its states (issue 10 §1)::

    next ──rotate──▶ current ──rotate──▶ previous ──retire──▶ retired

``next`` is published and verifies but does not sign yet, so resource servers'
JWKS caches hold it before the first token signed with it; ``current`` signs;
``previous`` is published until every token it signed has expired; ``retired``
is gone from the JWKS and its private half is erased. Imports nothing but the
standard library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol, Self


class KeyState(StrEnum):
    NEXT = "next"
    CURRENT = "current"
    PREVIOUS = "previous"
    RETIRED = "retired"


# Published in the JWKS and accepted when verifying.
PUBLISHED_STATES = (KeyState.NEXT, KeyState.CURRENT, KeyState.PREVIOUS)


@dataclass(frozen=True)
class NewSigningKey:
    """A freshly made key: public JWK in the clear, private key sealed (AES-GCM)."""

    kid: str
    algorithm: str
    public_jwk: dict[str, Any]
    sealed_private_key: bytes


@dataclass(frozen=True)
class SigningKeyRecord:
    kid: str
    algorithm: str
    state: KeyState
    public_jwk: dict[str, Any]
    # None once retired: a retired key must never sign again, so nothing keeps it.
    sealed_private_key: bytes | None
    created_at: datetime
    activated_at: datetime | None = None
    deactivated_at: datetime | None = None
    retired_at: datetime | None = None


class SigningKeyRepository(Protocol):
    async def create_lock(self, *, now: datetime) -> None:
        """Make sure the ring's lock exists (a transaction of its own, before any
        ``lock_ring``; a no-op once it does)."""
        ...

    async def lock_ring(self, *, now: datetime) -> None:
        """Hold the ring's lock until the transaction ends: every change to the ring
        (and a first start's creation) runs under it, so instances change it once."""
        ...

    async def list_keys(self, states: Sequence[KeyState] | None = None) -> list[SigningKeyRecord]:
        """Keys in ``states`` (all when None), oldest first."""
        ...

    async def add(self, key: NewSigningKey, *, state: KeyState, now: datetime) -> None: ...

    async def move(
        self, kid: str, *, from_state: KeyState, to_state: KeyState, now: datetime
    ) -> bool:
        """Move ``kid`` from ``from_state`` to ``to_state`` and stamp the transition's
        date; False if it is not in ``from_state`` (a conditional UPDATE)."""
        ...


class KeyRingUnitOfWork(Protocol):
    """The part of a unit of work the key-ring service uses."""

    @property
    def signing_keys(self) -> SigningKeyRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class SigningKeyMaker(Protocol):
    """Makes a new key pair for ``algorithm`` and seals its private half."""

    def make(self, algorithm: str) -> NewSigningKey: ...
