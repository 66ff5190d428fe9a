"""JSON bodies must be UTF-8 without a BOM; password length counts what was typed."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Api
from tests.support.rows import count_rows

SIGN_UP = "/api/v1/signup/credentials"
SIGN_UP_BODY = {
    "email": "cow@cow.jp",
    "password": "Moo00!_*&x",
    "passwordConfirm": "Moo00!_*&x",
    "firstName": "Melvin",
    "lastName": "Friedman",
}


async def _assert_nothing_written(api: Api) -> None:
    counts = await count_rows(api.settings.effective_database_url, include_audit=True)
    assert all(n == 0 for n in counts.values()), counts


ENCODINGS = {
    "utf-16-le": b"",
    "utf-16-le with BOM": b"\xff\xfe",
    "utf-16-be": b"",
    "utf-16-be with BOM": b"\xfe\xff",
    "utf-32-le": b"",
    "utf-8 with BOM": b"\xef\xbb\xbf",
}


def _encoded(name: str) -> bytes:
    text = json.dumps(SIGN_UP_BODY)
    codec = name.split(" ")[0]
    return ENCODINGS[name] + text.encode(codec)


@pytest.mark.parametrize("name", list(ENCODINGS))
async def test_json_that_is_not_plain_utf8_is_400(api: Api, name: str) -> None:
    body = _encoded(name)
    # Python's own json.loads reads every one of these as the sign-up it encodes.
    assert json.loads(body) == SIGN_UP_BODY
    for path in (SIGN_UP, "/api/v1/revoke", "/api/v1/auth/credentials"):
        response = await api.client.post(
            path, content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "malformed_json"
        assert "UTF-8" in response.json()["detail"]
    await _assert_nothing_written(api)


async def test_plain_utf8_with_non_ascii_is_still_accepted(api: Api) -> None:
    body = {
        **SIGN_UP_BODY,
        "firstName": "M\u00e9lvin \u00e6\u00f8\u00e5",
        "lastName": "\u7530\u4e2d",
    }
    response = await api.client.post(
        SIGN_UP,
        content=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("password", ["\ufdfa", "\ufdfa" * 3, "\u2163\u2163\u2163"])
async def test_a_password_that_nfkc_lengthens_is_refused(api: Api, password: str) -> None:
    body = {**SIGN_UP_BODY, "password": password, "passwordConfirm": password}
    response = await api.client.post(SIGN_UP, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "weak_password"
    counts = await count_rows(api.settings.effective_database_url)
    assert counts["users"] == 0
