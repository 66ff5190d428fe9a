"""Google, Apple and generic OIDC sign-up/sign-in, linking, and pre-account takeover."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Api, start_api
from tests.support.idp import FakeIdp, apple_claims, google_claims, hashed_nonce
from tests.support.rows import count_rows, fetch_all

GOOGLE_CLIENT = "web-client.apps.googleusercontent.com"
APPLE_BUNDLE = "jp.timelapseme.app"


def _provider_settings(google: FakeIdp, apple: FakeIdp, **extra: Any) -> dict[str, Any]:
    return {
        "jwt_audience_google": f"{GOOGLE_CLIENT}, ios-client.apps.googleusercontent.com",
        "google_jwks_url": google.jwks_url,
        "jwt_audience_apple": APPLE_BUNDLE,
        "apple_jwks_url": apple.jwks_url,
        **extra,
    }


@pytest.fixture
async def api(
    make_settings: Any, clock: Any, google: FakeIdp, apple: FakeIdp
) -> AsyncIterator[Api]:
    async for value in start_api(make_settings(**_provider_settings(google, apple)), clock):
        yield value


# A provider issues a new token for every sign-in (and ID tokens are single use), so
# each call mints a distinct one; reuse a token by keeping the string.
_serial = itertools.count()


def google_token(api: Api, idp: FakeIdp, **claims: Any) -> str:
    now = api.clock.now().timestamp()
    claims.setdefault("jti", f"google-{next(_serial)}")
    return idp.sign(google_claims(now=now, client_id=GOOGLE_CLIENT, **claims))


def apple_token(api: Api, idp: FakeIdp, **claims: Any) -> str:
    now = api.clock.now().timestamp()
    claims.setdefault("jti", f"apple-{next(_serial)}")
    return idp.sign(apple_claims(now=now, bundle_id=APPLE_BUNDLE, **claims))


async def _me(api: Api, tokens: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_google_sign_up_then_sign_in(api: Api, google: FakeIdp) -> None:
    token = google_token(api, google)
    signed_up = await api.client.post("/api/v1/signup/google", json={"jwt": token})
    assert signed_up.status_code == 200, signed_up.text
    assert signed_up.headers["cache-control"] == "no-store"
    me = await _me(api, signed_up.json())
    assert me["email"] == "alice@gmail.com"
    assert me["emailVerified"] is True
    assert (me["firstName"], me["lastName"]) == ("Alice", "Example")
    assert me["providers"] == ["google"]

    # The same token again: it already started a session (single use).
    replayed = await api.client.post("/api/v1/signup/google", json={"jwt": token})
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "invalid_id_token"
    again = await api.client.post("/api/v1/signup/google", json={"jwt": google_token(api, google)})
    assert again.status_code == 409
    assert again.json()["code"] == "identity_taken"

    signed_in = await api.client.post(
        "/api/v1/auth/google", json={"jwt": google_token(api, google)}
    )
    assert signed_in.status_code == 200
    assert (await _me(api, signed_in.json()))["userId"] == me["userId"]


async def test_apple_names_come_from_the_body_and_booleans_from_strings(
    api: Api, apple: FakeIdp
) -> None:
    token = apple_token(api, apple)
    response = await api.client.post(
        "/api/v1/signup/apple", json={"jwt": token, "firstName": "Melvin", "lastName": "F"}
    )
    assert response.status_code == 200, response.text
    me = await _me(api, response.json())
    assert (me["firstName"], me["lastName"]) == ("Melvin", "F")
    assert me["email"] == "xk8c2m4q7z@privaterelay.appleid.com"
    assert me["emailVerified"] is True
    signed_in = await api.client.post("/api/v1/auth/apple", json={"jwt": apple_token(api, apple)})
    assert signed_in.status_code == 200


async def test_names_are_never_required(api: Api, apple: FakeIdp) -> None:
    response = await api.client.post(
        "/api/v1/signup/apple", json={"jwt": apple_token(api, apple, sub="no-names")}
    )
    me = await _me(api, response.json())
    assert (me["firstName"], me["lastName"]) == ("", "")


async def test_sign_in_without_an_account_is_404(api: Api, google: FakeIdp) -> None:
    response = await api.client.post("/api/v1/auth/google", json={"jwt": google_token(api, google)})
    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"
    counts = await count_rows(api.settings.effective_database_url)
    assert (counts["users"], counts["id_token_uses"]) == (0, 0)


async def test_sign_in_creates_the_account_when_configured(
    make_settings: Any, clock: Any, google: FakeIdp, apple: FakeIdp
) -> None:
    settings = make_settings(**_provider_settings(google, apple, provider_signup_on_signin=True))
    async for api in start_api(settings, clock):
        response = await api.client.post(
            "/api/v1/auth/google", json={"jwt": google_token(api, google)}
        )
        assert response.status_code == 200
        assert (await _me(api, response.json()))["providers"] == ["google"]


@pytest.mark.parametrize("provider", ["microsoft", "GOOGLE", "x" * 300])
async def test_unconfigured_providers_are_404(api: Api, google: FakeIdp, provider: str) -> None:
    for route in ("signup", "auth"):
        response = await api.client.post(
            f"/api/v1/{route}/{provider}", json={"jwt": google_token(api, google)}
        )
        assert response.status_code == 404
        assert response.json()["code"] == "provider_not_enabled"


async def test_a_refused_token_is_401_and_writes_nothing(api: Api, google: FakeIdp) -> None:
    cases = {
        "expired": google_token(api, google, exp=int(api.clock.now().timestamp()) - 120),
        "foreign audience": google_token(api, google, aud="someone-else", azp="someone-else"),
        "look-alike issuer": google_token(api, google, iss="https://accounts.google.com/"),
        "garbage": "not.a.jwt",
    }
    for name, token in cases.items():
        for route in ("signup", "auth"):
            response = await api.client.post(f"/api/v1/{route}/google", json={"jwt": token})
            assert response.status_code == 401, name
            assert response.json()["code"] == "invalid_id_token"
            assert "WWW-Authenticate" in response.headers
    assert all(n == 0 for n in (await count_rows(api.settings.effective_database_url)).values())


async def test_a_google_token_is_refused_on_the_apple_route(
    api: Api, google: FakeIdp, apple: FakeIdp
) -> None:
    response = await api.client.post(
        "/api/v1/signup/apple", json={"jwt": google_token(api, google)}
    )
    assert response.status_code == 401
    response = await api.client.post("/api/v1/signup/google", json={"jwt": apple_token(api, apple)})
    assert response.status_code == 401


async def test_our_access_tokens_and_provider_tokens_are_not_interchangeable(
    api: Api, google: FakeIdp
) -> None:
    ours = (await api.sign_up("mixed@cow.jp"))["accessToken"]
    as_provider = await api.client.post("/api/v1/signup/google", json={"jwt": ours})
    assert as_provider.status_code == 401
    theirs = google_token(api, google)
    as_access = await api.client.get("/secure", headers={"Authorization": f"Bearer {theirs}"})
    assert as_access.status_code == 401


async def test_nonce_round_trip(api: Api, google: FakeIdp) -> None:
    raw = "n-0S6_WzA2Mj"
    token = google_token(api, google, nonce=hashed_nonce(raw))
    missing = await api.client.post("/api/v1/signup/google", json={"jwt": token})
    assert missing.status_code == 401
    wrong = await api.client.post("/api/v1/signup/google", json={"jwt": token, "nonce": "other"})
    assert wrong.status_code == 401
    right = await api.client.post("/api/v1/signup/google", json={"jwt": token, "nonce": raw})
    assert right.status_code == 200
    unexpected = await api.client.post(
        "/api/v1/auth/google", json={"jwt": google_token(api, google), "nonce": raw}
    )
    assert unexpected.status_code == 401


async def test_provider_down_without_cached_keys_is_503(api: Api, google: FakeIdp) -> None:
    token = google_token(api, google)
    google.go_down()
    response = await api.client.post("/api/v1/signup/google", json={"jwt": token})
    assert response.status_code == 503
    assert response.json()["code"] == "provider_unavailable"
    assert "Retry-After" in response.headers


@pytest.mark.parametrize("route", ["/api/v1/auth/google", "/api/v1/signup/google"])
async def test_verified_email_links_and_ends_a_squatters_access(
    api: Api, google: FakeIdp, route: str
) -> None:
    # Someone registered the victim's address with a password before the victim came.
    # Sign-up links too: the victim's app may well call sign-up first.
    squatter = await api.sign_up("alice@gmail.com", password="squatter-password")
    response = await api.client.post(route, json={"jwt": google_token(api, google)})
    assert response.status_code == 200, response.text
    me = await _me(api, response.json())
    assert me["providers"] == ["google"]
    assert me["emailVerified"] is True
    assert me["userId"] == (await _me(api, squatter))["userId"]  # linked, not a new account
    # The squatter's password and sessions are gone.
    password = await api.client.post(
        "/api/v1/auth/credentials",
        json={"email": "alice@gmail.com", "password": "squatter-password"},
    )
    assert password.status_code == 401
    refresh = await api.client.post(
        "/api/v1/refresh", json={"refreshToken": squatter["refreshToken"]}
    )
    assert refresh.status_code == 401
    assert (await count_rows(api.settings.effective_database_url))["users"] == 1
    events = await fetch_all(api.settings.effective_database_url, "audit_events")
    links = [e for e in events if e["name"] == "provider_link"]
    assert [(e["provider"], e["reason"]) for e in links] == [("google", "password_removed")]


async def test_unverified_provider_email_never_links(api: Api, google: FakeIdp) -> None:
    owner = await api.sign_up("alice@gmail.com", password="owner-password")
    unverified = google_token(api, google, email_verified=False)
    assert (
        await api.client.post("/api/v1/auth/google", json={"jwt": unverified})
    ).status_code == 404
    created = await api.client.post("/api/v1/signup/google", json={"jwt": unverified})
    assert created.status_code == 200
    me = await _me(api, created.json())
    assert me["emailVerified"] is False
    assert me["userId"] != (await _me(api, owner))["userId"]
    # The owner keeps the password and the session.
    signin = await api.client.post(
        "/api/v1/auth/credentials", json={"email": "alice@gmail.com", "password": "owner-password"}
    )
    assert signin.status_code == 200
    refresh = await api.client.post("/api/v1/refresh", json={"refreshToken": owner["refreshToken"]})
    assert refresh.status_code == 200
    # And the unverified address claimed nothing: it is still free of other accounts.
    assert (await count_rows(api.settings.effective_database_url))["users"] == 2


async def test_one_account_holds_several_providers(
    api: Api, google: FakeIdp, apple: FakeIdp
) -> None:
    first = await api.client.post("/api/v1/signup/google", json={"jwt": google_token(api, google)})
    apple_same_email = apple_token(api, apple, email="alice@gmail.com", is_private_email="false")
    linked = await api.client.post("/api/v1/auth/apple", json={"jwt": apple_same_email})
    assert linked.status_code == 200
    me = await _me(api, linked.json())
    assert me["userId"] == (await _me(api, first.json()))["userId"]
    assert me["providers"] == ["apple", "google"]


async def test_concurrent_sign_ups_of_one_identity_make_one_account(
    api: Api, google: FakeIdp
) -> None:
    tokens = [google_token(api, google) for _ in range(10)]  # ten sign-ins at Google
    responses = await asyncio.gather(
        *(api.client.post("/api/v1/signup/google", json={"jwt": token}) for token in tokens)
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 9, statuses
    counts = await count_rows(api.settings.effective_database_url)
    assert (counts["users"], counts["identities"]) == (1, 1)


async def test_generic_oidc_provider(
    make_settings: Any, clock: Any, google: FakeIdp, apple: FakeIdp
) -> None:
    import json

    with FakeIdp("corp") as corp:
        providers = {
            "corp": {
                "issuer": "https://login.corp.example",
                "jwks_url": corp.jwks_url,
                "audiences": ["corp-app"],
                "algorithms": ["RS256"],
            }
        }
        settings = make_settings(
            **_provider_settings(google, apple, oidc_providers=json.dumps(providers))
        )
        async for api in start_api(settings, clock):
            now = int(api.clock.now().timestamp())
            token = corp.sign(
                {
                    "iss": "https://login.corp.example",
                    "aud": "corp-app",
                    "sub": "employee-42",
                    "email": "e42@corp.example",
                    "email_verified": True,
                    "nonce": hashed_nonce("corp-nonce"),  # required by default
                    "iat": now,
                    "exp": now + 300,
                }
            )
            response = await api.client.post(
                "/api/v1/signup/corp", json={"jwt": token, "nonce": "corp-nonce"}
            )
            assert response.status_code == 200, response.text
            assert (await _me(api, response.json()))["providers"] == ["corp"]


@pytest.mark.parametrize(("skew", "status"), [(60, 200), (0, 401)])
async def test_clock_skew_setting_reaches_the_verifier(
    make_settings: Any, clock: Any, google: FakeIdp, apple: FakeIdp, skew: int, status: int
) -> None:
    settings = make_settings(**_provider_settings(google, apple), provider_clock_skew_seconds=skew)
    async for api in start_api(settings, clock):
        # Issued 30 s "in the future": a provider clock slightly ahead of ours.
        token = google_token(api, google, iat=int(api.clock.now().timestamp()) + 30)
        response = await api.client.post("/api/v1/signup/google", json={"jwt": token})
        assert response.status_code == status, response.text


@pytest.mark.parametrize(("cooldown", "status"), [(60, 401), (0, 200)])
async def test_refetch_cooldown_setting_reaches_the_key_cache(
    make_settings: Any,
    clock: Any,
    google: FakeIdp,
    apple: FakeIdp,
    cooldown: int,
    status: int,
) -> None:
    settings = make_settings(
        **_provider_settings(google, apple), jwks_refetch_cooldown_seconds=cooldown
    )
    async for api in start_api(settings, clock):
        first = await api.client.post(
            "/api/v1/signup/google", json={"jwt": google_token(api, google)}
        )
        assert first.status_code == 200
        google.rotate()
        # A new kid right after the first fetch: refetched at once only without a cool-down.
        token = google_token(api, google, sub="another-subject", email="bob@gmail.com")
        response = await api.client.post("/api/v1/signup/google", json={"jwt": token})
        assert response.status_code == status, response.text
