"""A transaction the database rolled back over a conflict runs again, whole.

The fakes play Galera's certification: the first unit of work lets a rival commit
first, then fails its own COMMIT with TransactionConflict and writes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import pytest

from authgate.clock import FrozenClock
from authgate.domain.models import ClientInfo, TokenPair
from authgate.errors import EmailTaken, RefreshTokenReused, TransactionConflict, Unavailable
from authgate.services.accounts import AccountService, SignUp
from authgate.services.audit import AuditTrail
from authgate.services.password_policy import PasswordPolicy
from authgate.services.sessions import SessionPolicy, SessionService
from authgate.services.transactions import ConflictRetry
from tests.support.server_secrets import make_sealer
from tests.unit.fakes import (
    AcceptAnyPassword,
    AllowAllThrottles,
    FakeAccessTokens,
    FakeUnitOfWork,
    RecordingHasher,
    Store,
)

CLIENT = ClientInfo(address="192.0.2.1", user_agent="tests")


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def retry(sleeps: Sleeps, attempts: int = 3) -> ConflictRetry:
    return ConflictRetry(
        attempts=attempts, base_delay_seconds=0.01, sleep=sleeps, jitter=lambda: 0.5
    )


class LosingUnitOfWork(FakeUnitOfWork):
    """Runs the rival's work just before its own COMMIT, then loses certification."""

    def __init__(self, store: Store, rival: Callable[[], Awaitable[None]]) -> None:
        super().__init__(store)
        self._rival = rival

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            await super().__aexit__(exc_type, exc, tb)
            return
        await self._rival()
        await super().__aexit__(TransactionConflict, TransactionConflict(), None)
        raise TransactionConflict(detail_for_log="database conflict: (1213, 'Deadlock')")


class Cluster:
    """One store, and a unit-of-work factory whose next ``losses`` units lose a race."""

    def __init__(self) -> None:
        self.store = Store()
        # None: that unit of work commits normally.
        self.rivals: list[Callable[[], Awaitable[None]] | None] = []
        self.units = 0

    def __call__(self) -> FakeUnitOfWork:
        self.units += 1
        rival = self.rivals.pop(0) if self.rivals else None
        if rival is not None:
            return LosingUnitOfWork(self.store, rival)
        return FakeUnitOfWork(self.store)


def build(cluster: Cluster, conflicts: ConflictRetry, *, leeway: int = 10) -> dict[str, Any]:
    clock = FrozenClock()
    audit = AuditTrail(uow=lambda: FakeUnitOfWork(cluster.store), clock=clock)
    throttles = AllowAllThrottles()
    sessions = SessionService(
        uow=cluster,
        access_tokens=FakeAccessTokens(),
        clock=clock,
        policy=SessionPolicy(
            idle_ttl_seconds=100, absolute_ttl_seconds=1000, reuse_leeway_seconds=leeway
        ),
        audit=audit,
        throttles=throttles,
        sealer=make_sealer(),
        conflicts=conflicts,
    )
    accounts = AccountService(
        uow=cluster,
        hasher=RecordingHasher(),
        sessions=sessions,
        policy=PasswordPolicy(min_length=8),
        clock=clock,
        audit=audit,
        throttles=throttles,
        strength=AcceptAnyPassword(),
        conflicts=conflicts,
    )
    return {"sessions": sessions, "accounts": accounts}


async def test_the_loser_of_a_rotation_race_gets_the_winner_s_successor() -> None:
    cluster, sleeps = Cluster(), Sleeps()
    w = build(cluster, retry(sleeps))
    pair = await w["accounts"].sign_up(SignUp("cow@cow.jp", "long-enough"), CLIENT)
    won: list[TokenPair] = []

    async def winner() -> None:
        won.append(await w["sessions"].refresh(pair.refresh_token, CLIENT))

    cluster.rivals.append(winner)
    lost = await w["sessions"].refresh(pair.refresh_token, CLIENT)
    assert lost.refresh_token == won[0].refresh_token
    assert len(cluster.store.tokens) == 2  # one successor: no fork
    assert sleeps.delays == [0.005]


async def test_a_sign_up_that_loses_the_email_race_is_409_not_503() -> None:
    cluster, sleeps = Cluster(), Sleeps()
    w = build(cluster, retry(sleeps))

    async def winner() -> None:
        await w["accounts"].sign_up(SignUp("cow@cow.jp", "long-enough"), CLIENT)

    cluster.rivals.append(winner)
    with pytest.raises(EmailTaken):
        await w["accounts"].sign_up(SignUp("COW@cow.jp", "long-enough"), CLIENT)
    assert len(cluster.store.users) == 1


async def test_a_reuse_detection_that_conflicts_still_revokes() -> None:
    cluster, sleeps = Cluster(), Sleeps()
    w = build(cluster, retry(sleeps), leeway=0)
    pair = await w["accounts"].sign_up(SignUp("cow@cow.jp", "long-enough"), CLIENT)
    await w["sessions"].refresh(pair.refresh_token, CLIENT)

    async def nothing() -> None:
        return None

    # The thief's replay: its revocation loses certification once, then commits.
    cluster.rivals.append(nothing)
    with pytest.raises(RefreshTokenReused):
        await w["sessions"].refresh(pair.refresh_token, CLIENT)
    (session,) = cluster.store.sessions.values()
    assert session.revoked_reason == "reuse_detected"


async def test_a_sign_in_retries_its_session_start() -> None:
    cluster, sleeps = Cluster(), Sleeps()
    w = build(cluster, retry(sleeps))
    await w["accounts"].sign_up(SignUp("cow@cow.jp", "long-enough"), CLIENT)

    async def nothing() -> None:
        return None

    # The first unit of work only reads the account; the second starts the session.
    cluster.rivals.extend([None, nothing])
    await w["accounts"].sign_in("cow@cow.jp", "long-enough", CLIENT)
    assert len(cluster.store.sessions) == 2


async def test_conflicts_past_the_attempts_are_503_and_write_nothing() -> None:
    cluster, sleeps = Cluster(), Sleeps()
    w = build(cluster, retry(sleeps))

    async def nothing() -> None:
        return None

    cluster.rivals.extend([nothing, nothing, nothing])
    with pytest.raises(Unavailable) as raised:
        await w["accounts"].sign_up(SignUp("cow@cow.jp", "long-enough"), CLIENT)
    assert raised.value.code == "unavailable"
    assert cluster.store.users == {}
    assert cluster.units == 3
    # Exponential with jitter (fixed at 0.5 here): 0.5 * 0.01, 0.5 * 0.02.
    assert sleeps.delays == [0.005, 0.01]


async def test_other_errors_are_not_retried() -> None:
    sleeps = Sleeps()
    calls = 0

    async def work() -> None:
        nonlocal calls
        calls += 1
        raise Unavailable(detail_for_log="database: lost connection")

    with pytest.raises(Unavailable):
        await retry(sleeps).run(work, name="test")
    assert calls == 1
    assert sleeps.delays == []


def test_at_least_one_attempt() -> None:
    with pytest.raises(ValueError, match="attempts"):
        ConflictRetry(attempts=0)
