"""The key ring's state machine on an in-memory store: no database, no crypto."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import pytest

from authgate.clock import FrozenClock
from authgate.domain.signing_keys import KeyState, NewSigningKey, SigningKeyRecord
from authgate.services.signing_keys import (
    KeyNotFound,
    KeyRingPolicy,
    KeyRingRefused,
    ScheduledRun,
    SigningKeyService,
)

MAX_AGE = 360  # JWKS_MAX_AGE_SECONDS + KEY_RING_REFRESH_SECONDS
TTL = 900
STATE = {"next": KeyState.NEXT, "current": KeyState.CURRENT, "previous": KeyState.PREVIOUS}


class MemoryKeys:
    def __init__(self) -> None:
        self.rows: dict[str, SigningKeyRecord] = {}
        self.locks = 0

    async def create_lock(self, *, now: datetime) -> None:
        pass

    async def lock_ring(self, *, now: datetime) -> None:
        self.locks += 1

    async def list_keys(self, states: Sequence[KeyState] | None = None) -> list[SigningKeyRecord]:
        rows = sorted(self.rows.values(), key=lambda r: (r.created_at, r.kid))
        return [r for r in rows if states is None or r.state in states]

    async def add(self, key: NewSigningKey, *, state: KeyState, now: datetime) -> None:
        assert key.kid not in self.rows
        self.rows[key.kid] = SigningKeyRecord(
            kid=key.kid,
            algorithm=key.algorithm,
            state=state,
            public_jwk=key.public_jwk,
            sealed_private_key=key.sealed_private_key,
            created_at=now,
            activated_at=now if state is KeyState.CURRENT else None,
        )

    async def move(
        self, kid: str, *, from_state: KeyState, to_state: KeyState, now: datetime
    ) -> bool:
        row = self.rows.get(kid)
        if row is None or row.state is not from_state:
            return False
        stamps: dict[KeyState, dict[str, Any]] = {
            KeyState.CURRENT: {"activated_at": now},
            KeyState.PREVIOUS: {"deactivated_at": now},
            KeyState.RETIRED: {"retired_at": now, "sealed_private_key": None},
        }
        self.rows[kid] = dataclasses.replace(row, state=to_state, **stamps.get(to_state, {}))
        return True


class MemoryUnitOfWork:
    def __init__(self, keys: MemoryKeys) -> None:
        self._keys = keys

    @property
    def signing_keys(self) -> MemoryKeys:
        return self._keys

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class CountingMaker:
    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def make(self, algorithm: str) -> NewSigningKey:
        kid = f"k{next(self._ids)}"
        return NewSigningKey(kid, algorithm, {"kty": "OKP", "kid": kid}, b"sealed-" + kid.encode())


@pytest.fixture
def keys() -> MemoryKeys:
    return MemoryKeys()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2030, 1, 1, tzinfo=UTC))


def service(keys: MemoryKeys, clock: FrozenClock, *, rotation_days: int = 0) -> SigningKeyService:
    return SigningKeyService(
        uow=lambda: MemoryUnitOfWork(keys),
        clock=clock,
        maker=CountingMaker(),
        policy=KeyRingPolicy(
            algorithm="EdDSA",
            publish_before_use_seconds=MAX_AGE,
            token_lifetime_seconds=TTL,
            rotation_days=rotation_days,
        ),
    )


def states(keys: MemoryKeys) -> dict[str, str]:
    return {kid: row.state.value for kid, row in keys.rows.items()}


async def test_a_new_ring_is_a_current_and_a_next_key(keys: MemoryKeys, clock: FrozenClock) -> None:
    ring = service(keys, clock)
    assert await ring.ensure_ring() is True
    assert sorted(states(keys).values()) == ["current", "next"]
    assert await ring.ensure_ring() is False  # a second start changes nothing
    assert len(keys.rows) == 2


async def test_rotate_waits_for_the_next_key_to_be_published(
    keys: MemoryKeys, clock: FrozenClock
) -> None:
    ring = service(keys, clock)
    await ring.ensure_ring()
    clock.advance(MAX_AGE - 1)
    with pytest.raises(KeyRingRefused, match="--force"):
        await ring.rotate()
    assert sorted(states(keys).values()) == ["current", "next"]
    clock.advance(1)
    before = {row.state: kid for kid, row in keys.rows.items()}
    rotation = await ring.rotate()
    assert rotation.current == before[KeyState.NEXT]
    assert rotation.previous == before[KeyState.CURRENT]
    assert states(keys) == {
        before[KeyState.CURRENT]: "previous",
        before[KeyState.NEXT]: "current",
        rotation.next: "next",
    }
    assert keys.rows[rotation.current].activated_at == clock.now()
    assert keys.rows[before[KeyState.CURRENT]].deactivated_at == clock.now()
    # The new next key is young again: a second rotation now is refused.
    with pytest.raises(KeyRingRefused):
        await ring.rotate()
    forced = await ring.rotate(force=True)
    assert forced.previous == rotation.current


async def test_retire_rules(keys: MemoryKeys, clock: FrozenClock) -> None:
    ring = service(keys, clock)
    await ring.ensure_ring()
    clock.advance(MAX_AGE)
    rotation = await ring.rotate()
    assert rotation.previous is not None
    with pytest.raises(KeyRingRefused, match="current key"):
        await ring.retire(rotation.current, force=True)
    with pytest.raises(KeyRingRefused, match="may still be live"):
        await ring.retire(rotation.previous)
    with pytest.raises(KeyNotFound):
        await ring.retire("nope")
    clock.advance(TTL + 60)
    retired = await ring.retire(rotation.previous)
    assert retired.state is KeyState.PREVIOUS
    row = keys.rows[rotation.previous]
    assert (row.state, row.retired_at, row.sealed_private_key) == (
        KeyState.RETIRED,
        clock.now(),
        None,
    )
    with pytest.raises(KeyRingRefused, match="already retired"):
        await ring.retire(rotation.previous)


async def test_retire_force_refuses_a_previous_key_tokens_now(
    keys: MemoryKeys, clock: FrozenClock
) -> None:
    ring = service(keys, clock)
    await ring.ensure_ring()
    rotation = await ring.rotate(force=True)
    assert rotation.previous is not None
    await ring.retire(rotation.previous, force=True)
    assert keys.rows[rotation.previous].state is KeyState.RETIRED


async def test_retiring_the_next_key_needs_force_and_publishes_a_new_one(
    keys: MemoryKeys, clock: FrozenClock
) -> None:
    ring = service(keys, clock)
    await ring.ensure_ring()
    upcoming = next(k for k, r in keys.rows.items() if r.state is KeyState.NEXT)
    with pytest.raises(KeyRingRefused, match="--force"):
        await ring.retire(upcoming)
    await ring.retire(upcoming, force=True)
    assert keys.rows[upcoming].state is KeyState.RETIRED
    assert sorted(s for k, s in states(keys).items() if k != upcoming) == ["current", "next"]


async def test_scheduled_rotation_after_the_configured_days(
    keys: MemoryKeys, clock: FrozenClock
) -> None:
    ring = service(keys, clock, rotation_days=30)
    await ring.ensure_ring()
    clock.advance(timedelta(days=30).total_seconds() - 1)
    locks = keys.locks
    assert await ring.run_scheduled() == ScheduledRun()
    assert keys.locks == locks  # nothing due: not even the lock is taken
    clock.advance(1)
    run = await ring.run_scheduled()
    assert run.rotation is not None
    assert (await ring.run_scheduled()).rotation is None
    # The previous key is retired by the schedule once its tokens have expired.
    clock.advance(TTL + 59)
    assert (await ring.run_scheduled()).retired == ()
    clock.advance(1)
    assert (await ring.run_scheduled()).retired == (run.rotation.previous,)


async def test_no_scheduled_rotation_when_off(keys: MemoryKeys, clock: FrozenClock) -> None:
    ring = service(keys, clock, rotation_days=0)
    await ring.ensure_ring()
    clock.advance(timedelta(days=3650).total_seconds())
    assert (await ring.run_scheduled()).rotation is None


async def test_scheduled_rotation_waits_for_a_young_next_key(
    keys: MemoryKeys, clock: FrozenClock
) -> None:
    ring = service(keys, clock, rotation_days=1)
    await ring.ensure_ring()
    clock.advance(timedelta(days=1).total_seconds() - 100)
    # A compromised next key replaced just before the rotation is due.
    await ring.retire(next(k for k, r in keys.rows.items() if r.state is KeyState.NEXT), force=True)
    clock.advance(100)
    assert (await ring.run_scheduled()).rotation is None  # published for 100 s only
    clock.advance(MAX_AGE - 100)
    assert (await ring.run_scheduled()).rotation is not None


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["keys", "retire", "-rtwv", "--force"], ["keys", "retire", "--force", "--", "-rtwv"]),
        (["keys", "retire", "abc"], ["keys", "retire", "--", "abc"]),
        (["keys", "retire", "--", "-x"], ["keys", "retire", "--", "-x"]),
        (["keys", "retire", "--help"], ["keys", "retire", "--help"]),
        (["keys", "rotate", "--force"], ["keys", "rotate", "--force"]),
    ],
    ids=["dash-kid", "plain-kid", "already-separated", "help", "rotate"],
)
def test_a_kid_starting_with_a_dash_is_not_an_option(argv: list[str], expected: list[str]) -> None:
    from authgate.cli.keys import kid_arguments_protected
    from authgate.cli.main import build_parser

    assert kid_arguments_protected(argv) == expected
    if "--help" not in argv:
        parsed = build_parser().parse_args(kid_arguments_protected(argv))
        assert parsed.keys_command == argv[1]
