"""Disabled accounts: sign-in (password or provider) is 403 account_disabled, refresh
is 401 at once, every session ends when the account is disabled, and forgot-password
mails nothing (same 202). On SQLite and MariaDB, with mail to a real SMTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from authgate.services.account_admin import AccountAdminService
from authgate.services.audit import AuditTrail
from tests.api.test_account_lifecycle import mail_settings
from tests.api.test_providers import _provider_settings, google_token
from tests.conftest import Api, start_api
from tests.support.idp import FakeIdp
from tests.support.rows import count_rows, fetch_all
from tests.support.smtp import SmtpServer, token_of

PASSWORD = "Moo00!_*&x"


@pytest.fixture
async def api(
    make_settings: Any, clock: Any, smtp: SmtpServer, google: FakeIdp, apple: FakeIdp
) -> AsyncIterator[Api]:
    settings = make_settings(
        **mail_settings(smtp.port, email_verification="off"), **_provider_settings(google, apple)
    )
    async for value in start_api(settings, clock):
        yield value


def admin(api: Api) -> AccountAdminService:
    uow = api.services.uow
    return AccountAdminService(uow=uow, clock=api.clock, audit=AuditTrail(uow=uow, clock=api.clock))


async def disable(api: Api, reference: str) -> None:
    service = admin(api)
    assert await service.disable(await service.find(reference)) is True


async def sign_in(api: Api, email: str = "cow@cow.jp", password: str = PASSWORD) -> Any:
    return await api.client.post(
        "/api/v1/auth/credentials", json={"email": email, "password": password}
    )


async def test_disabling_ends_every_session_and_refuses_sign_in(api: Api) -> None:
    first = await api.sign_up()
    second = (await sign_in(api)).json()
    other = await api.sign_up(email="pig@cow.jp")
    await disable(api, "COW@cow.jp")
    sessions = await fetch_all(api.settings.effective_database_url, "sessions")
    ended = {row["revoked_reason"] for row in sessions if row["revoked_at"] is not None}
    assert ended == {"account_disabled"}
    assert sum(row["revoked_at"] is None for row in sessions) == 1  # the other user's
    for tokens in (first, second):
        refused = await api.client.post(
            "/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]}
        )
        assert refused.status_code == 401
    ok = await api.client.post("/api/v1/refresh", json={"refreshToken": other["refreshToken"]})
    assert ok.status_code == 200

    before = await count_rows(api.settings.effective_database_url)
    refused = await sign_in(api)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "account_disabled"
    # A wrong password learns nothing about the account's state.
    assert (await sign_in(api, password="wrong-password")).status_code == 401
    assert await count_rows(api.settings.effective_database_url) == before
    names = [
        (e["name"], e["reason"])
        for e in await fetch_all(api.settings.effective_database_url, "audit_events")
    ]
    assert ("account_disabled", "operator") in names
    assert ("signin_failed", "account_disabled") in names


async def test_enabling_lets_the_account_sign_in_again(api: Api) -> None:
    await api.sign_up()
    await disable(api, "cow@cow.jp")
    service = admin(api)
    assert await service.disable(await service.find("cow@cow.jp")) is False
    assert await service.enable(await service.find("cow@cow.jp")) is True
    assert (await sign_in(api)).status_code == 200


async def test_a_refresh_of_a_disabled_account_is_401_even_if_its_session_is_live(
    api: Api,
) -> None:
    """The refresh query reads the user row: disabled_at alone refuses (a refresh
    racing the disabling transaction, or a row set by hand)."""
    tokens = await api.sign_up()
    uow = api.services.uow
    async with uow() as unit:
        user = await unit.users.get_by_email_key("cow@cow.jp")
        assert user is not None
        await unit.users.set_disabled(user.id, api.clock.now())
    refused = await api.client.post(
        "/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]}
    )
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_refresh_token"


async def test_provider_sign_in_of_a_disabled_account_is_403(api: Api, google: FakeIdp) -> None:
    signed_up = await api.client.post(
        "/api/v1/signup/google", json={"jwt": google_token(api, google)}
    )
    assert signed_up.status_code == 200, signed_up.text
    user_id = (
        await api.client.get(
            "/api/v1/me",
            headers={"Authorization": f"Bearer {signed_up.json()['accessToken']}"},
        )
    ).json()["userId"]
    await disable(api, user_id)
    token = google_token(api, google)
    refused = await api.client.post("/api/v1/auth/google", json={"jwt": token})
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "account_disabled"
    live = [
        row
        for row in await fetch_all(api.settings.effective_database_url, "sessions")
        if row["revoked_at"] is None
    ]
    assert live == []
    events = await fetch_all(api.settings.effective_database_url, "audit_events")
    assert any(
        e["name"] == "signin_failed"
        and e["reason"] == "account_disabled"
        and str(e["user_id"]) == user_id
        for e in events
    )


async def test_forgot_password_mails_no_disabled_account_and_answers_the_same(
    api: Api, smtp: SmtpServer
) -> None:
    await api.sign_up()
    await api.sign_up(email="pig@cow.jp")
    await disable(api, "cow@cow.jp")
    disabled = await api.client.post("/api/v1/password/forgot", json={"email": "cow@cow.jp"})
    enabled = await api.client.post("/api/v1/password/forgot", json={"email": "pig@cow.jp"})
    assert (disabled.status_code, disabled.content) == (enabled.status_code, enabled.content)
    assert disabled.status_code == 202
    await smtp.wait_for(1)
    await asyncio.sleep(0.6)
    assert [m["To"] for m in smtp.messages] == ["pig@cow.jp"]


# -- the lifecycle routes of a disabled account (issue: ban evasion) ---------------------

NEW_PASSWORD = "Quack11?-zebra"


@pytest.fixture
async def mail_api(make_settings: Any, clock: Any, smtp: SmtpServer) -> AsyncIterator[Api]:
    settings = make_settings(**mail_settings(smtp.port, email_verification="optional"))
    async for value in start_api(settings, clock):
        yield value


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['accessToken']}"}


async def _pending_links(api: Api, smtp: SmtpServer, tokens: dict[str, Any]) -> tuple[str, str]:
    """An email-change link and a reset link of cow@cow.jp, mailed and unused."""
    await smtp.wait_for(1, to="cow@cow.jp")
    changed = await api.client.post(
        "/api/v1/email/change",
        headers=_bearer(tokens),
        json={"newEmail": "calf@cow.jp", "password": PASSWORD},
    )
    assert changed.status_code == 202, changed.text
    [change] = await smtp.wait_for(1, to="calf@cow.jp")
    forgot = await api.client.post("/api/v1/password/forgot", json={"email": "cow@cow.jp"})
    assert forgot.status_code == 202
    reset = await smtp.wait_for_subject("Reset your password")
    return token_of(change), token_of(reset)


def _assert_disabled(response: Any) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "account_disabled"


async def test_a_disabled_account_changes_nothing_with_its_live_access_token(
    mail_api: Api, smtp: SmtpServer
) -> None:
    api = mail_api
    tokens = await api.sign_up()
    change, reset = await _pending_links(api, smtp, tokens)
    await disable(api, "cow@cow.jp")
    auth = _bearer(tokens)
    _assert_disabled(await api.client.post("/api/v1/email/verify/resend", headers=auth))
    _assert_disabled(
        await api.client.post(
            "/api/v1/email/change",
            headers=auth,
            json={"newEmail": "pig@cow.jp", "password": PASSWORD},
        )
    )
    _assert_disabled(
        await api.client.post(
            "/api/v1/password/change",
            headers=auth,
            json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
        )
    )
    _assert_disabled(
        await api.client.request("DELETE", "/api/v1/me", headers=auth, json={"password": PASSWORD})
    )
    # Links mailed before the disabling were voided with it.
    used = await api.client.post("/api/v1/email/verify", json={"token": change})
    assert used.status_code == 400, used.text
    reset_used = await api.client.post(
        "/api/v1/password/reset", json={"token": reset, "password": NEW_PASSWORD}
    )
    assert reset_used.status_code == 400, reset_used.text
    [user] = await fetch_all(api.settings.effective_database_url, "users")
    assert (user["email"], user["disabled_at"] is not None) == ("cow@cow.jp", True)
    # Still banned: the address is not free for a new account.
    assert (await count_rows(api.settings.effective_database_url))["users"] == 1
    assert all(
        t["used_at"] is not None
        for t in await fetch_all(api.settings.effective_database_url, "one_time_tokens")
    )


async def test_links_of_an_account_disabled_by_hand_are_refused(
    mail_api: Api, smtp: SmtpServer
) -> None:
    """disabled_at alone refuses (a row set by hand, or before disabling voided links)."""
    api = mail_api
    tokens = await api.sign_up()
    change, reset = await _pending_links(api, smtp, tokens)
    uow = api.services.uow
    async with uow() as unit:
        user = await unit.users.get_by_email_key("cow@cow.jp")
        assert user is not None
        await unit.users.set_disabled(user.id, api.clock.now())
    _assert_disabled(await api.client.post("/api/v1/email/verify", json={"token": change}))
    _assert_disabled(
        await api.client.post(
            "/api/v1/password/reset", json={"token": reset, "password": NEW_PASSWORD}
        )
    )
    [row] = await fetch_all(api.settings.effective_database_url, "users")
    assert row["email"] == "cow@cow.jp"
    assert (await sign_in(api, "cow@cow.jp", NEW_PASSWORD)).status_code == 401
