"""Email verification, password reset and change, email change: through the HTTP
routes, on SQLite and MariaDB, with mail delivered to a real SMTP server on
127.0.0.1 (aiosmtpd) and the links read back from the received messages."""

from __future__ import annotations

import asyncio
import os
import stat
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest

from authgate.services.one_time_tokens import VERIFY, OneTimeTokens
from authgate.storage.engine import create_engine
from authgate.storage.unit_of_work import SqlUnitOfWorkFactory
from tests.api.test_providers import _provider_settings, google_token
from tests.conftest import Api, start_api
from tests.support.idp import FakeIdp
from tests.support.rows import fetch_all
from tests.support.smtp import SmtpServer, free_port, link_of, text_of, token_of

PASSWORD = "Moo00!_*&x"
NEW_PASSWORD = "Quack11?-zebra"


def mail_settings(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_tls": "none",
        "mail_from": "authgate <no-reply@authgate.test>",
        "email_verify_url": "https://app.example/verify?token={token}",
        "password_reset_url": "myapp://reset?token={token}",
        "mail_poll_interval_seconds": 0.2,
        "email_verification": "optional",
        **extra,
    }


@pytest.fixture
async def api(make_settings: Any, clock: Any, smtp: SmtpServer) -> AsyncIterator[Api]:
    async for value in start_api(make_settings(**mail_settings(smtp.port)), clock):
        yield value


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['accessToken']}"}


