"""Service logic on in-memory fakes: no database, no network, a frozen clock."""

from __future__ import annotations

from typing import Any

import pytest

from authgate.clock import FrozenClock
from authgate.crypto.passwords import Argon2Parameters
from authgate.domain.models import ClientInfo
from authgate.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidRefreshToken,
    RefreshTokenReused,
    WeakPassword,
)
from authgate.services.accounts import AccountService, SignUp
from authgate.services.audit import AuditTrail
from authgate.services.password_policy import PasswordPolicy
from authgate.services.sessions import SessionPolicy, SessionService
from tests.support.hashing import watched_hasher
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


def build(*, leeway: int = 10, rehash: bool = False) -> dict[str, Any]:
    store = Store()
    clock = FrozenClock()
    hasher = RecordingHasher(rehash=rehash)
    audit = AuditTrail(uow=lambda: FakeUnitOfWork(store), clock=clock)
    throttles = AllowAllThrottles()
    sessions = SessionService(
        uow=lambda: FakeUnitOfWork(store),
        access_tokens=FakeAccessTokens(),
        clock=clock,
        policy=SessionPolicy(
            idle_ttl_seconds=100, absolute_ttl_seconds=1000, reuse_leeway_seconds=leeway
        ),
        audit=audit,
        throttles=throttles,
        sealer=make_sealer(),
    )
    accounts = AccountService(
        uow=lambda: FakeUnitOfWork(store),
        hasher=hasher,
        sessions=sessions,
        policy=PasswordPolicy(min_length=8),
        clock=clock,
        audit=audit,
        throttles=throttles,
        strength=AcceptAnyPassword(),
    )
    return {
        "throttles": throttles,
        "store": store,
        "clock": clock,
        "hasher": hasher,
        "sessions": sessions,
        "accounts": accounts,
    }


async def test_unknown_email_costs_exactly_one_dummy_verification() -> None:
    w = build()
    with pytest.raises(InvalidCredentials):
        await w["accounts"].sign_in("nobody@cow.jp", "whatever-password", CLIENT)
    assert w["hasher"].calls == ["verify_dummy"]


async def test_wrong_password_costs_exactly_one_verification() -> None:
    w = build()
    await w["accounts"].sign_up(SignUp("cow@cow.jp", "right-password"), CLIENT)
    w["hasher"].calls.clear()
    with pytest.raises(InvalidCredentials):
        await w["accounts"].sign_in("cow@cow.jp", "wrong-password", CLIENT)
    assert w["hasher"].calls == ["verify"]


async def test_invalid_email_syntax_also_costs_one_dummy_verification() -> None:
    w = build()
    with pytest.raises(InvalidCredentials):
        await w["accounts"].sign_in("not an email", "whatever", CLIENT)
    assert w["hasher"].calls == ["verify_dummy"]


async def test_hash_is_upgraded_on_sign_in_when_parameters_change() -> None:
    w = build(rehash=True)
    await w["accounts"].sign_up(SignUp("cow@cow.jp", "right-password"), CLIENT)
    w["hasher"].calls.clear()
    await w["accounts"].sign_in("cow@cow.jp", "right-password", CLIENT)
    assert w["hasher"].calls == ["verify", "hash"]
    (user,) = w["store"].users.values()
    assert user.password_hash == "hash:right-password"


async def test_failed_sign_up_writes_nothing() -> None:
    w = build()
    with pytest.raises(WeakPassword):
        await w["accounts"].sign_up(SignUp("cow@cow.jp", "short"), CLIENT)
    await w["accounts"].sign_up(SignUp("cow@cow.jp", "long-enough"), CLIENT)
    with pytest.raises(EmailTaken):
        await w["accounts"].sign_up(SignUp("COW@cow.jp", "long-enough"), CLIENT)
    assert len(w["store"].users) == 1
    assert len(w["store"].sessions) == 1


async def test_reuse_revokes_the_family_and_commits_before_refusing() -> None:
    w = build(leeway=0)
    pair = await w["accounts"].sign_up(SignUp("cow@cow.jp", "long-enough"), CLIENT)
    successor = await w["sessions"].refresh(pair.refresh_token, CLIENT)
    with pytest.raises(RefreshTokenReused):
        await w["sessions"].refresh(pair.refresh_token, CLIENT)
    (session,) = w["store"].sessions.values()
    assert session.revoked_reason == "reuse_detected"
    with pytest.raises(InvalidRefreshToken):
        await w["sessions"].refresh(successor.refresh_token, CLIENT)


async def test_leeway_boundary() -> None:
    w = build(leeway=10)
    pair = await w["accounts"].sign_up(SignUp("cow@cow.jp", "long-enough"), CLIENT)
    successor = await w["sessions"].refresh(pair.refresh_token, CLIENT)
    w["clock"].advance(10)
    again = await w["sessions"].refresh(pair.refresh_token, CLIENT)
    assert again.refresh_token == successor.refresh_token
    w["clock"].advance(0.001)
    with pytest.raises(RefreshTokenReused):
        await w["sessions"].refresh(pair.refresh_token, CLIENT)


