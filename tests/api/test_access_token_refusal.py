"""Every protected route refuses every kind of bad access token with a 401 challenge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import Api
from tests.support.tokens import hs256_token, unsigned_token, unverified_parts

PROTECTED = [
    ("GET", "/secure"),
    ("POST", "/secure"),
    ("GET", "/secureWithFunction"),
    ("POST", "/secureWithFunction"),
    ("GET", "/secureWithFuction"),
    ("POST", "/secureWithFuction"),
    ("GET", "/api/v1/me"),
]


async def _call(api: Api, method: str, path: str, token: str | None, **headers: str) -> Any:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await api.client.request(method, path, headers=headers)


def _assert_refused(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_token"


def _resign(token: str, key: Any, *, algorithm: str = "RS256", **changes: Any) -> str:
    header, claims = unverified_parts(token)
    claims.update(changes)
    return jwt.encode(
        claims, key, algorithm=algorithm, headers={"kid": header["kid"], "typ": "at+jwt"}
    )


def _private_key(key_pair: tuple[Path, Path]) -> Any:
    return serialization.load_pem_private_key(key_pair[0].read_bytes(), None)


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_a_valid_token_is_accepted(api: Api, method: str, path: str) -> None:
    tokens = await api.sign_up()
    response = await _call(api, method, path, tokens["accessToken"])
    assert response.status_code == 200
    claims = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
    assert response.json()["userId"] == claims["sub"]
    # Personal data: never cached by a browser or a proxy.
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_missing_and_malformed_authorization(api: Api, method: str, path: str) -> None:
    _assert_refused(await _call(api, method, path, None))
    for header in ("Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not.a.jwt", "Bearer ..."):
        _assert_refused(await _call(api, method, path, None, Authorization=header))


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_forged_tokens(api: Api, key_pair: tuple[Path, Path], method: str, path: str) -> None:
    token = (await api.sign_up())["accessToken"]
    header, claims = unverified_parts(token)
    attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key_pair[1].read_bytes()
    forgeries = {
        "tampered payload": token.split(".")[0]
        + "."
        + _resign(token, attacker_key, sub="someone-else").split(".")[1]
        + "."
        + token.split(".")[2],
        "other key, our kid": _resign(token, attacker_key),
        "alg none": unsigned_token({"alg": "none", "kid": header["kid"], "typ": "at+jwt"}, claims),
        "HS256 with our public key": hs256_token(
            {"alg": "HS256", "kid": header["kid"], "typ": "at+jwt"}, claims, public_pem
        ),
        "truncated signature": token[:-10],
    }
    for name, forged in forgeries.items():
        response = await _call(api, method, path, forged)
        assert response.status_code == 401, name
        _assert_refused(response)


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_wrong_claims_signed_with_our_own_key(
    api: Api, key_pair: tuple[Path, Path], method: str, path: str
) -> None:
    token = (await api.sign_up())["accessToken"]
    key = _private_key(key_pair)
    _header, claims = unverified_parts(token)
    cases = {
        "issuer": _resign(token, key, iss="https://evil.example"),
        "audience": _resign(token, key, aud="another-service"),
        "audience list without ours": _resign(token, key, aud=["a", "b"]),
        "expired": _resign(token, key, exp=claims["iat"] - 1),
        "no exp": jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"},
            key,
            algorithm="RS256",
            headers={"kid": _header["kid"], "typ": "at+jwt"},
        ),
        "not an access token (typ JWT)": jwt.encode(
            claims, key, algorithm="RS256", headers={"kid": _header["kid"], "typ": "JWT"}
        ),
    }
    for name, forged in cases.items():
        response = await _call(api, method, path, forged)
        assert response.status_code == 401, name


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_the_guard_makes_every_check_of_the_verifier_kit(
    api: Api, key_pair: tuple[Path, Path], method: str, path: str
) -> None:
    # Signed with our own key, right claims: refused for what the header says, by the
    # checks of authgate.resource.TokenVerifier (the guard's one implementation). The
    # former server-only verifier let each of these through.
    token = (await api.sign_up())["accessToken"]
    key = _private_key(key_pair)
    header, claims = unverified_parts(token)
    base = {"kid": header["kid"], "typ": "at+jwt"}
    headers = {
        "crit": {**base, "crit": ["exp"]},  # RFC 7515 §4.1.11: no extension understood
        "jku": {**base, "jku": "https://evil.example/jwks.json"},  # RFC 8725 §3.10
        "x5u": {**base, "x5u": "https://evil.example/cert.pem"},
    }
    for name, extra in headers.items():
        forged = jwt.encode(claims, key, algorithm="RS256", headers=extra)
        _assert_refused(await _call(api, method, path, forged))
        assert name


async def test_expiry_follows_the_clock(api: Api) -> None:
    token = (await api.sign_up())["accessToken"]
    api.clock.advance(899)
    assert (await _call(api, "GET", "/secure", token)).status_code == 200
    api.clock.advance(1)
    _assert_refused(await _call(api, "GET", "/secure", token))


async def test_manual_check_accepts_the_serverless_seeds_bearer_header(api: Api) -> None:
    token = (await api.sign_up())["accessToken"]
    response = await api.client.get("/secureWithFuction", headers={"bearer": token})
    assert response.status_code == 200
    # ...but the declarative guard takes only the standard Authorization header.
    _assert_refused(await api.client.get("/secure", headers={"bearer": token}))


async def test_a_token_for_a_deleted_account_cannot_read_me(api: Api) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    token = (await api.sign_up())["accessToken"]
    engine = create_async_engine(api.settings.effective_database_url)
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM refresh_tokens"))
        await connection.execute(text("DELETE FROM sessions"))
        await connection.execute(text("DELETE FROM users"))
    await engine.dispose()
    response = await _call(api, "GET", "/api/v1/me", token)
    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"
