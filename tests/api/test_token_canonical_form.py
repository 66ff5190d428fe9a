"""Each access token has one byte form: its twins are refused at every protected route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from authgate.clock import FrozenClock
from authgate.crypto.keys import write_key_pair
from tests.conftest import Api, start_api
from tests.support.tokens import high_s_twin, variants

ROUTES = [("GET", "/secure"), ("POST", "/secure"), ("GET", "/api/v1/me")]


@pytest.fixture(scope="module")
def es256_key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_key_pair(tmp_path_factory.mktemp("es256"), "ES256")


@pytest.fixture
async def es256_api(
    make_settings: Any, clock: FrozenClock, es256_key_pair: tuple[Path, Path]
) -> AsyncIterator[Api]:
    settings = make_settings(
        jwt_private_key_path=es256_key_pair[0],
        jwt_public_key_path=es256_key_pair[1],
        jwt_algorithm="ES256",
    )
    async for value in start_api(settings, clock):
        yield value


async def _status(api: Api, method: str, path: str, authorization: str) -> int:
    response = await api.client.request(
        method, path, headers={b"Authorization": authorization.encode("latin-1")}
    )
    if response.status_code == 401:
        assert response.json()["code"] == "invalid_token"
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
    return response.status_code


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_non_canonical_spellings_are_refused(es256_api: Api, method: str, path: str) -> None:
    token = (await es256_api.sign_up())["accessToken"]
    # The genuine token first, so every twin below would be a cache hit if the
    # cache were consulted before the form is checked.
    assert await _status(es256_api, method, path, f"Bearer {token}") == 200
    # Spaces between "Bearer" and the token are RFC 6750's 1*SP: still the same token.
    assert await _status(es256_api, method, path, f"Bearer   {token}") == 200
    # Leading and trailing SP/HTAB are not part of an HTTP field value (RFC 9110
    # §5.5): a real server's parser drops them before we see the header.
    around = {"leading space", "trailing space", "trailing tab", "trailing newline"}
    twins = {
        **{name: v for name, v in variants(token).items() if name not in around},
        "high-s twin": high_s_twin(token),
        "tab before the token": "\t" + token,
    }
    for name, twin in twins.items():
        assert await _status(es256_api, method, path, f"Bearer {twin}") == 401, name


async def test_a_high_s_token_was_accepted_by_a_plain_verifier(es256_api: Api) -> None:
    """Guards the test above: the twin is a genuine signature, not garbage."""
    import jwt

    token = (await es256_api.sign_up())["accessToken"]
    public = jwt.PyJWK((await es256_api.client.get("/.well-known/jwks.json")).json()["keys"][0]).key
    decoded = jwt.decode(
        high_s_twin(token),
        public,
        algorithms=["ES256"],
        audience="authgate",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert decoded["email"] == "cow@cow.jp"
