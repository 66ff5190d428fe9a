"""Shared by the AWS tests: AWS's documented event shapes, filled in, and tokens from
a real authgate (the app in-process, on a real database)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from authgate.clock import SystemClock
from authgate.config import Settings
from authgate.web.app import create_app
from tests.support.oauth import basic, post_form, register_client

EVENTS = Path(__file__).parent / "events"
ISSUER = "https://auth.example.test"
PASSWORD = "Moo00!_*&x"


def event(name: str, **values: str) -> dict[str, Any]:
    """The sample event ``events/{name}.json`` with each ``{key}`` replaced by its value."""
    text = (EVENTS / f"{name}.json").read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@dataclass(frozen=True)
class IssuedTokens:
    """What a real authgate handed out, and the JWKS it publishes."""

    user_token: str
    user_id: str
    service_token: str
    jwks: dict[str, Any]


async def _issue(settings: Settings) -> IssuedTokens:
    clock = SystemClock()  # the authorizer checks times against the real clock
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://authgate.test") as c:
            signup = await c.post(
                "/api/v1/signup/credentials",
                json={"email": "cow@cow.jp", "password": PASSWORD, "firstName": "Melvin"},
            )
            assert signup.status_code == 200, signup.text
            token = signup.json()["accessToken"]
            me = await c.get("/api/v1/me", headers={"authorization": f"Bearer {token}"})
            _, secret = await register_client(
                settings.effective_database_url, clock, "billing", audiences=("authgate",)
            )
            assert secret is not None
            service = await post_form(
                c, "/oauth/token", {"grant_type": "client_credentials"}, basic("billing", secret)
            )
            assert service.status_code == 200, service.text
            jwks = await c.get("/.well-known/jwks.json")
            return IssuedTokens(
                user_token=token,
                user_id=me.json()["userId"],
                service_token=service.json()["access_token"],
                jwks=jwks.json(),
            )


def issue_tokens(settings: Settings) -> IssuedTokens:
    return asyncio.run(_issue(settings))


def http_event(
    kind: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A request as API Gateway (REST ``api_gateway_v1``, HTTP API ``http_api_v2``), a
    function URL (``function_url``) or an ALB (``alb``) hands it to the function."""
    sample = event(kind)
    text = "" if body is None else json.dumps(body)
    extra = headers or {}
    sample["body"] = text or None
    if kind == "api_gateway_v1":
        sample.update(httpMethod=method, path=path, resource=path)
        sample["headers"].update(extra)
        sample["multiValueHeaders"].update({k: [v] for k, v in extra.items()})
        context = sample["requestContext"]
        context.update(httpMethod=method, resourcePath=path, path=f"/dev{path}")
    elif kind in ("http_api_v2", "function_url"):
        sample["rawPath"] = path
        sample["requestContext"]["http"].update(method=method, path=path)
        sample["headers"].update({k.lower(): v for k, v in extra.items()})
    elif kind == "alb":
        sample.update(httpMethod=method, path=path)
        sample["headers"].update({k.lower(): v for k, v in extra.items()})
    else:  # pragma: no cover - a typo in a test
        raise ValueError(kind)
    return sample


@dataclass(frozen=True)
class Answer:
    """A Lambda proxy response, read back."""

    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)

    @classmethod
    def of(cls, response: dict[str, Any]) -> Answer:
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name.lower()] = ", ".join(values)
        body = response.get("body") or ""
        if response.get("isBase64Encoded"):
            import base64

            body = base64.b64decode(body).decode()
        return cls(int(response["statusCode"]), headers, body)
