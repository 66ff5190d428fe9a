"""The signing-key ring's lifecycle: list, rotate, retire, create, and the schedule.

Rules (issue 10 §1):

- a new ring is a current key and a next key;
- ``rotate``: next -> current, current -> previous, and a new next. The next key
  must have been published for ``publish_before_use_seconds`` (JWKS_MAX_AGE_SECONDS
  plus one ring refresh) so every resource server's JWKS cache holds it before the
  first token it signs; ``force`` skips that wait;
- ``retire``: never the current key; a previous key only once every token it signed
  has expired (deactivated + token lifetime + leeway) unless ``force``; a next key
  only with ``force``, and a new next takes its place;
- the scheduled step (each server, every ring refresh): rotate when
  ``rotation_days`` have passed since the current key was activated, and retire
  previous keys whose tokens have all expired.

Every change runs in one transaction under the ring's lock (``lock_ring``) and
re-reads the ring under it, so instances and CLI calls racing each other change
the ring once. No web framework, no commit, no wall clock: the clock is injected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from authgate.clock import Clock
from authgate.domain.signing_keys import (
    KeyRingUnitOfWork,
    KeyState,
    NewSigningKey,
    SigningKeyMaker,
    SigningKeyRecord,
    SigningKeyRepository,
)

logger = logging.getLogger(__name__)

# Resource servers' clocks and verifiers' leeway: a previous key stays published
# this long past the expiry of the last token it signed.
RETIRE_LEEWAY_SECONDS = 60


class KeyRingRefused(Exception):
    """A ring operation the rules refuse; the message says why and what to do."""


class KeyNotFound(KeyRingRefused):
    pass


@dataclass(frozen=True)
class KeyRingPolicy:
    algorithm: str
    publish_before_use_seconds: int
    token_lifetime_seconds: int
    rotation_days: int = 0
    retire_leeway_seconds: int = RETIRE_LEEWAY_SECONDS

    def next_ready_at(self, key: SigningKeyRecord) -> datetime:
        return key.created_at + timedelta(seconds=self.publish_before_use_seconds)

    def tokens_expired_at(self, key: SigningKeyRecord) -> datetime | None:
        if key.deactivated_at is None:
            return None
        return key.deactivated_at + timedelta(
            seconds=self.token_lifetime_seconds + self.retire_leeway_seconds
        )

    def rotation_due_at(self, current: SigningKeyRecord) -> datetime | None:
        if self.rotation_days <= 0:
            return None
        return (current.activated_at or current.created_at) + timedelta(days=self.rotation_days)


@dataclass(frozen=True)
class Rotation:
    current: str
    previous: str | None
    next: str


@dataclass(frozen=True)
class ScheduledRun:
    rotation: Rotation | None = None
    retired: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class _Ring:
    keys: list[SigningKeyRecord]

    def one(self, state: KeyState) -> SigningKeyRecord | None:
        found = [key for key in self.keys if key.state is state]
        return max(found, key=lambda k: k.created_at) if found else None

    def previous(self) -> list[SigningKeyRecord]:
        return [key for key in self.keys if key.state is KeyState.PREVIOUS]


class SigningKeyService:
    def __init__(
        self,
        *,
        uow: Callable[[], KeyRingUnitOfWork],
        clock: Clock,
        maker: SigningKeyMaker,
        policy: KeyRingPolicy,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._maker = maker
        self._policy = policy
        self._lock_exists = False

    async def _create_lock(self) -> None:
        if self._lock_exists:
            return
        async with self._uow() as uow:
            await uow.signing_keys.create_lock(now=self._clock.now())
        self._lock_exists = True

    async def list_keys(self) -> list[SigningKeyRecord]:
        async with self._uow() as uow:
            return await uow.signing_keys.list_keys()

    async def ensure_ring(self) -> bool:
        """Create a ring (current + next) if there is no current key; True if created."""
        async with self._uow() as uow:
            if _Ring(await uow.signing_keys.list_keys()).one(KeyState.CURRENT) is not None:
                return False
        # Made before the lock: RSA key generation takes a while, and the lock
        # should only be held for the writes.
        current, upcoming = self._make(), self._make()
        await self._create_lock()
        async with self._uow() as uow:
            now = self._clock.now()
            await uow.signing_keys.lock_ring(now=now)
            ring = _Ring(await uow.signing_keys.list_keys())
            if ring.one(KeyState.CURRENT) is not None:
                return False  # another instance created it while we made keys
            await uow.signing_keys.add(current, state=KeyState.CURRENT, now=now)
            if ring.one(KeyState.NEXT) is None:
                await uow.signing_keys.add(upcoming, state=KeyState.NEXT, now=now)
        logger.info("created the signing-key ring: current kid=%s", current.kid)
        return True

    async def rotate(self, *, force: bool = False) -> Rotation:
        new_next = self._make()
        await self._create_lock()
        async with self._uow() as uow:
            now = self._clock.now()
            await uow.signing_keys.lock_ring(now=now)
            ring = _Ring(await uow.signing_keys.list_keys())
            upcoming = ring.one(KeyState.NEXT)
            if upcoming is None:
                raise KeyRingRefused(
                    "the ring has no next key to promote; start the server once to create the ring"
                )
            ready_at = self._policy.next_ready_at(upcoming)
            if now < ready_at and not force:
                raise KeyRingRefused(
                    f"the next key {upcoming.kid} has been published for less than "
                    f"{self._policy.publish_before_use_seconds} s (JWKS_MAX_AGE_SECONDS plus one "
                    f"KEY_RING_REFRESH_SECONDS); resource servers may not have it yet. Rotate "
                    f"after {_iso(ready_at)}, or use --force"
                )
            return await self._rotate(uow.signing_keys, ring, upcoming, new_next, now)

    async def _rotate(
        self,
        keys: SigningKeyRepository,
        ring: _Ring,
        upcoming: SigningKeyRecord,
        new_next: NewSigningKey,
        now: datetime,
    ) -> Rotation:
        current = ring.one(KeyState.CURRENT)
        if current is not None:
            _moved(await keys.move(current.kid, from_state=KeyState.CURRENT,
                                   to_state=KeyState.PREVIOUS, now=now))  # fmt: skip
        _moved(await keys.move(upcoming.kid, from_state=KeyState.NEXT,
                               to_state=KeyState.CURRENT, now=now))  # fmt: skip
        await keys.add(new_next, state=KeyState.NEXT, now=now)
        rotation = Rotation(
            current=upcoming.kid,
            previous=current.kid if current is not None else None,
            next=new_next.kid,
        )
        logger.info(
            "rotated the signing keys: current kid=%s, previous kid=%s, next kid=%s",
            rotation.current,
            rotation.previous,
            rotation.next,
        )
        return rotation

    async def retire(self, kid: str, *, force: bool = False) -> SigningKeyRecord:
        """Retire ``kid``; returns its record as it was before."""
        await self._create_lock()
        async with self._uow() as uow:
            now = self._clock.now()
            await uow.signing_keys.lock_ring(now=now)
            ring = _Ring(await uow.signing_keys.list_keys())
            key = next((k for k in ring.keys if k.kid == kid), None)
            if key is None:
                raise KeyNotFound(f"no signing key has kid {kid!r}")
            if key.state is KeyState.RETIRED:
                raise KeyRingRefused(f"key {kid} is already retired")
            if key.state is KeyState.CURRENT:
                raise KeyRingRefused(
                    f"key {kid} is the current key, which signs every new token; rotate "
                    "first (authgate keys rotate), then retire it as a previous key"
                )
            if key.state is KeyState.NEXT and not force:
                raise KeyRingRefused(
                    f"key {kid} is the next key; --force retires it and publishes a new next "
                    "key (which must then wait JWKS_MAX_AGE_SECONDS before a rotation)"
                )
            expired_at = self._policy.tokens_expired_at(key)
            if (
                key.state is KeyState.PREVIOUS
                and not force
                and (expired_at is None or now < expired_at)
            ):
                raise KeyRingRefused(
                    f"key {kid} signed tokens that may still be live until "
                    f"{_iso(expired_at) if expired_at else 'unknown'} (ACCESS_TOKEN_TTL_SECONDS "
                    "after it stopped signing); retire it then, or use --force to refuse "
                    "them now"
                )
            _moved(await uow.signing_keys.move(kid, from_state=key.state,
                                               to_state=KeyState.RETIRED, now=now))  # fmt: skip
            if key.state is KeyState.NEXT:
                # Made under the lock: retiring a next key is rare (a compromised
                # one), and only then is a key needed.
                await uow.signing_keys.add(self._make(), state=KeyState.NEXT, now=now)
        logger.info("retired signing key kid=%s (was %s)", kid, key.state.value)
        return key

    async def run_scheduled(self) -> ScheduledRun:
        """The periodic step: rotate if due, retire previous keys past their tokens.

        Decided first without the lock (nothing to do is the usual answer, and costs
        one read); then decided again under the lock, so of several instances
        waking at once one rotates and the others find it done."""
        async with self._uow() as uow:
            ring = _Ring(await uow.signing_keys.list_keys())
        if not self._rotation_due(ring, self._clock.now()) and not self._expired(
            ring, self._clock.now()
        ):
            return ScheduledRun()
        new_next = self._make() if self._rotation_due(ring, self._clock.now()) else None
        await self._create_lock()
        async with self._uow() as uow:
            now = self._clock.now()
            await uow.signing_keys.lock_ring(now=now)
            ring = _Ring(await uow.signing_keys.list_keys())
            retired: list[str] = []
            for key in self._expired(ring, now):
                if await uow.signing_keys.move(
                    key.kid, from_state=KeyState.PREVIOUS, to_state=KeyState.RETIRED, now=now
                ):
                    retired.append(key.kid)
                    logger.info("retired signing key kid=%s: its tokens have expired", key.kid)
            rotation = None
            upcoming = ring.one(KeyState.NEXT)
            if new_next is not None and upcoming is not None and self._rotation_due(ring, now):
                rotation = await self._rotate(uow.signing_keys, ring, upcoming, new_next, now)
        return ScheduledRun(rotation=rotation, retired=tuple(retired))

    def _rotation_due(self, ring: _Ring, now: datetime) -> bool:
        current, upcoming = ring.one(KeyState.CURRENT), ring.one(KeyState.NEXT)
        if current is None or upcoming is None:
            return False
        due_at = self._policy.rotation_due_at(current)
        if due_at is None or now < due_at:
            return False
        # Never promote a key resource servers may not have fetched yet; the next
        # run will (it is at most JWKS_MAX_AGE_SECONDS away).
        return now >= self._policy.next_ready_at(upcoming)

    def _expired(self, ring: _Ring, now: datetime) -> list[SigningKeyRecord]:
        return [
            key
            for key in ring.previous()
            if (expired_at := self._policy.tokens_expired_at(key)) is not None and now >= expired_at
        ]

    def _make(self) -> NewSigningKey:
        return self._maker.make(self._policy.algorithm)


def _moved(moved: bool) -> None:
    # Under the ring lock the state read is the state written; anything else is a
    # hand edit racing us, and the transaction must not half-apply.
    if not moved:
        raise KeyRingRefused("the ring changed during the operation; try again")


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
