"""Hostile request shapes get a clear 4xx problem and change nothing."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.support.rows import count_rows

SIGN_UP = "/api/v1/signup/credentials"
JSON = {"content-type": "application/json"}


async def _assert_nothing_written(api: Api) -> None:
    counts = await count_rows(api.settings.effective_database_url)
    assert all(n == 0 for n in counts.values()), counts


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]
)
async def test_a_body_that_is_not_declared_json_is_415(api: Api, content_type: str) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await api.client.post(
        SIGN_UP, content=b'{"email":"a@cow.jp","password":"Moo00!_*&x"}', headers=headers
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unsupported_media_type"
    await _assert_nothing_written(api)


async def test_json_with_charset_and_suffix_types_are_accepted(api: Api) -> None:
    for index, content_type in enumerate(
        ["application/json; charset=utf-8", "application/merge-patch+json"]
    ):
        response = await api.client.post(
            SIGN_UP,
            content=f'{{"email":"c{index}@cow.jp","password":"Moo00!_*&x"}}'.encode(),
            headers={"content-type": content_type},
        )
        assert response.status_code == 200, content_type


async def test_duplicate_keys_are_400(api: Api) -> None:
    body = b'{"email":"a@cow.jp","password":"Moo00!_*&x","email":"victim@cow.jp"}'
    response = await api.client.post(SIGN_UP, content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json()["code"] == "duplicate_key"
    await _assert_nothing_written(api)


@pytest.mark.parametrize("depth", [33, 5_000, 30_000])
async def test_deeply_nested_json_is_400(api: Api, depth: int) -> None:
    body = b'{"email":' + b"[" * depth + b"]" * depth + b"}"
    response = await api.client.post(SIGN_UP, content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json()["code"] == "too_deep"


@pytest.mark.parametrize("body", [b"{", b"\xff\xfe", b'{"a": NaN', b"[1,]"])
async def test_invalid_json_is_400(api: Api, body: bytes) -> None:
    response = await api.client.post(SIGN_UP, content=body, headers=JSON)
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


async def test_bodyless_posts_still_reach_the_route(api: Api) -> None:
    token = (await api.sign_up())["accessToken"]
    response = await api.client.post("/secure", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    missing = await api.client.post("/api/v1/refresh")
    assert missing.status_code == 422
