"""POST /oauth/token (RFC 6749 §5): the refresh_token and client_credentials grants,
client authentication, and the refusals, each in the RFC's error form."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from tests.conftest import Api
from tests.support.oauth import assert_oauth_error, basic, post_form, register_client
from tests.support.rows import count_rows, fetch_all

TOKEN = "/oauth/token"


async def _service(api: Api, client_id: str = "billing", **kwargs: Any) -> str:
    _, secret = await register_client(
        api.settings.effective_database_url,
        api.clock,
        client_id,
        audiences=kwargs.pop("audiences", ("billing-api",)),
        **kwargs,
    )
    assert secret is not None
    return secret


def _claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


async def test_default_client_refreshes_a_session_of_the_json_routes(api: Api) -> None:
    tokens = await api.sign_up()
    assert _claims(tokens["accessToken"])["client_id"] == "authgate"
    api.clock.advance(30)
    response = await post_form(
        api.client,
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": tokens["refreshToken"],
         "client_id": "authgate"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == api.settings.access_token_ttl_seconds
    assert body["refresh_token"] != tokens["refreshToken"]
    claims = _claims(body["access_token"])
    assert claims["client_id"] == "authgate"
    assert claims["aud"] == "authgate"
    assert claims["sid"] == _claims(tokens["accessToken"])["sid"]
    # The rotated token goes on working at /api/v1, the default client's route.
    again = await api.client.post("/api/v1/refresh", json={"refreshToken": body["refresh_token"]})
    assert again.status_code == 200
    # And the new access token passes the user guard.
    secure = await api.client.get(
        "/secure", headers={"authorization": f"Bearer {body['access_token']}"}
    )
    assert secure.status_code == 200


async def test_reuse_through_oauth_token_revokes_the_family(api: Api) -> None:
    tokens = await api.sign_up()
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refreshToken"],
            "client_id": "authgate"}  # fmt: skip
    first = await post_form(api.client, TOKEN, form)
    assert first.status_code == 200
    # Within the leeway: the same successor again (a retry, not a theft).
    api.clock.advance(5)
    retry = await post_form(api.client, TOKEN, form)
    assert retry.status_code == 200
    assert retry.json()["refresh_token"] == first.json()["refresh_token"]
    api.clock.advance(11)
    reuse = await post_form(api.client, TOKEN, form)
    assert_oauth_error(reuse, 400, "invalid_grant")
    successor = {**form, "refresh_token": first.json()["refresh_token"]}
    assert_oauth_error(await post_form(api.client, TOKEN, successor), 400, "invalid_grant")
    (session,) = await fetch_all(api.settings.effective_database_url, "sessions")
    assert session["revoked_reason"] == "reuse_detected"


async def test_client_credentials_with_basic_and_post(api: Api) -> None:
    secret = await _service(api, audiences=("billing-api", "ledger"))
    basic_answer = await post_form(
        api.client, TOKEN, {"grant_type": "client_credentials"}, basic("billing", secret)
    )
    post_answer = await post_form(
        api.client,
        TOKEN,
        {"grant_type": "client_credentials", "client_id": "billing", "client_secret": secret},
    )
    for response in (basic_answer, post_answer):
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_in"}  # no refresh token
        assert body["token_type"] == "Bearer"
        claims = _claims(body["access_token"])
        assert claims["sub"] == claims["client_id"] == "billing"
        assert claims["aud"] == ["billing-api", "ledger"]
        assert claims["iss"] == api.settings.issuer
        assert "sid" not in claims
        assert "email" not in claims
        header = jwt.get_unverified_header(body["access_token"])
        assert header["typ"] == "at+jwt"


async def test_a_service_token_is_not_a_user_at_the_user_guards(api: Api) -> None:
    # Even with authgate's own audience, a token without sid passes no user guard.
    secret = await _service(api, audiences=("authgate",))
    response = await post_form(
        api.client, TOKEN, {"grant_type": "client_credentials"}, basic("billing", secret)
    )
    access = response.json()["access_token"]
    assert _claims(access)["aud"] == "authgate"
    for path in ("/secure", "/api/v1/me", "/secureWithFunction"):
        refused = await api.client.get(path, headers={"authorization": f"Bearer {access}"})
        assert refused.status_code == 401, path
        assert "invalid_token" in refused.headers["www-authenticate"]


async def test_a_registered_clients_tokens_carry_only_its_audiences(
    make_settings: Any, clock: Any
) -> None:
    from tests.conftest import start_api

    settings = make_settings(jwt_audience="orders,billing-api")
    async for api in start_api(settings, clock):
        default_tokens = await api.sign_up()
        assert _claims(default_tokens["accessToken"])["aud"] == ["orders", "billing-api"]
        secret = await _service(api, audiences=("billing-api",))
        response = await post_form(
            api.client, TOKEN, {"grant_type": "client_credentials"}, basic("billing", secret)
        )
        assert _claims(response.json()["access_token"])["aud"] == "billing-api"


@pytest.mark.parametrize(
    ("grant", "error"),
    [
        ("password", "unsupported_grant_type"),
        ("authorization_code", "unsupported_grant_type"),
        ("urn:ietf:params:oauth:grant-type:jwt-bearer", "unsupported_grant_type"),
    ],
    ids=["password", "authorization_code", "jwt_bearer"],
)
async def test_unsupported_grants(api: Api, grant: str, error: str) -> None:
    response = await post_form(
        api.client,
        TOKEN,
        {"grant_type": grant, "username": "cow@cow.jp", "password": "x", "client_id": "authgate"},
    )
    assert_oauth_error(response, 400, error)


async def test_client_authentication_failures_are_401_basic(api: Api) -> None:
    secret = await _service(api)
    cases = [
        ({"grant_type": "client_credentials"}, basic("billing", secret + "x")),
        ({"grant_type": "client_credentials"}, basic("nobody", secret)),
        ({"grant_type": "client_credentials", "client_id": "billing", "client_secret": "no"}, {}),
        # A confidential client without its secret.
        ({"grant_type": "client_credentials", "client_id": "billing"}, {}),
        # No client at all.
        ({"grant_type": "client_credentials"}, {}),
        ({"grant_type": "client_credentials"}, {"authorization": "Basic !!!"}),
        ({"grant_type": "client_credentials"}, {"authorization": f"Bearer {secret}"}),
        # The default client is public: a secret proves nothing.
        ({"grant_type": "refresh_token", "refresh_token": "x", "client_id": "authgate",
          "client_secret": "anything"}, {}),
    ]  # fmt: skip
    for form, headers in cases:
        response = await post_form(api.client, TOKEN, form, headers)
        assert_oauth_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"].startswith("Basic")


async def test_two_authentication_methods_at_once_are_invalid_request(api: Api) -> None:
    secret = await _service(api)
    response = await post_form(
        api.client,
        TOKEN,
        {"grant_type": "client_credentials", "client_id": "billing", "client_secret": secret},
        basic("billing", secret),
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_grant_not_allowed_for_the_client(api: Api) -> None:
    secret = await _service(api)  # client_credentials only
    tokens = await api.sign_up()
    response = await post_form(
        api.client,
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": tokens["refreshToken"]},
        basic("billing", secret),
    )
    assert_oauth_error(response, 400, "unauthorized_client")
    # The public default client may not use client_credentials.
    response = await post_form(
        api.client, TOKEN, {"grant_type": "client_credentials", "client_id": "authgate"}
    )
    assert_oauth_error(response, 400, "unauthorized_client")


async def test_a_refresh_token_is_refreshed_only_by_its_client(api: Api) -> None:
    tokens = await api.sign_up()
    secret = await _service(api, "mobile-ish", grant_types=("refresh_token",))
    other = await post_form(
        api.client,
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": tokens["refreshToken"]},
        basic("mobile-ish", secret),
    )
    assert_oauth_error(other, 400, "invalid_grant")
    # Refused without harm: the rightful client still refreshes, nothing was revoked.
    (session,) = await fetch_all(api.settings.effective_database_url, "sessions")
    assert session["revoked_at"] is None
    mine = await api.client.post("/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert mine.status_code == 200


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"grant_type": "client_credentials"}', "application/json"),
        ("grant_type=client_credentials&grant_type=refresh_token", None),
        ("grant_type=refresh_token&refresh_token=a&refresh_token=b&client_id=authgate", None),
        ("grant_type=client_credentials", "text/plain"),
        ("grant_type=%ff%fe&client_id=authgate", None),
        ("grant_type", None),
        ("client_id=authgate", None),
        ("grant_type=refresh_token&client_id=authgate", None),
        ("grant_type=refresh_token&refresh_token=&client_id=authgate", None),
        ("&".join(f"p{i}=1" for i in range(40)), None),
    ],
    ids=[
        "json_body",
        "repeated_grant_type",
        "repeated_refresh_token",
        "text_plain",
        "not_utf8",
        "no_equals",
        "no_grant_type",
        "no_refresh_token",
        "empty_refresh_token",
        "too_many_fields",
    ],
)
async def test_malformed_requests_are_invalid_request_and_write_nothing(
    api: Api, body: str, content_type: str | None
) -> None:
    before = await count_rows(api.settings.effective_database_url)
    response = await api.client.post(
        TOKEN,
        content=body.encode(),
        headers={"content-type": content_type or "application/x-www-form-urlencoded"},
    )
    assert_oauth_error(response, 400, "invalid_request")
    assert await count_rows(api.settings.effective_database_url) == before


async def test_unknown_refresh_token_is_invalid_grant(api: Api) -> None:
    response = await post_form(
        api.client,
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": "nope", "client_id": "authgate"},
    )
    assert_oauth_error(response, 400, "invalid_grant")
    long = await post_form(
        api.client,
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": "x" * 5000, "client_id": "authgate"},
    )
    assert_oauth_error(long, 400, "invalid_grant")


async def test_oauth_get_is_405_and_other_routes_still_want_json(api: Api) -> None:
    assert (await api.client.get(TOKEN)).status_code == 405
    response = await api.client.post(
        "/api/v1/refresh",
        content=b"refreshToken=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415


async def _sign_in(api: Api, **client: str) -> Any:
    return await api.client.post(
        "/api/v1/auth/credentials",
        json={"email": "cow@cow.jp", "password": "Moo00!_*&x", **client},
    )


async def test_a_public_clients_session_starts_at_sign_in_and_refreshes_only_there(
    api: Api,
) -> None:
    await api.sign_up()
    await register_client(
        api.settings.effective_database_url,
        api.clock,
        "mobile",
        audiences=("orders",),
        public=True,
    )
    response = await _sign_in(api, clientId="mobile")
    assert response.status_code == 200, response.text
    tokens = response.json()
    claims = _claims(tokens["accessToken"])
    assert claims["client_id"] == "mobile"
    assert claims["aud"] == "orders"
    # The default client's routes do not refresh it...
    v1 = await api.client.post("/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert v1.status_code == 401
    legacy = await api.client.post("/refreshToken", json={"refreshToken": tokens["refreshToken"]})
    assert legacy.status_code == 401
    as_default = await post_form(
        api.client,
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": tokens["refreshToken"],
         "client_id": "authgate"},
    )  # fmt: skip
    assert_oauth_error(as_default, 400, "invalid_grant")
    # ...its own client does, and the new token is the client's again.
    mine = await post_form(
        api.client,
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": tokens["refreshToken"],
         "client_id": "mobile"},
    )  # fmt: skip
    assert mine.status_code == 200, mine.text
    refreshed = _claims(mine.json()["access_token"])
    assert (refreshed["client_id"], refreshed["aud"]) == ("mobile", "orders")
    (session,) = [s for s in await fetch_all(api.settings.effective_database_url, "sessions")
                  if s["client_id"] == "mobile"]  # fmt: skip
    assert session["revoked_at"] is None


async def test_a_confidential_client_authenticates_at_sign_in(api: Api) -> None:
    await api.sign_up()
    secret = await _service(api, "web-backend", grant_types=("refresh_token",))
    before = await count_rows(api.settings.effective_database_url)
    wrong = await _sign_in(api, clientId="web-backend", clientSecret=secret + "x")
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "invalid_client"
    missing = await _sign_in(api, clientId="web-backend")
    assert missing.status_code == 401
    unknown = await _sign_in(api, clientId="nobody")
    assert unknown.status_code == 401
    assert await count_rows(api.settings.effective_database_url) == before
    right = await _sign_in(api, clientId="web-backend", clientSecret=secret)
    assert right.status_code == 200
    assert _claims(right.json()["accessToken"])["client_id"] == "web-backend"


async def test_a_client_without_refresh_tokens_cannot_start_user_sessions(api: Api) -> None:
    await api.sign_up()
    secret = await _service(api)  # client_credentials only
    before = await count_rows(api.settings.effective_database_url)
    response = await _sign_in(api, clientId="billing", clientSecret=secret)
    assert response.status_code == 400
    assert response.json()["code"] == "unauthorized_client"
    assert await count_rows(api.settings.effective_database_url) == before


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + "YmlsbGluZw==",  # "billing" without a colon
        "Basic " + "/w==",  # not UTF-8
        "Basic " + "YmlsbGluZzolZmY=",  # "billing:%ff": the secret decodes to no UTF-8
        "Basic",
    ],
    ids=["no_colon", "not_utf8", "percent_not_utf8", "empty"],
)
async def test_malformed_basic_credentials_are_invalid_client(api: Api, authorization: str) -> None:
    await _service(api)
    response = await post_form(
        api.client, TOKEN, {"grant_type": "client_credentials"}, {"authorization": authorization}
    )
    assert_oauth_error(response, 401, "invalid_client")


async def test_basic_credentials_are_form_urlencoded_first(api: Api) -> None:
    # RFC 6749 §2.3.1: the id and secret are form-urlencoded before Basic encoding;
    # our secrets are base64url, so only "-" and "_" appear, and may come escaped.
    secret = await _service(api, "svc.one")
    escaped = secret.replace("-", "%2D").replace("_", "%5F")
    response = await post_form(
        api.client, TOKEN, {"grant_type": "client_credentials"}, basic("svc%2Eone", escaped)
    )
    assert response.status_code == 200, response.text


async def test_basic_and_a_different_body_client_id_is_invalid_request(api: Api) -> None:
    secret = await _service(api)
    response = await post_form(
        api.client,
        TOKEN,
        {"grant_type": "client_credentials", "client_id": "someone-else"},
        basic("billing", secret),
    )
    assert_oauth_error(response, 400, "invalid_request")
    same = await post_form(
        api.client,
        TOKEN,
        {"grant_type": "client_credentials", "client_id": "billing"},
        basic("billing", secret),
    )
    assert same.status_code == 200


async def test_failed_client_authentication_is_throttled(make_settings: Any, clock: Any) -> None:
    from tests.conftest import start_api

    settings = make_settings(rate_limit_enabled=True, rate_limit_auth_per_ip="3/minute")
    async for api in start_api(settings, clock):
        secret = await _service(api)
        statuses = []
        for _ in range(5):
            response = await post_form(
                api.client, TOKEN, {"grant_type": "client_credentials"}, basic("billing", "x")
            )
            statuses.append(response.status_code)
        assert statuses[:3] == [401, 401, 401]
        assert statuses[-1] == 429
        assert "retry-after" in {name.lower() for name in response.headers}
        # Only failures count: the right secret still works (256 bits are not guessed).
        ok = await post_form(
            api.client, TOKEN, {"grant_type": "client_credentials"}, basic("billing", secret)
        )
        assert ok.status_code == 200
