"""OAuth 2.0 endpoints (form bodies, RFC 6749 §5 answers) and discovery metadata."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from authgate.errors import AuthError
from authgate.oauth.discovery import INTROSPECT_PATH, REVOKE_PATH, TOKEN_PATH
from authgate.web.deps import AppServices, Client
from authgate.web.oauth_forms import presented_client, read_form
from authgate.web.problems import OAUTH_NO_STORE, oauth_error_response

router = APIRouter(tags=["oauth"])

_TEXT = {"type": "string", "minLength": 1, "maxLength": 4096}
_CLIENT = {"client_id": _TEXT, "client_secret": _TEXT}


def _form(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """The OpenAPI body of a form route. Form bodies are read by hand (no
    python-multipart), so FastAPI cannot derive this; it documents them."""
    schema = {"type": "object", "properties": properties, "required": required}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": schema}},
        }
    }


_TOKEN_FORM = _form(
    {
        "grant_type": {"type": "string", "enum": ["refresh_token", "client_credentials"]},
        "refresh_token": _TEXT,
        "scope": _TEXT,
        **_CLIENT,
    },
    ["grant_type"],
)
_TOKEN_QUERY_FORM = _form(
    {
        "token": _TEXT,
        "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]},
        **_CLIENT,
    },
    ["token"],
)


async def _answer(call: Callable[[], Awaitable[dict[str, Any] | None]]) -> Response:
    try:
        payload = await call()
    except AuthError as exc:
        return oauth_error_response(exc)
    if payload is None:
        # RFC 7009 §2.2: 200 with an empty body, whatever became of the token.
        return Response(status_code=200, headers=OAUTH_NO_STORE)
    return JSONResponse(payload, headers=OAUTH_NO_STORE)


@router.post(TOKEN_PATH, openapi_extra=_TOKEN_FORM)
async def token(request: Request, services: AppServices, client: Client) -> Response:
    async def call() -> dict[str, Any]:
        form = await read_form(request)
        return await services.oauth.token(form, presented_client(request, form), client)

    return await _answer(call)


@router.post(REVOKE_PATH, openapi_extra=_TOKEN_QUERY_FORM)
async def revoke(request: Request, services: AppServices, client: Client) -> Response:
    async def call() -> None:
        form = await read_form(request)
        presented = presented_client(request, form)
        await services.oauth.revoke(
            form.get("token"), form.get("token_type_hint"), presented, client
        )

    return await _answer(call)


@router.post(INTROSPECT_PATH, openapi_extra=_TOKEN_QUERY_FORM)
async def introspect(request: Request, services: AppServices, client: Client) -> Response:
    async def call() -> dict[str, Any]:
        form = await read_form(request)
        presented = presented_client(request, form)
        return await services.oauth.introspect(
            form.get("token"), form.get("token_type_hint"), presented, client
        )

    return await _answer(call)


def _discovery(services: AppServices) -> Response:
    return Response(
        content=services.discovery_body,
        media_type="application/json",
        headers={"Cache-Control": f"public, max-age={services.settings.jwks_max_age_seconds}"},
    )


@router.get("/.well-known/oauth-authorization-server", response_class=Response)
async def authorization_server_metadata(services: AppServices) -> Response:
    return _discovery(services)


@router.get("/.well-known/openid-configuration", response_class=Response)
async def openid_configuration(services: AppServices) -> Response:
    # The same members (RFC 8414 §5): many middlewares only read this path.
    return _discovery(services)
