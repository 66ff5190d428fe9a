"""The FastAPI dependency and the ASGI middleware, in apps that know nothing of authgate.

The apps here install no exception handler: every 401/403/503 is answered by the
adapters themselves (FastAPI's built-in HTTPException answer, or the middleware).
"""

# No ``from __future__ import annotations``: the routes below are defined inside a
# function, and FastAPI must see their Annotated aliases as objects, not names.

from collections.abc import AsyncIterator, MutableMapping
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from authgate.resource import (
    BearerTokenMiddleware,
    Claims,
    JwksKeys,
    StaticKeys,
    TokenVerifier,
    require_token,
)
from tests.resource.support import (
    AUDIENCE,
    ISSUER,
    Clock,
    claims,
    forge_payload,
    jwks,
    mint,
    rsa_key,
)

KEY = rsa_key()
INVALID = 'Bearer error="invalid_token"'


def make_verifier() -> TokenVerifier:
    return TokenVerifier(
        StaticKeys.from_jwks(jwks(KEY)), issuer=ISSUER, audience=AUDIENCE, now=Clock()
    )


def fastapi_app(verifier: TokenVerifier) -> FastAPI:
    user = Annotated[Claims, Depends(require_token(verifier))]
    writer = Annotated[Claims, Depends(require_token(verifier, scopes=["orders:write"]))]
    billing = Annotated[Claims, Depends(require_token(verifier, audience="billing"))]
    app = FastAPI()

    @app.get("/orders")
    async def orders(claims: user) -> dict[str, Any]:
        return {"sub": claims.sub, "sid": claims.sid}

    @app.post("/orders")
    async def create(claims: writer) -> dict[str, Any]:
        return {"sub": claims.sub}

    @app.get("/invoices")
    async def invoices(claims: billing) -> dict[str, Any]:
        return {"sub": claims.sub}

    return app


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fastapi_app(make_verifier()))
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_valid_token_reaches_the_route(api: httpx.AsyncClient) -> None:
    payload = claims()
    response = await api.get("/orders", headers=bearer(mint(KEY, payload)))
    assert response.status_code == 200
    assert response.json() == {"sub": payload["sub"], "sid": payload["sid"]}
    lower = await api.get("/orders", headers={"Authorization": f"bearer {mint(KEY)}"})
    assert lower.status_code == 200  # the scheme is case-insensitive


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic Y293OmNvdw=="},
        {"Authorization": "Bearer a b"},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": 'Bearer "quoted"'},
        {"Authorization": "Token eyJ.eyJ.sig"},
    ],
)
async def test_missing_or_garbled_headers_get_401_with_the_challenge(
    api: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await api.get("/orders", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID
    assert response.json() == {"detail": "invalid_token"}


async def test_two_authorization_headers_are_refused(api: httpx.AsyncClient) -> None:
    token = mint(KEY)
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    response = await api.get("/orders", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID


async def test_a_forged_token_gets_the_same_answer_without_the_reason(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/orders", headers=bearer(forge_payload(mint(KEY), sub="admin")))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID
    assert "signature" not in response.text


async def test_a_missing_scope_is_403_insufficient_scope(api: httpx.AsyncClient) -> None:
    reader = mint(KEY, claims(scope="orders:read"))
    response = await api.post("/orders", headers=bearer(reader))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="orders:write"'
    )
    writer = mint(KEY, claims(scope="orders:read orders:write"))
    assert (await api.post("/orders", headers=bearer(writer))).status_code == 200


async def test_a_route_can_require_its_own_audience(api: httpx.AsyncClient) -> None:
    assert (await api.get("/invoices", headers=bearer(mint(KEY)))).status_code == 401
    billing = mint(KEY, claims(aud=["billing"]))
    assert (await api.get("/invoices", headers=bearer(billing))).status_code == 200
    assert (await api.get("/orders", headers=bearer(billing))).status_code == 401


async def test_unreachable_keys_are_503_not_401() -> None:
    verifier = TokenVerifier(
        JwksKeys("http://127.0.0.1:9/jwks.json", timeout_seconds=1),
        issuer=ISSUER,
        audience=AUDIENCE,
    )
    transport = httpx.ASGITransport(app=fastapi_app(verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
        response = await client.get("/orders", headers=bearer(mint(KEY)))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


def test_the_openapi_document_declares_the_bearer_scheme() -> None:
    schema = fastapi_app(make_verifier()).openapi()
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert schema["paths"]["/orders"]["get"]["security"] == [{"bearer": []}]


def test_introspect_needs_an_introspection_client() -> None:
    with pytest.raises(ValueError, match="introspection"):
        require_token(make_verifier(), introspect=True)
    with pytest.raises(ValueError, match="introspection"):
        BearerTokenMiddleware(Starlette(), verifier=make_verifier(), introspect=True)


# The middleware, around a plain Starlette app.


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.state.claims.sub})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"sub": websocket.state.claims.sub})
    await websocket.close()


def starlette_app(**options: Any) -> Starlette:
    app = Starlette(
        routes=[
            Route("/whoami", whoami),
            Route("/healthz", healthz),
            WebSocketRoute("/ws", socket),
        ]
    )
    app.add_middleware(
        BearerTokenMiddleware, verifier=make_verifier(), public_paths={"/healthz"}, **options
    )
    return app


@pytest.fixture
async def guarded() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=starlette_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
        yield client


async def test_middleware_lets_valid_tokens_through_with_the_claims(
    guarded: httpx.AsyncClient,
) -> None:
    payload = claims()
    response = await guarded.get("/whoami", headers=bearer(mint(KEY, payload)))
    assert response.status_code == 200
    assert response.json() == {"sub": payload["sub"]}
    assert (await guarded.get("/healthz")).status_code == 200  # a public path


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("Authorization", "Basic Y293OmNvdw==")],
        [("Authorization", "Bearer x.y.z")],
        [("Authorization", f"Bearer {mint(KEY)}"), ("Authorization", f"Bearer {mint(KEY)}")],
    ],
)
async def test_middleware_refuses_with_401_and_the_challenge(
    guarded: httpx.AsyncClient, headers: list[tuple[str, str]]
) -> None:
    response = await guarded.get("/whoami", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {"detail": "invalid_token"}


async def test_middleware_scopes_and_audience() -> None:
    app = starlette_app(scopes=["admin"], audience="billing", realm="orders")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
        wrong_audience = await client.get("/whoami", headers=bearer(mint(KEY)))
        assert wrong_audience.status_code == 401
        assert wrong_audience.headers["www-authenticate"] == (
            'Bearer realm="orders", error="invalid_token"'
        )
        no_scope = mint(KEY, claims(aud="billing"))
        refused = await client.get("/whoami", headers=bearer(no_scope))
        assert refused.status_code == 403
        assert refused.headers["www-authenticate"] == (
            'Bearer realm="orders", error="insufficient_scope", scope="admin"'
        )
        admin = mint(KEY, claims(aud="billing", scope="admin"))
        assert (await client.get("/whoami", headers=bearer(admin))).status_code == 200


async def test_middleware_guards_websockets_too() -> None:
    app = starlette_app()

    async def connect(headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        incoming = [{"type": "websocket.connect"}, {"type": "websocket.disconnect"}]

        async def receive() -> dict[str, Any]:
            return incoming.pop(0)

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(dict(message))

        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "path": "/ws",
            "raw_path": b"/ws",
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "scheme": "ws",
            "server": ("orders", 80),
            "subprotocols": [],
        }
        await app(scope, receive, send)
        return sent

    refused = await connect([])
    assert refused == [{"type": "websocket.close", "code": 1008}]  # closed before accept
    accepted = await connect([(b"authorization", f"Bearer {mint(KEY)}".encode())])
    assert accepted[0]["type"] == "websocket.accept"
    assert claims()["sub"] in accepted[1]["text"]