async def test_refresh_with_a_wrong_email_writes_nothing() -> None:
    w = build()
    pair = await w["accounts"].sign_up(SignUp("cow@cow.jp", "long-enough"), CLIENT)
    commits = w["store"].commits
    with pytest.raises(InvalidRefreshToken):
        await w["sessions"].refresh(pair.refresh_token, CLIENT, expected_email_key="horse@cow.jp")
    assert w["store"].commits == commits
    assert all(t.parent_id is None for t in w["store"].tokens.values())  # nothing rotated


async def test_attempts_are_counted_before_the_password_and_cleared_by_success() -> None:
    w = build()
    await w["accounts"].sign_up(SignUp("cow@cow.jp", "right-password"), CLIENT)
    w["throttles"].calls.clear()
    with pytest.raises(InvalidCredentials):
        await w["accounts"].sign_in("COW@cow.jp", "wrong-password", CLIENT)
    with pytest.raises(InvalidCredentials):
        await w["accounts"].sign_in("nobody@cow.jp", "wrong-password", CLIENT)
    await w["accounts"].sign_in("cow@cow.jp", "right-password", CLIENT)
    assert w["throttles"].calls == [
        ("ip:auth", "192.0.2.1"),
        ("begin_attempt", "cow@cow.jp"),
        ("ip:auth", "192.0.2.1"),
        ("begin_attempt", "nobody@cow.jp"),
        ("ip:auth", "192.0.2.1"),
        ("begin_attempt", "cow@cow.jp"),
        ("record_success", "cow@cow.jp"),
    ]


async def test_unknown_email_and_wrong_password_each_verify_once_with_production_parameters() -> (
    None
):
    with watched_hasher(Argon2Parameters()) as (hasher, jobs):  # production parameters
        w = build()
        accounts = AccountService(
            uow=lambda: FakeUnitOfWork(w["store"]),
            hasher=hasher,
            sessions=w["sessions"],
            policy=PasswordPolicy(min_length=8),
            clock=w["clock"],
            audit=AuditTrail(uow=lambda: FakeUnitOfWork(w["store"]), clock=w["clock"]),
            throttles=AllowAllThrottles(),
            strength=AcceptAnyPassword(),
        )
        await accounts.sign_up(SignUp("cow@cow.jp", "right-password"), CLIENT)
        for email in ("cow@cow.jp", "nobody@cow.jp"):
            jobs.jobs.clear()
            with pytest.raises(InvalidCredentials):
                await accounts.sign_in(email, "wrong-password", CLIENT)
            assert len(jobs.verified) == 1, email
            assert jobs.verified[0].startswith("$argon2id$v=19$m=19456,t=2,p=1$"), email


async def test_an_audit_event_reaches_the_log_only_when_its_transaction_commits() -> None:
    logged: list[str] = []
    w = build()
    trail = AuditTrail(
        uow=lambda: FakeUnitOfWork(w["store"]),
        clock=w["clock"],
        sink=lambda event: logged.append(event.name),
    )

    async def rolled_back() -> None:
        async with FakeUnitOfWork(w["store"]) as uow:
            await trail.add(uow, trail.event("signin", CLIENT))
            assert logged == []  # not before the commit either
            raise RuntimeError("the change is rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        await rolled_back()
    assert logged == []
    async with FakeUnitOfWork(w["store"]) as uow:
        await trail.add(uow, trail.event("signin", CLIENT))
    assert logged == ["signin"]


async def test_every_started_session_is_audited_once_with_the_client() -> None:
    """SessionService.start is the one place that starts a session: it writes the
    session's client details and exactly one audit row naming it."""
    w = build()
    client = ClientInfo(address="192.0.2.1", user_agent="Bot\x1b[2J/1.0\u0085")
    await w["accounts"].sign_up(SignUp("cow@cow.jp", "long-enough"), client)
    await w["accounts"].sign_in("cow@cow.jp", "long-enough", client)
    sessions = list(w["store"].sessions.values())
    assert len(sessions) == 2
    assert {s.user_agent for s in sessions} == {"Bot[2J/1.0"}
    assert {s.ip_address for s in sessions} == {"192.0.2.1"}
    assert all(s.last_used_at == s.created_at for s in sessions)
    started = [(e.name, e.session_id) for e in w["store"].audit if e.session_id]
    assert sorted(started, key=lambda pair: pair[0]) == sorted(
        [("signin", sessions[1].id), ("signup", sessions[0].id)], key=lambda pair: pair[0]
    )


def test_client_detail_drops_controls_and_bounds_the_length() -> None:
    from authgate.services.sessions import client_detail

    assert client_detail(None, 10) is None
    assert client_detail("\x00\x07 \t", 10) is None
    assert client_detail("a\r\nb\x9bc" + "d" * 20, 5) == "abcdd"
