"""Plan an import (what would be added, and every row that would not), then apply it.

A row is added only when no authgate account has its address (``email_key``) and no
earlier row of the seed had it: within the seed the first row (lowest id) wins, as
the seeds' own sign-in found that one first. Nothing is ever overwritten, so a second
import adds nothing. Each account is added in its own transaction with a
``user_imported`` audit event; a sign-up that takes the address in between is
reported, not overwritten.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from authgate.clock import Clock
from authgate.crypto.legacy_hashes import LegacyHash
from authgate.domain.models import ClientInfo, User
from authgate.domain.ports import UnitOfWorkFactory
from authgate.errors import EmailTaken
from authgate.importers.records import InvalidRow, SeedUser
from authgate.services.audit import AuditTrail

# Wrapping runs on the hasher's threads; this many at once keeps them all busy
# without filling its queue (which would refuse work with 503 to a live server).
_WRAP_BATCH = 16


class LegacyWrapper(Protocol):
    async def wrap_legacy(self, legacy: LegacyHash) -> str: ...


@dataclass(frozen=True, slots=True)
class Problem:
    kind: Literal["invalid", "duplicate", "exists"]
    row_id: str
    detail: str

    def line(self) -> str:
        return f"{self.kind}: {self.row_id}: {self.detail}"


@dataclass(frozen=True, slots=True)
class SeedSchema:
    """One seed's reader: how to read its table and turn a row into a user."""

    name: str
    table: str
    query: str
    row_id: Callable[[Mapping[str, object]], str]
    parse_row: Callable[[Mapping[str, object]], SeedUser]


@dataclass
class ImportPlan:
    seed: str
    rows: int
    to_add: list[SeedUser] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for problem in self.problems if problem.kind == kind)

    def kinds(self) -> str:
        kinds = [user.kind for user in self.to_add]
        return ", ".join(f"{kinds.count(k)} {k}" for k in ("password", "google", "apple"))


class ImportService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        wrapper: LegacyWrapper,
        clock: Clock,
        audit: AuditTrail,
    ) -> None:
        self._uow = uow
        self._wrapper = wrapper
        self._clock = clock
        self._audit = audit

    async def plan(self, schema: SeedSchema, rows: Sequence[Mapping[str, object]]) -> ImportPlan:
        plan = ImportPlan(seed=schema.name, rows=len(rows))
        first_row: dict[str, SeedUser] = {}
        for row in rows:
            try:
                user = schema.parse_row(row)
            except InvalidRow as exc:
                plan.problems.append(Problem("invalid", schema.row_id(row), str(exc)))
                continue
            first = first_row.get(user.email.key)
            if first is not None:
                detail = f"{user.email.display}: same address as {first.row_id}, which wins"
                plan.problems.append(Problem("duplicate", user.row_id, detail))
                continue
            first_row[user.email.key] = user
        async with self._uow() as uow:
            for user in first_row.values():
                if await uow.users.get_by_email_key(user.email.key) is not None:
                    plan.problems.append(Problem("exists", user.row_id, _exists(user)))
                else:
                    plan.to_add.append(user)
        return plan

    async def apply(self, plan: ImportPlan) -> tuple[int, list[Problem]]:
        """Add the plan's users; how many were added, and those refused meanwhile."""
        added, raced = 0, []
        for batch in _batches(plan.to_add, _WRAP_BATCH):
            hashes = await asyncio.gather(*(self._password_hash(user) for user in batch))
            for user, password_hash in zip(batch, hashes, strict=True):
                try:
                    await self._add(plan.seed, user, password_hash)
                except EmailTaken:
                    raced.append(Problem("exists", user.row_id, _exists(user)))
                else:
                    added += 1
        return added, raced

    async def legacy_hashes_pending(self) -> int:
        return await count_legacy_hashes(self._uow)

    async def _password_hash(self, user: SeedUser) -> str | None:
        if user.password is None:
            return None
        # Wrapped before anything is written: the legacy hash is never stored.
        return await self._wrapper.wrap_legacy(user.password)

    async def _add(self, seed: str, user: SeedUser, password_hash: str | None) -> None:
        account = User(
            id=uuid.uuid4(),
            email=user.email.display,
            email_key=user.email.key,
            # A provider had vouched for a provider user's address; no seed ever
            # verified a password user's address.
            email_verified=user.provider is not None,
            given_name=user.given_name,
            family_name=user.family_name,
            display_name=user.display_name,
            password_hash=password_hash,
            created_at=self._clock.now(),
            imported_from=seed,
            imported_provider=user.provider,
        )
        async with self._uow() as uow:
            await uow.users.add(account)
            event = self._audit.event(
                "user_imported", ClientInfo(), user_id=account.id, reason=seed
            )
            await self._audit.add(uow, event)


async def count_legacy_hashes(uow: UnitOfWorkFactory) -> int:
    """Imported accounts whose password hash is not yet upgraded (no sign-in since the
    import). For ``authgate users list`` and the import's summary."""
    async with uow() as unit:
        return await unit.users.count_legacy_password_hashes()


def _exists(user: SeedUser) -> str:
    return f"{user.email.display}: an authgate account has this address; skipped"


def _batches(users: Iterable[SeedUser], size: int) -> Iterable[list[SeedUser]]:
    batch: list[SeedUser] = []
    for user in users:
        batch.append(user)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
