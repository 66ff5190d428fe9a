"""Sign-up and sign-in with email and password, on both seed APIs, on every database."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from authgate.bootstrap import Overrides
from authgate.clock import FrozenClock
from tests.conftest import Api, start_api
from tests.support.hashing import parameters_of, watched_hasher
from tests.support.rows import count_rows, fetch_all

SIGN_UP = "/api/v1/signup/credentials"
SIGN_IN = "/api/v1/auth/credentials"


def _body(email: str = "cow@cow.jp", password: str = "Moo00!_*&x", **extra: str) -> dict[str, str]:
    return {"email": email, "password": password, "passwordConfirm": password, **extra}


async def test_sign_up_returns_a_token_pair_that_a_resource_server_can_verify(api: Api) -> None:
    response = await api.client.post(SIGN_UP, json=_body(firstName="Melvin", lastName="Friedman"))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"accessToken", "refreshToken", "tokenType", "expiresIn"}
    assert body["tokenType"] == "Bearer"
    assert body["expiresIn"] == 900
    assert len(body["refreshToken"]) >= 43  # 256 bits, base64url
    # Compact JSON in the seeds' field order, as FastAPI serialized it: clients
    # (and bench/lua/refresh.lua) that pick fields out with a pattern keep working.
    assert (
        response.content
        == (
            f'{{"accessToken":"{body["accessToken"]}","refreshToken":"{body["refreshToken"]}",'
            '"tokenType":"Bearer","expiresIn":900}'
        ).encode()
    )

    # A resource server needs nothing but the JWKS document.
    jwks = (await api.client.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(body["accessToken"])
    assert header["typ"] == "at+jwt"
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(
        body["accessToken"],
        key,
        algorithms=["RS256"],
        audience="authgate",
        issuer="http://127.0.0.1:3000",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == claims["userId"]
    assert claims["given_name"] == "Melvin"
    assert claims["family_name"] == "Friedman"
    assert claims["name"] == "Melvin Friedman"
    assert claims["email"] == "cow@cow.jp"
    assert claims["exp"] - claims["iat"] == 900
    assert {"jti", "sid"} <= set(claims)


async def test_emails_differing_in_case_or_domain_width_are_one_account(api: Api) -> None:
    await api.sign_up("Cow@Cow.jp")
    before = await count_rows(api.settings.effective_database_url)
    # The domain is IDNA-mapped (fullwidth letters are the same name in DNS); the
    # local part is only lowered.
    for variant in ("cow@cow.jp", "COW@COW.JP", "cow@\uff43\uff4f\uff57.jp"):
        response = await api.client.post(SIGN_UP, json=_body(variant))
        assert response.status_code == 409, variant
        assert response.json()["code"] == "email_taken"
    assert await count_rows(api.settings.effective_database_url) == before


async def test_local_parts_are_lowered_never_folded(api: Api) -> None:
    # Different mailboxes to a mail server: "ß" is not "ss", "\ufb00" is not "ff",
    # fullwidth "\uff43\uff4f\uff57" is not "cow". Each gets its own account.
    for email in (
        "strasse@example.com",
        "Stra\u00dfe@example.com",
        "ff@example.com",
        "\ufb00@example.com",
        "cow@example.com",
        "\uff43\uff4f\uff57@example.com",
    ):
        await api.sign_up(email)
    assert (await count_rows(api.settings.effective_database_url))["users"] == 6
    taken = await api.client.post(SIGN_UP, json=_body("STRA\u00dfE@example.com"))
    assert taken.status_code == 409  # upper case still finds the same mailbox


async def test_accented_and_plain_emails_are_distinct_on_every_database(api: Api) -> None:
    # MariaDB's default collation would call these equal; our key column is binary.
    await api.sign_up("cafe@example.com")
    await api.sign_up("caf\u00e9@example.com")
    assert (await count_rows(api.settings.effective_database_url))["users"] == 2


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (_body(password="short"), 422, "weak_password"),
        (_body(password="x" * 1025), 422, "validation_failed"),
        ({**_body(), "passwordConfirm": "different!"}, 422, "invalid_input"),
        (_body(email="not-an-email"), 422, "invalid_input"),
        (_body(email="a@" + "b" * 400 + ".com"), 422, "validation_failed"),
        (_body(email="a@" + "b" * 260 + ".com"), 422, "invalid_input"),
        ({"email": 123, "password": "Moo00!_*&x"}, 422, "validation_failed"),
        ({"password": "Moo00!_*&x"}, 422, "validation_failed"),
        (_body(firstName="Mel\x00vin"), 422, "invalid_input"),
        (_body(firstName="Melvin\n"), 422, "invalid_input"),  # refused, not trimmed away
        (_body(lastName="Fried\x85man"), 422, "invalid_input"),  # C1 control
        (_body(lastName="\u202enamdeirF"), 422, "invalid_input"),  # bidi override
        (_body(lastName="x" * 101), 422, "validation_failed"),
    ],
)
async def test_refused_sign_ups_write_nothing(
    api: Api, body: dict[str, object], status: int, code: str
) -> None:
    response = await api.client.post(SIGN_UP, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert {"type", "title", "status", "detail"} <= set(problem)
    assert "Moo00" not in response.text  # never echo a password back
    assert all(n == 0 for n in (await count_rows(api.settings.effective_database_url)).values())


async def test_a_key_longer_than_its_address_still_fits_on_every_database(api: Api) -> None:
    # 64 "İ" lower to 128 code points: the address is 189 characters, its key 253,
    # within MariaDB's VARCHAR(254) as on SQLite. (NFKC + casefold made such keys
    # longer than the column; the key no longer expands compatibility characters.)
    domain = "a" * 60 + "." + "b" * 60 + ".jp"
    await api.sign_up("\u0130" * 64 + "@" + domain)
    again = await api.client.post(SIGN_UP, json=_body("\u0130" * 64 + "@" + domain.upper()))
    assert again.status_code == 409


async def test_password_length_counts_characters_not_bytes(api: Api) -> None:
    accented = "\u00e9\u00e0\u00e8\u00f9\u00e2\u00ea\u00ee\u00f4"  # 8 characters, 16 bytes
    assert (await api.client.post(SIGN_UP, json=_body(password=accented))).status_code == 200
    response = await api.client.post(SIGN_UP, json=_body("b@cow.jp", password="\U0001f600" * 7))
    assert response.status_code == 422


async def test_the_whole_password_counts(api: Api) -> None:
    import secrets

    stem = secrets.token_urlsafe(800)[:1000]
    long_password = stem + "A"
    await api.sign_up(password=long_password)
    wrong_tail = stem + "B"
    response = await api.client.post(SIGN_IN, json={"email": "cow@cow.jp", "password": wrong_tail})
    assert response.status_code == 401
    response = await api.client.post(
        SIGN_IN, json={"email": "cow@cow.jp", "password": long_password}
    )
    assert response.status_code == 200


async def test_malformed_json_is_a_400_problem(api: Api) -> None:
    response = await api.client.post(
        SIGN_UP, content=b'{"email": "a@b.c",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


async def test_sign_in_by_email_in_any_case(api: Api) -> None:
    await api.sign_up("cow@cow.jp")
    response = await api.client.post(
        SIGN_IN, json={"email": "  COW@Cow.JP ", "password": "Moo00!_*&x"}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


async def test_unknown_email_and_wrong_password_get_the_same_answer(api: Api) -> None:
    await api.sign_up("cow@cow.jp")
    before = await count_rows(api.settings.effective_database_url)
    wrong = await api.client.post(SIGN_IN, json={"email": "cow@cow.jp", "password": "wrong-pass"})
    unknown = await api.client.post(
        SIGN_IN, json={"email": "horse@cow.jp", "password": "Moo00!_*&x"}
    )
    invalid = await api.client.post(SIGN_IN, json={"email": "nonsense", "password": "x"})
    for response in (wrong, unknown, invalid):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert wrong.json() == unknown.json() == invalid.json()
    assert await count_rows(api.settings.effective_database_url) == before


async def test_serverless_register_and_login(api: Api) -> None:
    response = await api.client.post(
        "/register",
        json={"email": "seed@cow.jp", "password": "Moo00!_*&x", "displayName": "Seed User"},
    )
    assert response.status_code == 200
    claims = jwt.decode(response.json()["accessToken"], options={"verify_signature": False})
    assert claims["name"] == "Seed User"
    response = await api.client.post(
        "/login", json={"email": "seed@cow.jp", "password": "Moo00!_*&x"}
    )
    assert response.status_code == 200
    assert set(response.json()) == {"accessToken", "refreshToken", "tokenType", "expiresIn"}
    duplicate = await api.client.post(
        "/register", json={"email": "SEED@cow.jp", "password": "Moo00!_*&x"}
    )
    assert duplicate.status_code == 409


async def test_serverless_register_accepts_the_v1_body(api: Api) -> None:
    response = await api.client.post(
        "/register", json=_body("v1@cow.jp", firstName="Melvin", lastName="Friedman")
    )
    assert response.status_code == 200
    claims = jwt.decode(response.json()["accessToken"], options={"verify_signature": False})
    assert (claims["given_name"], claims["family_name"]) == ("Melvin", "Friedman")


async def test_me_returns_the_account(api: Api) -> None:
    tokens = await api.sign_up("me@cow.jp")
    response = await api.client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == "me@cow.jp"
    assert (body["firstName"], body["lastName"]) == ("Melvin", "Friedman")
    assert response.headers["cache-control"] == "no-store"


async def test_only_a_hash_of_the_password_is_stored(api: Api) -> None:
    await api.sign_up("hash@cow.jp", password="Moo00!_*&x")
    (user,) = await fetch_all(api.settings.effective_database_url, "users")
    assert user["password_hash"].startswith("$argon2id$")
    assert "Moo00" not in user["password_hash"]


async def test_oversized_bodies_are_413_with_or_without_content_length(api: Api) -> None:
    declared = await api.client.post(
        SIGN_UP,
        content=b"{" + b" " * 70_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert declared.status_code == 413

    assert declared.headers["x-content-type-options"] == "nosniff"
    sent = 0

    async def chunks() -> Any:
        nonlocal sent
        for _ in range(200):
            sent += 1
            yield b" " * 8192

    streamed = await api.client.post(
        SIGN_UP, content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413
    assert streamed.json()["code"] == "body_too_large"
    assert streamed.headers["x-content-type-options"] == "nosniff"
    # Reading stopped once the count passed 64 KiB (8 chunks), not after 1.6 MB.
    assert sent < 20
    assert all(n == 0 for n in (await count_rows(api.settings.effective_database_url)).values())


async def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    missing = await api.client.get("/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong_method = await api.client.get(SIGN_UP)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"
    assert wrong_method.headers["x-content-type-options"] == "nosniff"


async def test_an_unexpected_error_is_a_bare_500_problem_with_the_security_headers(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api.services.accounts, "sign_in", broken)
    response = await api.client.post(
        "/api/v1/auth/credentials", json={"email": "cow@cow.jp", "password": "Moo00!_*&x"}
    )
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "secret internals" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


async def test_an_over_long_password_at_sign_in_is_refused_before_any_hashing(
    make_settings: Any, clock: FrozenClock
) -> None:
    settings = make_settings()
    with watched_hasher(parameters_of(settings)) as (hasher, jobs):
        async for api in start_api(settings, clock, Overrides(hasher=hasher)):
            await api.sign_up("cow@cow.jp", "Moo00!_*&x")
            jobs.jobs.clear()
            response = await api.client.post(
                "/api/v1/auth/credentials", json={"email": "cow@cow.jp", "password": "x" * 1025}
            )
            assert response.status_code == 422
            assert response.json()["code"] == "validation_failed"
            assert jobs.jobs == []
            # The hasher does see a normal attempt, so the empty list above means something.
            await api.client.post(
                "/api/v1/auth/credentials", json={"email": "cow@cow.jp", "password": "x" * 1024}
            )
            assert len(jobs.verified) == 1
