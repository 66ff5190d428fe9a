"""The ``iss`` of issued tokens: JWT_ISSUER, else PUBLIC_URL, else http://HOST:PORT."""

from __future__ import annotations

from typing import Any

import jwt

from tests.conftest import start_api


def _issuer(tokens: dict[str, Any]) -> str:
    claims = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
    issuer: str = claims["iss"]
    return issuer


async def test_the_issuer_follows_port_unless_jwt_issuer_is_set(
    make_settings: Any, clock: Any
) -> None:
    async for api in start_api(make_settings(port=4123), clock):
        assert _issuer(await api.sign_up("a@cow.jp")) == "http://127.0.0.1:4123"
    public = make_settings(port=4123, public_url="https://auth.example.test")
    async for api in start_api(public, clock):
        assert _issuer(await api.sign_up("b@cow.jp")) == "https://auth.example.test"
    explicit = make_settings(
        port=4123, public_url="https://auth.example.test", jwt_issuer="https://iss.example.test"
    )
    async for api in start_api(explicit, clock):
        tokens = await api.sign_up("c@cow.jp")
        assert _issuer(tokens) == "https://iss.example.test"
        me = await api.client.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"}
        )
        assert me.status_code == 200
