"""Register OAuth clients in a test's database and talk to /oauth/* as a client would."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from sqlalchemy.engine import URL

from authgate.clock import Clock
from authgate.domain.models import OAuthClient
from authgate.oauth.clients import ClientRegistry, default_client
from authgate.storage.engine import create_engine
from authgate.storage.unit_of_work import SqlUnitOfWorkFactory

FORM = {"content-type": "application/x-www-form-urlencoded"}


async def register_client(
    url: URL,
    clock: Clock,
    client_id: str,
    *,
    audiences: tuple[str, ...],
    grant_types: tuple[str, ...] = (),
    public: bool = False,
    may_introspect: bool = False,
) -> tuple[OAuthClient, str | None]:
    """Through the same service as ``authgate clients create``."""
    engine = create_engine(url, pool_size=1)
    try:
        registry = ClientRegistry(
            uow=SqlUnitOfWorkFactory(engine),
            clock=clock,
            default=default_client("authgate", ("authgate",)),
        )
        return await registry.create(
            client_id,
            audiences=audiences,
            grant_types=grant_types,
            public=public,
            may_introspect=may_introspect,
        )
    finally:
        await engine.dispose()


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


async def post_form(
    client: httpx.AsyncClient,
    path: str,
    data: dict[str, str],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(path, data=data, headers={**FORM, **(headers or {})})


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    return body
