"""DELETE /api/v1/me: the account, its identities, sessions, one-time tokens and
queued mail go; its audit events stay with the user id only. On SQLite and MariaDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api.test_account_lifecycle import mail_settings
from tests.api.test_providers import _provider_settings, google_token
from tests.conftest import Api, start_api
from tests.support.idp import FakeIdp
from tests.support.rows import count_rows, fetch_all
from tests.support.smtp import SmtpServer

PASSWORD = "Moo00!_*&x"
ME = "/api/v1/me"


@pytest.fixture
async def api(
    make_settings: Any, clock: Any, smtp: SmtpServer, google: FakeIdp, apple: FakeIdp
) -> AsyncIterator[Api]:
    settings = make_settings(
        **mail_settings(smtp.port, rate_limit_failed_signins_per_account="3/15 minutes"),
        **_provider_settings(google, apple),
    )
    async for value in start_api(settings, clock):
        yield value


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['accessToken']}"}


async def delete_me(api: Api, tokens: dict[str, Any], body: dict[str, Any] | None) -> Any:
    return await api.client.request(
        "DELETE", ME, headers={**bearer(tokens), "User-Agent": "deleter"}, json=body
    )


async def user_id_of(api: Api, tokens: dict[str, Any]) -> str:
    response = await api.client.get(ME, headers=bearer(tokens))
    assert response.status_code == 200, response.text
    return str(response.json()["userId"])


def rows_of(rows: list[dict[str, Any]], user_id: str) -> list[dict[str, Any]]:
    return [row for row in rows if str(row.get("user_id")) == user_id]


async def test_deleting_with_the_password_removes_everything_but_anonymous_audit(
    api: Api, smtp: SmtpServer
) -> None:
    url = api.settings.effective_database_url
    tokens = await api.sign_up()
    await smtp.wait_for(1)  # the verification mail: a one-time token exists now
    await api.client.post("/api/v1/password/forgot", json={"email": "cow@cow.jp"})
    other = await api.sign_up(email="pig@cow.jp")
    user_id = await user_id_of(api, tokens)
    for table in ("sessions", "one_time_tokens", "mail_outbox"):
        assert rows_of(await fetch_all(url, table), user_id), table

    response = await delete_me(api, tokens, {"password": PASSWORD})
    assert response.status_code == 200, response.text
    assert response.json() == {}
    for table in ("users", "identities", "sessions", "one_time_tokens", "mail_outbox"):
        rows = await fetch_all(url, table)
        key = "id" if table == "users" else "user_id"
        assert all(str(row[key]) != user_id for row in rows), table
    sessions = await fetch_all(url, "sessions")
    assert len(sessions) == 1  # the other user's
    assert (await count_rows(url))["refresh_tokens"] == 1
    # The audit log keeps the account's events, with the user id only.
    events = rows_of(await fetch_all(url, "audit_events"), user_id)
    assert {"signup", "account_deleted"} <= {e["name"] for e in events}
    assert all(e["client_address"] is None and e["user_agent"] is None for e in events)
    # Its tokens are dead; the other user's are not.
    refused = await api.client.post(
        "/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]}
    )
    assert refused.status_code == 401
    assert (await api.client.get(ME, headers=bearer(tokens))).status_code == 404
    assert (await api.client.get(ME, headers=bearer(other))).status_code == 200
    # The address is free again.
    await api.sign_up()


async def test_a_wrong_password_is_401_deletes_nothing_and_counts_against_the_lock(
    api: Api, smtp: SmtpServer
) -> None:
    url = api.settings.effective_database_url
    tokens = await api.sign_up()
    # The verification mail makes its one-time token when it is sent: wait for it,
    # or the drainer's row lands between the two counts.
    await smtp.wait_for(1)
    before = await count_rows(url)
    for _ in range(3):
        response = await delete_me(api, tokens, {"password": "not-the-password"})
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "invalid_credentials"
    assert await count_rows(url) == before
    # Locked now: even the right password waits.
    locked = await delete_me(api, tokens, {"password": PASSWORD})
    assert locked.status_code == 429
    assert await count_rows(url) == before
    names = [e["name"] for e in await fetch_all(url, "audit_events")]
    assert names.count("password_check_failed") == 3
    assert "account_deleted" not in names


async def test_a_password_account_must_send_its_password(api: Api, smtp: SmtpServer) -> None:
    tokens = await api.sign_up()
    await smtp.wait_for(1)  # the verification mail's token exists before the count
    before = await count_rows(api.settings.effective_database_url)
    for body in (None, {}, {"jwt": "x.y.z"}):
        response = await delete_me(api, tokens, body)
        assert response.status_code == 422, response.text
    assert (await api.client.request("DELETE", ME, json={"password": PASSWORD})).status_code == 401
    assert await count_rows(api.settings.effective_database_url) == before


async def test_a_provider_only_account_confirms_with_a_new_id_token(
    api: Api, google: FakeIdp
) -> None:
    url = api.settings.effective_database_url
    first = google_token(api, google, sub="alice-sub")
    tokens = (await api.client.post("/api/v1/signup/google", json={"jwt": first})).json()
    user_id = await user_id_of(api, tokens)
    bob = await api.client.post(
        "/api/v1/signup/google",
        json={"jwt": google_token(api, google, sub="bob-sub", email="bob@gmail.com")},
    )
    assert bob.status_code == 200, bob.text
    before = await count_rows(url)
    refusals = (
        {"jwt": first},  # already used to sign up: single use
        # Another user's identity:
        {"jwt": google_token(api, google, sub="bob-sub", email="bob@gmail.com")},
        {"jwt": "not.a.token"},
        {"password": PASSWORD},
    )
    for body in refusals:
        response = await delete_me(api, tokens, body)
        assert response.status_code in (401, 422), response.text
    assert await count_rows(url) == before

    response = await delete_me(
        api, tokens, {"jwt": google_token(api, google, sub="alice-sub"), "provider": "google"}
    )
    assert response.status_code == 200, response.text
    assert all(str(row["user_id"]) != user_id for row in await fetch_all(url, "identities"))
    assert all(str(row["id"]) != user_id for row in await fetch_all(url, "users"))
    assert len(await fetch_all(url, "users")) == 1