async def me(api: Api, tokens: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.get("/api/v1/me", headers=bearer(tokens))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def sign_in(api: Api, email: str, password: str) -> Any:
    return await api.client.post(
        "/api/v1/auth/credentials", json={"email": email, "password": password}
    )


def claims_of(tokens: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
    return decoded


def assert_invalid_token(response: Any) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_token"


async def test_sign_up_mails_a_link_that_verifies_the_address(api: Api, smtp: SmtpServer) -> None:
    tokens = await api.sign_up()
    assert (await me(api, tokens))["emailVerified"] is False
    assert claims_of(tokens)["email_verified"] is False
    [message] = await smtp.wait_for(1, to="cow@cow.jp")
    assert message["Subject"] == "Verify your email address"
    assert link_of(message).startswith("https://app.example/verify?token=")
    assert message.get_body(preferencelist=("html",)) is not None
    token = token_of(message)

    verified = await api.client.post("/api/v1/email/verify", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json() == {}
    assert (await me(api, tokens))["emailVerified"] is True
    fresh = (await sign_in(api, "cow@cow.jp", PASSWORD)).json()
    assert claims_of(fresh)["email_verified"] is True
    # Single use; only its hash is stored.
    assert_invalid_token(await api.client.post("/api/v1/email/verify", json={"token": token}))
    rows = await fetch_all(api.settings.effective_database_url, "one_time_tokens")
    assert [row["purpose"] for row in rows] == ["verify"]
    assert token not in str(rows)
    outbox = await fetch_all(api.settings.effective_database_url, "mail_outbox")
    assert token not in str(outbox)
    assert outbox[0]["sent_at"] is not None


async def test_resend_supersedes_the_older_link_and_expired_links_fail(
    api: Api, smtp: SmtpServer
) -> None:
    tokens = await api.sign_up()
    [first] = await smtp.wait_for(1)
    resent = await api.client.post("/api/v1/email/verify/resend", headers=bearer(tokens))
    assert resent.status_code == 202, resent.text
    assert resent.json() == {}
    second = (await smtp.wait_for(2))[1]
    assert_invalid_token(
        await api.client.post("/api/v1/email/verify", json={"token": token_of(first)})
    )
    api.clock.advance(api.settings.email_verify_token_ttl_seconds)
    assert_invalid_token(
        await api.client.post("/api/v1/email/verify", json={"token": token_of(second)})
    )
    assert (await api.client.post("/api/v1/email/verify/resend")).status_code == 401


async def test_a_reset_token_is_not_a_verification_token(api: Api, smtp: SmtpServer) -> None:
    await api.sign_up()
    await smtp.wait_for(1)
    assert (
        await api.client.post("/api/v1/password/forgot", json={"email": "cow@cow.jp"})
    ).status_code == 202
    reset = (await smtp.wait_for(2))[1]
    assert_invalid_token(
        await api.client.post("/api/v1/email/verify", json={"token": token_of(reset)})
    )
    for bad in ("x", "A" * 43):
        assert_invalid_token(await api.client.post("/api/v1/email/verify", json={"token": bad}))


async def test_required_verification_holds_back_sessions(
    make_settings: Any, clock: Any, smtp: SmtpServer
) -> None:
    settings = make_settings(**mail_settings(smtp.port, email_verification="required"))
    async for api in start_api(settings, clock):
        response = await api.client.post(
            "/api/v1/signup/credentials", json={"email": "cow@cow.jp", "password": PASSWORD}
        )
        assert response.status_code == 202, response.text
        assert response.json() == {"emailVerificationRequired": True}
        refused = await sign_in(api, "cow@cow.jp", PASSWORD)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "email_not_verified"
        # A wrong password is still the usual 401: the 403 is for the owner only.
        assert (await sign_in(api, "cow@cow.jp", "wrong-password")).status_code == 401
        sessions = await fetch_all(settings.effective_database_url, "sessions")
        assert sessions == []
        [message] = await smtp.wait_for(1)
        verified = await api.client.post("/api/v1/email/verify", json={"token": token_of(message)})
        assert verified.status_code == 200
        assert (await sign_in(api, "cow@cow.jp", PASSWORD)).status_code == 200


async def test_off_sends_no_mail_and_turns_resend_off(
    make_settings: Any, clock: Any, smtp: SmtpServer
) -> None:
    settings = make_settings(**mail_settings(smtp.port, email_verification="off"))
    async for api in start_api(settings, clock):
        tokens = await api.sign_up()
        resend = await api.client.post("/api/v1/email/verify/resend", headers=bearer(tokens))
        assert resend.status_code == 404
        assert resend.json()["code"] == "feature_disabled"
        await asyncio.sleep(0.5)
        assert smtp.messages == []


async def test_forgot_then_reset(api: Api, smtp: SmtpServer) -> None:
    first = await api.sign_up()
    second = (await sign_in(api, "cow@cow.jp", PASSWORD)).json()
    forgot = await api.client.post("/api/v1/password/forgot", json={"email": "COW@cow.jp"})
    assert forgot.status_code == 202
    assert forgot.json() == {}
    message = await smtp.wait_for_subject("Reset your password")
    assert message["Subject"] == "Reset your password"
    assert link_of(message).startswith("myapp://reset?token=")
    token = token_of(message)

    weak = await api.client.post("/api/v1/password/reset", json={"token": token, "password": "1"})
    assert weak.status_code == 422
    # A refused password leaves the link usable.
    done = await api.client.post(
        "/api/v1/password/reset", json={"token": token, "password": NEW_PASSWORD}
    )
    assert done.status_code == 200, done.text
    assert done.json() == {}
    for tokens in (first, second):
        refreshed = await api.client.post(
            "/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]}
        )
        assert refreshed.status_code == 401
    assert (await sign_in(api, "cow@cow.jp", PASSWORD)).status_code == 401
    signed_in = await sign_in(api, "cow@cow.jp", NEW_PASSWORD)
    assert signed_in.status_code == 200
    # The link proved the mailbox.
    assert (await me(api, signed_in.json()))["emailVerified"] is True
    assert_invalid_token(
        await api.client.post(
            "/api/v1/password/reset", json={"token": token, "password": "Another1!-pass"}
        )
    )
    # The verification link mailed at sign-up died with the password change.
    verify = await smtp.wait_for_subject("Verify your email address")
    assert verify["Subject"] == "Verify your email address"
    assert_invalid_token(
        await api.client.post("/api/v1/email/verify", json={"token": token_of(verify)})
    )


async def test_a_verify_link_minted_while_a_reset_proved_the_address_is_refused(
    api: Api, smtp: SmtpServer
) -> None:
    # The race behind a flaky run: a queued verify mail was being sent (its token
    # minted) while the reset voided the user's links and marked the address
    # verified. The token born in that window must not answer 200.
    tokens = await api.sign_up()
    await smtp.wait_for_subject("Verify your email address")
    await api.client.post("/api/v1/password/forgot", json={"email": "cow@cow.jp"})
    reset = token_of(await smtp.wait_for_subject("Reset your password"))
    user_id = (await me(api, tokens))["userId"]
    done = await api.client.post(
        "/api/v1/password/reset", json={"token": reset, "password": NEW_PASSWORD}
    )
    assert done.status_code == 200, done.text
    # Its transaction read the user before the reset and committed after it.
    engine = create_engine(api.settings.effective_database_url)
    try:
        async with SqlUnitOfWorkFactory(engine)() as work:
            late = await OneTimeTokens(clock=api.clock, ttl_seconds={VERIFY: 86_400}).issue(
                work, user_id=uuid.UUID(user_id), purpose=VERIFY, email="cow@cow.jp"
            )
    finally:
        await engine.dispose()
    assert_invalid_token(await api.client.post("/api/v1/email/verify", json={"token": late}))
    signed_in = await sign_in(api, "cow@cow.jp", NEW_PASSWORD)
    assert (await me(api, signed_in.json()))["emailVerified"] is True


async def test_reset_links_expire_after_thirty_minutes(api: Api, smtp: SmtpServer) -> None:
    await api.sign_up()
    await api.client.post("/api/v1/password/forgot", json={"email": "cow@cow.jp"})
    message = await smtp.wait_for_subject("Reset your password")
    api.clock.advance(30 * 60)
    assert_invalid_token(
        await api.client.post(
            "/api/v1/password/reset", json={"token": token_of(message), "password": NEW_PASSWORD}
        )
    )


async def test_forgot_answers_the_same_for_an_unknown_address_and_mails_nothing(
    api: Api, smtp: SmtpServer
) -> None:
    await api.sign_up()
    await smtp.wait_for(1)
    known = await api.client.post("/api/v1/password/forgot", json={"email": "cow@cow.jp"})
    unknown = await api.client.post("/api/v1/password/forgot", json={"email": "ghost@cow.jp"})
    assert (known.status_code, known.content) == (unknown.status_code, unknown.content)
    assert known.headers.get("content-type") == unknown.headers.get("content-type")
    await smtp.wait_for(2)
    await asyncio.sleep(0.6)
    assert [m["To"] for m in smtp.messages] == ["cow@cow.jp", "cow@cow.jp"]
    # The blank row the unknown address queued (same work) is dropped, not mailed.
    outbox = await fetch_all(api.settings.effective_database_url, "mail_outbox")
    assert all(row["user_id"] is not None for row in outbox)


async def test_ten_concurrent_resets_with_one_token_succeed_once(
    api: Api, smtp: SmtpServer
) -> None:
    await api.sign_up()
    await api.client.post("/api/v1/password/forgot", json={"email": "cow@cow.jp"})
    token = token_of(await smtp.wait_for_subject("Reset your password"))
    answers = await asyncio.gather(
        *(
            api.client.post(
                "/api/v1/password/reset", json={"token": token, "password": f"{NEW_PASSWORD}{i}"}
            )
            for i in range(10)
        )
    )
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200] + [400] * 9, [a.text for a in answers]
    winner = next(i for i, a in enumerate(answers) if a.status_code == 200)
    assert (await sign_in(api, "cow@cow.jp", f"{NEW_PASSWORD}{winner}")).status_code == 200


async def test_password_change_keeps_the_current_session_only(api: Api) -> None:
    current = await api.sign_up()
    other = (await sign_in(api, "cow@cow.jp", PASSWORD)).json()
    changed = await api.client.post(
        "/api/v1/password/change",
        headers=bearer(current),
        json={"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {}
    kept = await api.client.post("/api/v1/refresh", json={"refreshToken": current["refreshToken"]})
    assert kept.status_code == 200
    ended = await api.client.post("/api/v1/refresh", json={"refreshToken": other["refreshToken"]})
    assert ended.status_code == 401
    assert (await sign_in(api, "cow@cow.jp", NEW_PASSWORD)).status_code == 200
    weak = await api.client.post(
        "/api/v1/password/change",
        headers=bearer(current),
        json={"currentPassword": NEW_PASSWORD, "newPassword": "short"},
    )
    assert weak.status_code == 422


async def test_wrong_current_passwords_lock_the_account(
    make_settings: Any, clock: Any, smtp: SmtpServer
) -> None:
    settings = make_settings(
        **mail_settings(smtp.port, rate_limit_failed_signins_per_account="3/15 minutes")
    )
    async for api in start_api(settings, clock):
        tokens = await api.sign_up()
        body = {"currentPassword": "wrong-password", "newPassword": NEW_PASSWORD}
        for _ in range(3):
            wrong = await api.client.post(
                "/api/v1/password/change", headers=bearer(tokens), json=body
            )
            assert wrong.status_code == 401
            assert wrong.json()["code"] == "invalid_credentials"
        locked = await api.client.post("/api/v1/password/change", headers=bearer(tokens), json=body)
        assert locked.status_code == 429
        # The same lock as sign-in: the right password is refused now too.
        assert (await sign_in(api, "cow@cow.jp", PASSWORD)).status_code == 429


async def test_email_change_takes_effect_through_the_new_mailbox(
    api: Api, smtp: SmtpServer
) -> None:
    tokens = await api.sign_up()
    await smtp.wait_for(1)
    wrong = await api.client.post(
        "/api/v1/email/change",
        headers=bearer(tokens),
        json={"newEmail": "calf@cow.jp", "password": "wrong-password"},
    )
    assert wrong.status_code == 401
    requested = await api.client.post(
        "/api/v1/email/change",
        headers=bearer(tokens),
        json={"newEmail": "Calf@cow.jp", "password": PASSWORD},
    )
    assert requested.status_code == 202, requested.text
    [message] = await smtp.wait_for(1, to="Calf@cow.jp")
    assert message["Subject"] == "Confirm your new email address"
    assert link_of(message).startswith("https://app.example/verify?token=")
    assert (await me(api, tokens))["email"] == "cow@cow.jp"
    done = await api.client.post("/api/v1/email/verify", json={"token": token_of(message)})
    assert done.status_code == 200, done.text
    profile = await me(api, tokens)
    assert (profile["email"], profile["emailVerified"]) == ("Calf@cow.jp", True)
    notices = [m for m in await smtp.wait_for(2, to="cow@cow.jp") if "changed" in m["Subject"]]
    assert notices
    assert "cow@cow.jp" in text_of(notices[0])
    assert (await sign_in(api, "calf@cow.jp", PASSWORD)).status_code == 200
    assert (await sign_in(api, "cow@cow.jp", PASSWORD)).status_code == 401


async def test_email_change_to_a_taken_address_answers_the_same_and_mails_nothing(
    api: Api, smtp: SmtpServer
) -> None:
    await api.sign_up("calf@cow.jp")
    tokens = await api.sign_up()
    await smtp.wait_for(2)
    requested = await api.client.post(
        "/api/v1/email/change",
        headers=bearer(tokens),
        json={"newEmail": "calf@cow.jp", "password": PASSWORD},
    )
    assert requested.status_code == 202
    assert requested.json() == {}
    await asyncio.sleep(0.6)
    assert len(smtp.messages) == 2


@pytest.mark.parametrize("second", ["calf@cow.jp", "goat@cow.jp"])
async def test_any_email_change_request_voids_the_pending_link_taken_address_or_free(
    api: Api, smtp: SmtpServer, second: str
) -> None:
    # Were only a free address to supersede the pending link, whether the older link
    # still works would tell a taken address (calf@, an account) from a free one.
    await api.sign_up("calf@cow.jp")
    tokens = await api.sign_up()
    await smtp.wait_for(2)
    first = await api.client.post(
        "/api/v1/email/change",
        headers=bearer(tokens),
        json={"newEmail": "lamb@cow.jp", "password": PASSWORD},
    )
    assert first.status_code == 202
    [pending] = await smtp.wait_for(1, to="lamb@cow.jp")
    again = await api.client.post(
        "/api/v1/email/change",
        headers=bearer(tokens),
        json={"newEmail": second, "password": PASSWORD},
    )
    assert (again.status_code, again.json()) == (202, {})
    assert_invalid_token(
        await api.client.post("/api/v1/email/verify", json={"token": token_of(pending)})
    )
    assert (await me(api, tokens))["email"] == "cow@cow.jp"


async def test_an_email_change_request_drops_a_change_mail_still_queued(
    make_settings: Any, clock: Any
) -> None:
    # With the SMTP server away, the first change mail stays queued. Sent later, its
    # link would work after a taken address (nothing supersedes it) but not after a
    # free one: so any request drops it.
    port = free_port()
    settings = make_settings(**mail_settings(port))  # nothing listens there yet
    async for api in start_api(settings, clock):
        await api.sign_up("calf@cow.jp")
        tokens = await api.sign_up()
        first = await api.client.post(
            "/api/v1/email/change",
            headers=bearer(tokens),
            json={"newEmail": "lamb@cow.jp", "password": PASSWORD},
        )
        assert first.status_code == 202
        url = settings.effective_database_url
        taken = await api.client.post(
            "/api/v1/email/change",
            headers=bearer(tokens),
            json={"newEmail": "calf@cow.jp", "password": PASSWORD},
        )
        assert (taken.status_code, taken.json()) == (202, {})
        rows = await fetch_all(url, "mail_outbox")
        assert sorted(row["purpose"] for row in rows) == ["verify", "verify"]


async def test_a_failed_send_never_reaches_the_answer_and_is_retried(
    make_settings: Any, clock: Any
) -> None:
    port = free_port()
    settings = make_settings(**mail_settings(port))  # nothing listens there yet
    async for api in start_api(settings, clock):
        tokens = await api.sign_up()
        forgot = await api.client.post("/api/v1/password/forgot", json={"email": "cow@cow.jp"})
        assert forgot.status_code == 202
        url = settings.effective_database_url
        for _ in range(100):
            rows = await fetch_all(url, "mail_outbox")
            if all(row["attempts"] >= 1 for row in rows):
                break
            await asyncio.sleep(0.1)
        assert [row["sent_at"] for row in rows] == [None, None]
        assert all(row["last_error"] for row in rows)
        assert (await me(api, tokens))["emailVerified"] is False
        server = SmtpServer(port)
        server.start()
        try:
            api.clock.advance(31)  # past the first backoff
            await server.wait_for(2)
            subjects = sorted(m["Subject"] for m in server.messages)
            assert subjects == ["Reset your password", "Verify your email address"]
            # The row is marked sent after the SMTP conversation ends, so a moment
            # after the server has the message.
            for _ in range(100):
                rows = await fetch_all(url, "mail_outbox")
                if all(row["sent_at"] is not None for row in rows):
                    break
                await asyncio.sleep(0.1)
            assert all(row["sent_at"] is not None for row in rows)
        finally:
            server.stop()


async def test_without_smtp_development_writes_eml_files(make_settings: Any, clock: Any) -> None:
    settings = make_settings(email_verification="optional")
    async for api in start_api(settings, clock):
        await api.sign_up()
        outbox = settings.authgate_data_dir / "outbox"
        for _ in range(100):
            files = list(outbox.glob("*.eml")) if outbox.exists() else []
            if files:
                break
            await asyncio.sleep(0.05)
        [path] = files
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        content = path.read_text()
        assert "To: cow@cow.jp" in content
        assert "verify-email?token=" in content


# -- provider accounts -----------------------------------------------------------------


@pytest.fixture
async def provider_api(
    make_settings: Any, clock: Any, smtp: SmtpServer, google: FakeIdp, apple: FakeIdp
) -> AsyncIterator[Api]:
    settings = make_settings(**mail_settings(smtp.port), **_provider_settings(google, apple))
    async for value in start_api(settings, clock):
        yield value


async def test_linking_google_to_a_verified_password_account_keeps_the_password(
    provider_api: Api, smtp: SmtpServer, google: FakeIdp
) -> None:
    api = provider_api
    owner = await api.sign_up("alice@gmail.com", password=PASSWORD)
    [message] = await smtp.wait_for(1)
    assert (
        await api.client.post("/api/v1/email/verify", json={"token": token_of(message)})
    ).status_code == 200
    token = google_token(api, google, email="alice@gmail.com", email_verified=True)
    linked = await api.client.post("/api/v1/auth/google", json={"jwt": token})
    assert linked.status_code == 200, linked.text
    assert (await me(api, linked.json()))["providers"] == ["credentials", "google"]
    # The verified owner's password and sessions stay (the takeover rule is for
    # unverified accounts only).
    assert (await sign_in(api, "alice@gmail.com", PASSWORD)).status_code == 200
    kept = await api.client.post("/api/v1/refresh", json={"refreshToken": owner["refreshToken"]})
    assert kept.status_code == 200


async def test_linking_over_a_squatter_voids_the_squatters_pending_links(
    provider_api: Api, smtp: SmtpServer, google: FakeIdp
) -> None:
    api = provider_api
    # The squatter registers the victim's address and asks to move it to their own.
    squatter = await api.sign_up("victim@gmail.com", password=PASSWORD)
    await smtp.wait_for(1, to="victim@gmail.com")
    requested = await api.client.post(
        "/api/v1/email/change",
        headers=bearer(squatter),
        json={"newEmail": "mallory@attacker.example", "password": PASSWORD},
    )
    assert requested.status_code == 202, requested.text
    [change] = await smtp.wait_for(1, to="mallory@attacker.example")
    # The owner signs in with Google: the takeover rule takes the account back.
    token = google_token(api, google, email="victim@gmail.com", email_verified=True)
    linked = await api.client.post("/api/v1/auth/google", json={"jwt": token})
    assert linked.status_code == 200, linked.text
    # The squatter's old link no longer moves the account to their address.
    assert_invalid_token(
        await api.client.post("/api/v1/email/verify", json={"token": token_of(change)})
    )
    profile = await me(api, linked.json())
    assert (profile["email"], profile["emailVerified"]) == ("victim@gmail.com", True)
    tokens = await fetch_all(api.settings.effective_database_url, "one_time_tokens")
    assert tokens
    assert all(t["used_at"] is not None for t in tokens)


async def test_a_provider_only_account_sets_a_password_by_reset(
    provider_api: Api, smtp: SmtpServer, google: FakeIdp
) -> None:
    api = provider_api
    token = google_token(api, google, email="bob@gmail.com", email_verified=True)
    created = await api.client.post("/api/v1/signup/google", json={"jwt": token})
    assert created.status_code == 200, created.text
    assert (await me(api, created.json()))["providers"] == ["google"]
    forgot = await api.client.post("/api/v1/password/forgot", json={"email": "bob@gmail.com"})
    assert forgot.status_code == 202
    [message] = await smtp.wait_for(1, to="bob@gmail.com")
    reset = await api.client.post(
        "/api/v1/password/reset", json={"token": token_of(message), "password": NEW_PASSWORD}
    )
    assert reset.status_code == 200, reset.text
    signed_in = await sign_in(api, "bob@gmail.com", NEW_PASSWORD)
    assert signed_in.status_code == 200
    assert (await me(api, signed_in.json()))["providers"] == ["credentials", "google"]


async def test_forgot_takes_the_same_time_for_real_unknown_and_provider_only_accounts(
    make_settings: Any, clock: Any, smtp: SmtpServer, google: FakeIdp, apple: FakeIdp
) -> None:
    """As the sign-in timing test: interleaved requests, medians compared. The
    bound is generous (two shared cores): what it catches is a different path,
    such as a hash or an extra round trip for one kind only."""
    settings = make_settings(
        **mail_settings(smtp.port, rate_limit_enabled=False),
        **_provider_settings(google, apple),
    )
    async for api in start_api(settings, clock):
        await api.sign_up("real@cow.jp")
        token = google_token(api, google, email="prov@gmail.com", email_verified=True)
        assert (await api.client.post("/api/v1/signup/google", json={"jwt": token})).is_success
        kinds = {"real": "real@cow.jp", "unknown": "ghost@cow.jp", "provider": "prov@gmail.com"}
        timings: dict[str, list[float]] = {kind: [] for kind in kinds}
        bodies = set()
        for i in range(3 * 40 + 6):
            kind = list(kinds)[i % 3]
            started = time.perf_counter()
            response = await api.client.post("/api/v1/password/forgot", json={"email": kinds[kind]})
            elapsed = time.perf_counter() - started
            assert response.status_code == 202
            bodies.add(response.content)
            if i >= 6:
                timings[kind].append(elapsed)
        assert bodies == {b"{}"}
        medians = {kind: statistics.median(values) for kind, values in timings.items()}
        spread = max(medians.values()) - min(medians.values())
        print(
            f"forgot-password medians (ms): { {k: round(v * 1000, 2) for k, v in medians.items()} }"
        )
        assert spread < max(0.5 * max(medians.values()), 0.002), medians


async def test_mail_sending_routes_are_throttled_per_account_and_per_address(
    make_settings: Any, clock: Any, smtp: SmtpServer
) -> None:
    settings = make_settings(
        **mail_settings(
            smtp.port, rate_limit_mail_per_account="2/hour", rate_limit_mail_per_ip="7/hour"
        )
    )
    async for api in start_api(settings, clock):
        tokens = await api.sign_up()
        for email in ("cow@cow.jp", "ghost@cow.jp"):
            answers = [
                (await api.client.post("/api/v1/password/forgot", json={"email": email}))
                for _ in range(3)
            ]
            # The same limit for an address with and without an account.
            assert [a.status_code for a in answers] == [202, 202, 429], email
            assert answers[2].headers["retry-after"]
        resend = await api.client.post("/api/v1/email/verify/resend", headers=bearer(tokens))
        assert resend.status_code == 429  # the account's mail budget is spent
        # Eight mail requests from this address now: over the per-address limit (7).
        other = await api.client.post("/api/v1/password/forgot", json={"email": "new@cow.jp"})
        assert other.status_code == 429


async def test_a_slow_smtp_server_does_not_slow_the_answer(make_settings: Any, clock: Any) -> None:
    server = SmtpServer(delay=2.0)
    server.start()
    try:
        settings = make_settings(**mail_settings(server.port))
        async for api in start_api(settings, clock):
            tokens = await api.sign_up()
            started = time.perf_counter()
            forgot = await api.client.post("/api/v1/password/forgot", json={"email": "cow@cow.jp"})
            resend = await api.client.post("/api/v1/email/verify/resend", headers=bearer(tokens))
            elapsed = time.perf_counter() - started
            assert (forgot.status_code, resend.status_code) == (202, 202)
            assert elapsed < 1.5, elapsed  # each send takes 2 s
            await server.wait_for_subject("Reset your password")
    finally:
        server.stop()
