"""The sessions a user can see and end: GET/DELETE /api/v1/sessions[/{id}], on SQLite
and MariaDB."""

from __future__ import annotations

import uuid
from typing import Any

import jwt

from tests.conftest import Api
from tests.support.rows import fetch_all

SESSIONS = "/api/v1/sessions"
PASSWORD = "Moo00!_*&x"


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['accessToken']}"}


def sid(tokens: dict[str, Any]) -> str:
    claims: dict[str, Any] = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
    return str(claims["sid"])


async def sign_in(api: Api, email: str = "cow@cow.jp", user_agent: str = "phone") -> Any:
    response = await api.client.post(
        "/api/v1/auth/credentials",
        json={"email": email, "password": PASSWORD},
        headers={"User-Agent": user_agent},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def listed(api: Api, tokens: dict[str, Any]) -> list[dict[str, Any]]:
    response = await api.client.get(SESSIONS, headers=bearer(tokens))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    sessions: list[dict[str, Any]] = response.json()["sessions"]
    return sessions


async def test_the_list_shows_live_sessions_and_marks_the_current_one(api: Api) -> None:
    first = await api.sign_up()
    api.clock.advance(10)
    second = await sign_in(api, user_agent="Agent\x07 Smith\n" + "x" * 400)
    sessions = await listed(api, second)
    assert [s["id"] for s in sessions] == [sid(second), sid(first)]
    assert [s["current"] for s in sessions] == [True, False]
    newest = sessions[0]
    assert newest["createdAt"] == "2030-01-01T12:00:10Z"
    assert newest["lastUsedAt"] == "2030-01-01T12:00:10Z"
    # Control characters dropped, bounded to the column's 256 characters.
    assert newest["userAgent"].startswith("Agent Smith")
    assert len(newest["userAgent"]) == 256
    assert newest["ipAddress"] == "127.0.0.1"
    assert set(newest) == {"id", "createdAt", "lastUsedAt", "userAgent", "ipAddress", "current"}
    # A refresh is a use: the list shows it, without the refresh writing the session row.
    api.clock.advance(100)
    response = await api.client.post(
        "/api/v1/refresh", json={"refreshToken": first["refreshToken"]}
    )
    assert response.status_code == 200
    sessions = await listed(api, second)
    assert sessions[1]["lastUsedAt"] == "2030-01-01T12:01:50Z"
    assert sessions[1]["createdAt"] == "2030-01-01T12:00:00Z"


async def test_revoked_and_expired_sessions_are_not_listed(api: Api) -> None:
    first = await api.sign_up()
    second = await sign_in(api)
    await api.client.post("/api/v1/revoke", json={"refreshToken": first["refreshToken"]})
    assert [s["id"] for s in await listed(api, second)] == [sid(second)]
    # Past its refresh token's idle lifetime a session is dead: not listed.
    api.clock.advance(api.settings.refresh_token_ttl_seconds + 1)
    third = await sign_in(api)
    assert [s["id"] for s in await listed(api, third)] == [sid(third)]


async def test_ending_one_session(api: Api) -> None:
    first = await api.sign_up()
    second = await sign_in(api)
    response = await api.client.delete(f"{SESSIONS}/{sid(first)}", headers=bearer(second))
    assert response.status_code == 200, response.text
    assert response.json() == {}
    refused = await api.client.post("/api/v1/refresh", json={"refreshToken": first["refreshToken"]})
    assert refused.status_code == 401
    assert [s["id"] for s in await listed(api, second)] == [sid(second)]
    # Ending it again: gone, one answer.
    again = await api.client.delete(f"{SESSIONS}/{sid(first)}", headers=bearer(second))
    assert again.status_code == 404
    events = [
        e
        for e in await fetch_all(api.settings.effective_database_url, "audit_events")
        if e["name"] == "session_ended"
    ]
    assert len(events) == 1
    assert str(events[0]["session_id"]) == sid(first)


async def test_another_users_session_is_404_and_stays_alive(api: Api) -> None:
    victim = await api.sign_up()
    attacker = await api.sign_up(email="pig@cow.jp")
    for target in (sid(victim), str(uuid.uuid4()), "not-a-uuid"):
        response = await api.client.delete(f"{SESSIONS}/{target}", headers=bearer(attacker))
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "session_not_found"
    rows = {
        str(r["id"]): r for r in await fetch_all(api.settings.effective_database_url, "sessions")
    }
    assert rows[sid(victim)]["revoked_at"] is None
    ok = await api.client.post("/api/v1/refresh", json={"refreshToken": victim["refreshToken"]})
    assert ok.status_code == 200
    # And the attacker's list does not show the victim's session.
    assert [s["id"] for s in await listed(api, attacker)] == [sid(attacker)]


async def test_log_out_everywhere_else(api: Api) -> None:
    first = await api.sign_up()
    second = await sign_in(api)
    third = await sign_in(api)
    other_user = await api.sign_up(email="pig@cow.jp")
    response = await api.client.delete(SESSIONS, headers=bearer(second))
    assert response.status_code == 200, response.text
    assert response.json() == {"ended": 2}
    for tokens, status in ((first, 401), (third, 401), (second, 200), (other_user, 200)):
        answer = await api.client.post(
            "/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]}
        )
        assert answer.status_code == status
    names = [
        e["name"] for e in await fetch_all(api.settings.effective_database_url, "audit_events")
    ]
    assert names.count("sessions_ended") == 1


async def test_session_routes_need_a_bearer_token(api: Api) -> None:
    for method, path in (("GET", SESSIONS), ("DELETE", SESSIONS), ("DELETE", f"{SESSIONS}/x")):
        response = await api.client.request(method, path)
        assert response.status_code == 401
        assert "Bearer" in response.headers["www-authenticate"]
