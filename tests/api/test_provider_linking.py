"""Who a provider's token may link to, and that one ID token starts one session.

Each linking rule is tested through both provider routes, on SQLite and MariaDB.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.test_providers import (
    _me,
    _provider_settings,
    apple_token,
    google_token,
)
from tests.conftest import Api, start_api
from tests.support.idp import FakeIdp, hashed_nonce
from tests.support.rows import count_rows, fetch_all

ROUTES = ["/api/v1/auth/{provider}", "/api/v1/signup/{provider}"]
CORP_ISSUER = "https://login.corp.example"


@pytest.fixture
def corp() -> Iterator[FakeIdp]:
    with FakeIdp("corp") as idp:
        yield idp


def _corp_provider(corp: FakeIdp, **flags: bool) -> str:
    entry = {"issuer": CORP_ISSUER, "jwks_url": corp.jwks_url, "audiences": ["corp-app"]}
    return json.dumps({"corp": {**entry, "requireNonce": False, **flags}})


@pytest.fixture
async def api(
    make_settings: Any, clock: Any, google: FakeIdp, apple: FakeIdp, corp: FakeIdp
) -> AsyncIterator[Api]:
    settings = make_settings(
        **_provider_settings(google, apple, oidc_providers=_corp_provider(corp))
    )
    async for value in start_api(settings, clock):
        yield value


def corp_token(api: Api, idp: FakeIdp, **claims: Any) -> str:
    now = int(api.clock.now().timestamp())
    base = {
        "iss": CORP_ISSUER,
        "aud": "corp-app",
        "sub": "employee-42",
        "email": "alice@example.com",
        "email_verified": True,
        "iat": now,
        "exp": now + 300,
    }
    return idp.sign({**base, **claims})


async def _post(api: Api, route: str, provider: str, token: str, **body: Any) -> Any:
    return await api.client.post(route.format(provider=provider), json={"jwt": token, **body})


async def _owner_keeps_the_account(api: Api, owner: dict[str, Any], email: str) -> None:
    signin = await api.client.post(
        "/api/v1/auth/credentials", json={"email": email, "password": "owner-password"}
    )
    assert signin.status_code == 200, signin.text
    refresh = await api.client.post("/api/v1/refresh", json={"refreshToken": owner["refreshToken"]})
    assert refresh.status_code == 200
    me = await _me(api, signin.json())
    assert me["providers"] == ["credentials"]


async def _answer_without_linking(
    api: Api, route: str, provider: str, token: str, owner: dict[str, Any]
) -> None:
    """Sign-in finds no account (404); sign-up makes a separate one that claims nothing."""
    response = await _post(api, route, provider, token)
    if route.startswith("/api/v1/auth"):
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "account_not_found"
        return
    assert response.status_code == 200, response.text
    me = await _me(api, response.json())
    assert me["userId"] != (await _me(api, owner))["userId"]
    assert me["providers"] == [provider]


# -- 1. only an address the provider vouches for links -------------------------------


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("provider", "claims"),
    [
        # A consumer Google account on a non-Gmail address: Google verified it once,
        # by mail, and is not its authority.
        ("google", {}),
        # A generic provider without "trustEmail": true vouches for nothing.
        ("corp", {}),
    ],
)
async def test_an_email_the_provider_does_not_vouch_for_never_links(
    api: Api,
    google: FakeIdp,
    corp: FakeIdp,
    route: str,
    provider: str,
    claims: dict[str, Any],
) -> None:
    owner = await api.sign_up("alice@example.com", password="owner-password")
    mint = google_token if provider == "google" else corp_token
    idp = google if provider == "google" else corp
    token = mint(api, idp, email="alice@example.com", email_verified=True, **claims)
    await _answer_without_linking(api, route, provider, token, owner)
    await _owner_keeps_the_account(api, owner, "alice@example.com")
    if route.startswith("/api/v1/signup"):
        users = await fetch_all(api.settings.effective_database_url, "users")
        created = [u for u in users if u["password_hash"] is None]
        # Kept as an attribute, unverified, claiming no key.
        assert [(u["email"], u["email_key"], u["email_verified"]) for u in created] == [
            ("alice@example.com", None, False)
        ]


@pytest.mark.parametrize("route", ROUTES)
async def test_a_workspace_account_and_a_trusting_generic_provider_do_link(
    make_settings: Any, clock: Any, google: FakeIdp, apple: FakeIdp, corp: FakeIdp, route: str
) -> None:
    # The counterpart of the test above: the same addresses link once vouched for.
    settings = make_settings(
        **_provider_settings(google, apple, oidc_providers=_corp_provider(corp, trustEmail=True))
    )
    async for api in start_api(settings, clock):
        for provider, email, token in (
            ("google", "alice@example.com", None),
            ("corp", "bob@example.com", None),
        ):
            owner = await api.sign_up(email, password="owner-password")
            if provider == "google":
                token = google_token(api, google, email=email, hd="example.com")
            else:
                token = corp_token(api, corp, email=email)
            response = await _post(api, route, provider, token)
            assert response.status_code == 200, response.text
            me = await _me(api, response.json())
            assert me["userId"] == (await _me(api, owner))["userId"]
            assert me["providers"] == [provider]


# -- 2. never a second identity of the same provider --------------------------------


@pytest.mark.parametrize("route", ROUTES)
async def test_a_second_identity_of_the_same_provider_never_links(
    api: Api, google: FakeIdp, route: str
) -> None:
    first = await api.client.post(
        "/api/v1/signup/google", json={"jwt": google_token(api, google, sub="first-sub")}
    )
    assert first.status_code == 200
    before = await count_rows(api.settings.effective_database_url)

    # Same verified Gmail address, another Google account (another sub).
    token = google_token(api, google, sub="second-sub")
    response = await _post(api, route, "google", token)
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "provider_already_linked"
    assert response.headers["content-type"] == "application/problem+json"
    assert await count_rows(api.settings.effective_database_url) == before
    # A 409 does not consume the token: it answers the same again, not 401.
    for other_route in ROUTES:
        again = await _post(api, other_route, "google", token)
        assert again.json()["code"] == "provider_already_linked"
    # The first identity still signs in to its account, alone.
    signed_in = await _post(api, ROUTES[0], "google", google_token(api, google, sub="first-sub"))
    me = await _me(api, signed_in.json())
    assert me["userId"] == (await _me(api, first.json()))["userId"]
    identities = await fetch_all(api.settings.effective_database_url, "identities")
    assert [i["subject"] for i in identities] == ["first-sub"]


@pytest.mark.parametrize("route", ROUTES)
async def test_another_provider_still_links_to_an_account_with_a_google_identity(
    api: Api, google: FakeIdp, apple: FakeIdp, route: str
) -> None:
    first = await api.client.post("/api/v1/signup/google", json={"jwt": google_token(api, google)})
    token = apple_token(api, apple, email="alice@gmail.com", is_private_email="false")
    linked = await _post(api, route, "apple", token)
    assert linked.status_code == 200, linked.text
    me = await _me(api, linked.json())
    assert me["userId"] == (await _me(api, first.json()))["userId"]
    assert me["providers"] == ["apple", "google"]


# -- 3. the exact address: ß is not ss ----------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("account", "vouched"),
    [
        ("strasse@example.com", "stra\u00dfe@example.com"),
        ("stra\u00dfe@example.com", "strasse@example.com"),
        ("ff@example.com", "\ufb00@example.com"),
    ],
)
async def test_a_look_alike_address_never_links(
    api: Api, apple: FakeIdp, route: str, account: str, vouched: str
) -> None:
    owner = await api.sign_up(account, password="owner-password")
    token = apple_token(api, apple, email=vouched, is_private_email="false")
    await _answer_without_linking(api, route, "apple", token, owner)
    await _owner_keeps_the_account(api, owner, account)
    if route.startswith("/api/v1/signup"):
        # The vouched-for address is a mailbox of its own: its owner got it.
        users = await fetch_all(api.settings.effective_database_url, "users")
        assert sorted(u["email_key"] for u in users) == sorted([account, vouched])


@pytest.mark.parametrize("route", ROUTES)
async def test_the_same_address_in_other_case_links(api: Api, apple: FakeIdp, route: str) -> None:
    owner = await api.sign_up("Stra\u00dfe@Example.com", password="squatter-password")
    token = apple_token(api, apple, email="STRA\u00dfE@example.COM", is_private_email="false")
    response = await _post(api, route, "apple", token)
    assert response.status_code == 200, response.text
    assert (await _me(api, response.json()))["userId"] == (await _me(api, owner))["userId"]


# -- an ID token starts one session --------------------------------------------------


async def test_a_replayed_id_token_is_401_and_writes_nothing(api: Api, google: FakeIdp) -> None:
    token = google_token(api, google)
    assert (await _post(api, ROUTES[1], "google", token)).status_code == 200
    before = await count_rows(api.settings.effective_database_url)
    for route in ROUTES:
        replayed = await _post(api, route, "google", token)
        assert replayed.status_code == 401
        assert replayed.json()["code"] == "invalid_id_token"
        assert "WWW-Authenticate" in replayed.headers
    assert await count_rows(api.settings.effective_database_url) == before
    # The record: header.payload's hash, kept until exp + skew.
    (use,) = await fetch_all(api.settings.effective_database_url, "id_token_uses")
    exp = int(api.clock.now().timestamp()) + 3600
    skew = api.settings.provider_clock_skew_seconds
    assert use["provider"] == "google"
    assert use["expires_at"] == datetime.fromtimestamp(exp + skew, UTC)
    assert len(use["token_hash"]) == 64


async def test_a_404_does_not_consume_the_token(api: Api, google: FakeIdp) -> None:
    token = google_token(api, google)
    assert (await _post(api, ROUTES[0], "google", token)).status_code == 404
    # Today's flow: sign-in says "no account", the app signs up with the same token.
    assert (await _post(api, ROUTES[1], "google", token)).status_code == 200
    assert (await _post(api, ROUTES[0], "google", token)).status_code == 401


@pytest.mark.parametrize("route", ROUTES)
async def test_one_id_token_posted_ten_times_at_once_starts_one_session(
    api: Api, google: FakeIdp, route: str
) -> None:
    if route.startswith("/api/v1/auth"):
        setup = await _post(api, ROUTES[1], "google", google_token(api, google))
        assert setup.status_code == 200
    before = (await count_rows(api.settings.effective_database_url))["sessions"]
    token = google_token(api, google)
    responses = await asyncio.gather(*(_post(api, route, "google", token) for _ in range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [401] * 9, statuses
    assert {r.json()["code"] for r in responses if r.status_code == 401} == {"invalid_id_token"}
    counts = await count_rows(api.settings.effective_database_url)
    assert counts["sessions"] == before + 1
    assert (counts["users"], counts["identities"]) == (1, 1)


# -- requireNonce, compact form, over-long email ------------------------------------


@pytest.mark.parametrize("route", ROUTES)
async def test_a_required_nonce_is_enforced_per_provider(
    make_settings: Any, clock: Any, google: FakeIdp, apple: FakeIdp, route: str
) -> None:
    settings = make_settings(**_provider_settings(google, apple, google_require_nonce=True))
    async for api in start_api(settings, clock):
        missing = await _post(api, route, "google", google_token(api, google))
        assert missing.status_code == 401
        assert missing.json()["code"] == "invalid_id_token"
        assert all(n == 0 for n in (await count_rows(settings.effective_database_url)).values())
        # Apple keeps its default (no nonce needed) for the seed apps.
        apple_response = await _post(api, ROUTES[1], "apple", apple_token(api, apple))
        assert apple_response.status_code == 200
        token = google_token(api, google, nonce=hashed_nonce("n-0S6_WzA2Mj"))
        with_nonce = await _post(api, ROUTES[1], "google", token, nonce="n-0S6_WzA2Mj")
        assert with_nonce.status_code == 200, with_nonce.text


async def test_a_generic_provider_requires_a_nonce_by_default(
    make_settings: Any, clock: Any, google: FakeIdp, apple: FakeIdp, corp: FakeIdp
) -> None:
    entry = {"issuer": CORP_ISSUER, "jwks_url": corp.jwks_url, "audiences": ["corp-app"]}
    settings = make_settings(
        **_provider_settings(google, apple, oidc_providers=json.dumps({"corp": entry}))
    )
    async for api in start_api(settings, clock):
        for route in ROUTES:
            response = await _post(api, route, "corp", corp_token(api, corp))
            assert response.status_code == 401
        token = corp_token(api, corp, nonce=hashed_nonce("corp-nonce"))
        response = await _post(api, ROUTES[1], "corp", token, nonce="corp-nonce")
        assert response.status_code == 200


@pytest.mark.parametrize("route", ROUTES)
async def test_only_the_compact_form_of_a_provider_token_is_accepted(
    api: Api, google: FakeIdp, route: str
) -> None:
    token = google_token(api, google)
    header, payload, signature = token.split(".")
    for variant in (
        token + "==",
        f"{header}.{payload}.{signature[:-1]}+",
        f"{header}.{payload}.{signature[:-1]}/",
        f"{header}.+{payload}.{signature}",
    ):
        response = await _post(api, route, "google", variant)
        assert response.status_code == 401, variant
        assert response.json()["code"] == "invalid_id_token"
    assert all(n == 0 for n in (await count_rows(api.settings.effective_database_url)).values())


@pytest.mark.parametrize("route", ROUTES)
async def test_a_provider_email_over_254_characters_is_no_email(
    make_settings: Any, clock: Any, google: FakeIdp, apple: FakeIdp, route: str
) -> None:
    settings = make_settings(**_provider_settings(google, apple, provider_signup_on_signin=True))
    async for api in start_api(settings, clock):
        email = "a" * 64 + "@" + "b" * 186 + ".com"
        assert len(email) == 255
        response = await _post(api, route, "google", google_token(api, google, email=email))
        assert response.status_code == 200, response.text
        me = await _me(api, response.json())
        assert (me["email"], me["emailVerified"]) == (None, False)
        # And again, through the known-identity path that updates the stored email.
        again = await _post(api, ROUTES[0], "google", google_token(api, google, email=email))
        assert again.status_code == 200, again.text
        (identity,) = await fetch_all(settings.effective_database_url, "identities")
        assert identity["email"] is None
