"""The audit log records each security event with its context, and no secret."""

from __future__ import annotations

import jwt

from tests.conftest import Api
from tests.support.rows import fetch_all

UA = {"user-agent": "audit-test/1.0"}


async def test_security_events_are_recorded_with_their_context(api: Api) -> None:
    password = "Moo00!_*&x"
    tokens = await api.sign_up("cow@cow.jp", password)
    claims = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
    await api.client.post(
        "/api/v1/auth/credentials", json={"email": "cow@cow.jp", "password": "nope"}, headers=UA
    )
    await api.client.post(
        "/api/v1/auth/credentials", json={"email": "horse@cow.jp", "password": "nope"}, headers=UA
    )
    signin = await api.client.post(
        "/api/v1/auth/credentials", json={"email": "cow@cow.jp", "password": password}, headers=UA
    )
    rotated = await api.client.post(
        "/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]}, headers=UA
    )
    api.clock.advance(60)
    await api.client.post(
        "/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]}, headers=UA
    )
    await api.client.post(
        "/api/v1/revoke", json={"refreshToken": signin.json()["refreshToken"]}, headers=UA
    )

    events = await fetch_all(api.settings.effective_database_url, "audit_events")
    events.sort(key=lambda e: (e["occurred_at"], e["name"]))
    summary = [(e["name"], e["reason"]) for e in events]
    assert sorted(summary, key=str) == sorted(
        [
            ("signup", None),
            ("signin_failed", "wrong_password"),
            ("signin_failed", "unknown_email"),
            ("signin", None),
            ("refresh", None),
            ("refresh_reuse_detected", None),
            ("revoke", None),
        ],
        key=str,
    )
    by_name = {e["name"]: e for e in events}
    assert str(by_name["signup"]["user_id"]) == claims["sub"]
    assert str(by_name["signup"]["session_id"]) == claims["sid"]
    assert str(by_name["refresh_reuse_detected"]["session_id"]) == claims["sid"]
    assert str(by_name["refresh_reuse_detected"]["user_id"]) == claims["sub"]
    assert by_name["signin"]["user_agent"] == "audit-test/1.0"
    assert by_name["signin"]["client_address"] == "127.0.0.1"
    assert by_name["refresh"]["occurred_at"] < by_name["refresh_reuse_detected"]["occurred_at"]
    dump = repr(events)
    for secret in (
        password,
        "nope",
        tokens["refreshToken"],
        tokens["accessToken"],
        rotated.json()["refreshToken"],
    ):
        assert secret not in dump


async def test_a_long_user_agent_is_clipped(api: Api) -> None:
    await api.client.post(
        "/api/v1/auth/credentials",
        json={"email": "x@cow.jp", "password": "nope"},
        headers={"user-agent": "A" * 5000},
    )
    (event,) = await fetch_all(api.settings.effective_database_url, "audit_events")
    assert len(event["user_agent"]) == 256


async def test_the_audit_reader_returns_the_newest_events_oldest_first(api: Api) -> None:
    from authgate.storage.engine import create_engine
    from authgate.storage.unit_of_work import SqlUnitOfWork

    for i in range(5):
        await api.client.post(
            "/api/v1/auth/credentials", json={"email": f"u{i}@cow.jp", "password": "nope"}
        )
        api.clock.advance(1)
    engine = create_engine(api.settings.effective_database_url, pool_size=1)
    try:
        async with SqlUnitOfWork(engine) as uow:
            events = await uow.audit.list(limit=2)
    finally:
        await engine.dispose()
    assert [e.occurred_at for e in events] == sorted(e.occurred_at for e in events)
    first = api.clock.now().timestamp() - 5
    assert [round(e.occurred_at.timestamp() - first) for e in events] == [3, 4]
