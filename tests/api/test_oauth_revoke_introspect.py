"""POST /oauth/revoke (RFC 7009) and POST /oauth/introspect (RFC 7662)."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from tests.conftest import Api, start_api
from tests.support.oauth import assert_oauth_error, basic, post_form, register_client
from tests.support.rows import count_rows, fetch_all

REVOKE = "/oauth/revoke"
INTROSPECT = "/oauth/introspect"
TOKEN = "/oauth/token"


async def _register(api: Api, client_id: str, **kwargs: Any) -> str:
    _, secret = await register_client(
        api.settings.effective_database_url, api.clock, client_id, **kwargs
    )
    assert secret is not None
    return secret


async def _resource_server(api: Api, audience: str = "authgate") -> dict[str, str]:
    secret = await _register(api, "orders-rs", audiences=(audience,), may_introspect=True)
    return basic("orders-rs", secret)


async def _introspect(api: Api, auth: dict[str, str], token: str, **extra: str) -> Any:
    response = await post_form(api.client, INTROSPECT, {"token": token, **extra}, auth)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


async def _session_revoked(api: Api) -> bool:
    (session,) = await fetch_all(api.settings.effective_database_url, "sessions")
    return session["revoked_at"] is not None


# -- revocation -----------------------------------------------------------------


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token", "bogus"])
async def test_revoking_a_refresh_token_ends_its_session(api: Api, hint: str | None) -> None:
    tokens = await api.sign_up()
    form = {"token": tokens["refreshToken"], "client_id": "authgate"}
    if hint:
        form["token_type_hint"] = hint  # a hint, never a rule
    response = await post_form(api.client, REVOKE, form)
    assert response.status_code == 200
    assert response.content == b""
    assert await _session_revoked(api)
    refused = await api.client.post(
        "/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]}
    )
    assert refused.status_code == 401


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token"])
async def test_revoking_an_access_token_ends_the_session_named_by_its_sid(
    api: Api, hint: str | None
) -> None:
    tokens = await api.sign_up()
    form = {"token": tokens["accessToken"], "client_id": "authgate"}
    if hint:
        form["token_type_hint"] = hint
    assert (await post_form(api.client, REVOKE, form)).status_code == 200
    assert await _session_revoked(api)
    refused = await api.client.post(
        "/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]}
    )
    assert refused.status_code == 401


@pytest.mark.parametrize(
    "token",
    ["unknown", "x" * 5000, "a.b.c", "eyJhbGciOiJub25lIn0.e30."],
    ids=["unknown", "too_long", "not_a_jwt", "alg_none"],
)
async def test_unknown_and_malformed_tokens_are_200_and_change_nothing(
    api: Api, token: str
) -> None:
    await api.sign_up()
    before = await count_rows(api.settings.effective_database_url, include_audit=True)
    response = await post_form(api.client, REVOKE, {"token": token, "client_id": "authgate"})
    assert response.status_code == 200
    assert not await _session_revoked(api)
    assert await count_rows(api.settings.effective_database_url, include_audit=True) == before


async def test_a_client_revokes_only_its_own_tokens(api: Api) -> None:
    tokens = await api.sign_up()
    secret = await _register(api, "other", audiences=("authgate",), grant_types=("refresh_token",))
    for token in (tokens["refreshToken"], tokens["accessToken"]):
        response = await post_form(api.client, REVOKE, {"token": token}, basic("other", secret))
        assert response.status_code == 200
        assert not await _session_revoked(api)
    # The default client's own revocation works.
    await post_form(api.client, REVOKE, {"token": tokens["refreshToken"], "client_id": "authgate"})
    assert await _session_revoked(api)


async def test_revoke_requires_client_authentication_and_a_token(api: Api) -> None:
    tokens = await api.sign_up()
    assert_oauth_error(
        await post_form(api.client, REVOKE, {"token": tokens["refreshToken"]}),
        401,
        "invalid_client",
    )
    assert_oauth_error(
        await post_form(api.client, REVOKE, {"client_id": "authgate"}), 400, "invalid_request"
    )
    assert_oauth_error(
        await api.client.post(REVOKE, json={"token": tokens["refreshToken"]}),
        400,
        "invalid_request",
    )
    assert not await _session_revoked(api)


# -- introspection --------------------------------------------------------------


async def test_a_live_access_token_is_active_with_its_claims(api: Api) -> None:
    tokens = await api.sign_up()
    auth = await _resource_server(api)
    body = await _introspect(api, auth, tokens["accessToken"])
    claims = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
    assert body["active"] is True
    assert body["token_type"] == "Bearer"
    assert body["client_id"] == "authgate"
    for name in ("sub", "sid", "iss", "aud", "exp", "iat", "jti", "email"):
        assert body[name] == claims[name], name


async def test_a_live_refresh_token_is_active(api: Api) -> None:
    tokens = await api.sign_up()
    auth = await _resource_server(api)
    body = await _introspect(api, auth, tokens["refreshToken"], token_type_hint="access_token")
    claims = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
    assert body["active"] is True
    assert body["token_type"] == "refresh_token"
    assert body["client_id"] == "authgate"
    assert body["sub"] == claims["sub"]
    assert body["sid"] == claims["sid"]
    assert body["iss"] == api.settings.issuer
    # Once rotated, the old refresh token is no longer active.
    await api.client.post("/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert await _introspect(api, auth, tokens["refreshToken"]) == {"active": False}


async def test_revoked_session_makes_its_access_token_inactive(api: Api) -> None:
    tokens = await api.sign_up()
    auth = await _resource_server(api)
    await api.client.post("/api/v1/revoke", json={"refreshToken": tokens["refreshToken"]})
    # Still a valid JWT until it expires: only introspection sees the revocation.
    secure = await api.client.get(
        "/secure", headers={"authorization": f"Bearer {tokens['accessToken']}"}
    )
    assert secure.status_code == 200
    assert await _introspect(api, auth, tokens["accessToken"]) == {"active": False}
    assert await _introspect(api, auth, tokens["refreshToken"]) == {"active": False}


async def test_disabled_or_deleted_user_makes_tokens_inactive(api: Api) -> None:
    from sqlalchemy import update
    from sqlalchemy.ext.asyncio import create_async_engine

    from authgate.storage.tables import users

    tokens = await api.sign_up()
    auth = await _resource_server(api)
    engine = create_async_engine(api.settings.effective_database_url)
    try:
        async with engine.begin() as connection:
            # Disabled behind the services' back: the session itself stays live.
            await connection.execute(update(users).values(disabled_at=api.clock.now()))
    finally:
        await engine.dispose()
    assert await _introspect(api, auth, tokens["accessToken"]) == {"active": False}
    assert await _introspect(api, auth, tokens["refreshToken"]) == {"active": False}


async def test_expired_forged_and_foreign_tokens_are_inactive(
    make_settings: Any, clock: Any
) -> None:
    settings = make_settings(jwt_audience="orders,billing-api")
    async for api in start_api(settings, clock):
        tokens = await api.sign_up()
        auth = await _resource_server(api, audience="orders")
        # A client_credentials token for another audience: not this server's business.
        secret = await _register(api, "billing", audiences=("billing-api",))
        service = await post_form(
            api.client, TOKEN, {"grant_type": "client_credentials"}, basic("billing", secret)
        )
        foreign = service.json()["access_token"]
        assert await _introspect(api, auth, foreign) == {"active": False}
        header, payload, signature = tokens["accessToken"].split(".")
        forged = f"{header}.{payload}.{signature[:-4]}AAAA"
        assert await _introspect(api, auth, forged) == {"active": False}
        assert await _introspect(api, auth, "garbage") == {"active": False}
        assert (await _introspect(api, auth, tokens["accessToken"]))["active"] is True
        api.clock.advance(settings.access_token_ttl_seconds + 1)
        assert await _introspect(api, auth, tokens["accessToken"]) == {"active": False}


async def test_client_credentials_token_is_active_while_its_client_exists(api: Api) -> None:
    auth = await _resource_server(api)
    secret = await _register(api, "billing", audiences=("authgate",))
    service = await post_form(
        api.client, TOKEN, {"grant_type": "client_credentials"}, basic("billing", secret)
    )
    body = await _introspect(api, auth, service.json()["access_token"])
    assert body["active"] is True
    assert body["sub"] == body["client_id"] == "billing"
    assert "sid" not in body


async def test_only_confidential_clients_allowed_to_introspect_may(api: Api) -> None:
    tokens = await api.sign_up()
    secret = await _register(api, "no-introspect", audiences=("authgate",))
    for form, headers in (
        ({"token": tokens["accessToken"]}, basic("no-introspect", secret)),
        ({"token": tokens["accessToken"], "client_id": "authgate"}, {}),
        ({"token": tokens["accessToken"]}, basic("no-introspect", "wrong")),
    ):
        response = await post_form(api.client, INTROSPECT, form, headers)
        body = assert_oauth_error(response, 401, "invalid_client")
        assert "active" not in body


# -- discovery ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]
)
async def test_discovery_documents(make_settings: Any, clock: Any, path: str) -> None:
    settings = make_settings(public_url="https://auth.example.com")
    async for api in start_api(settings, clock):
        response = await api.client.get(path)
        assert response.status_code == 200
        assert response.headers["cache-control"].startswith("public, max-age=")
        meta = response.json()
        tokens = await api.sign_up()
        issued = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
        assert meta["issuer"] == issued["iss"] == "https://auth.example.com"
        assert meta["jwks_uri"] == "https://auth.example.com/.well-known/jwks.json"
        assert meta["token_endpoint"] == "https://auth.example.com/oauth/token"
        assert meta["revocation_endpoint"] == "https://auth.example.com/oauth/revoke"
        assert meta["introspection_endpoint"] == "https://auth.example.com/oauth/introspect"
        assert meta["grant_types_supported"] == ["refresh_token", "client_credentials"]
        assert "password" not in meta["grant_types_supported"]
        assert set(meta["token_endpoint_auth_methods_supported"]) == {
            "client_secret_basic",
            "client_secret_post",
            "none",
        }
        assert meta["response_types_supported"] == []
        assert meta["subject_types_supported"] == ["public"]
        assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
        # Every advertised endpoint answers (the JWKS holds the tokens' kid).
        jwks = (await api.client.get("/.well-known/jwks.json")).json()
        kid = jwt.get_unverified_header(tokens["accessToken"])["kid"]
        assert kid in {key["kid"] for key in jwks["keys"]}


async def test_a_registered_clients_refresh_token_is_introspected_by_its_audience(
    api: Api,
) -> None:
    await api.sign_up()
    await register_client(
        api.settings.effective_database_url, api.clock, "mobile", audiences=("orders",),
        public=True,
    )  # fmt: skip
    signed_in = await api.client.post(
        "/api/v1/auth/credentials",
        json={"email": "cow@cow.jp", "password": "Moo00!_*&x", "clientId": "mobile"},
    )
    refresh_token = signed_in.json()["refreshToken"]
    orders = basic("mobile-rs", await _register(api, "mobile-rs", audiences=("orders",),
                                                 may_introspect=True))  # fmt: skip
    body = await _introspect(api, orders, refresh_token)
    assert body["active"] is True
    assert (body["client_id"], body["aud"]) == ("mobile", ["orders"])
    # A resource server of another audience learns nothing about it.
    assert await _introspect(api, await _resource_server(api), refresh_token) == {"active": False}
    # Revocation by the default client does not touch it; by its own client it does.
    await post_form(api.client, REVOKE, {"token": refresh_token, "client_id": "authgate"})
    assert (await _introspect(api, orders, refresh_token))["active"] is True
    await post_form(api.client, REVOKE, {"token": refresh_token, "client_id": "mobile"})
    assert await _introspect(api, orders, refresh_token) == {"active": False}
