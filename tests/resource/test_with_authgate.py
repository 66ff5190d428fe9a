"""A separate service, built on authgate.resource alone, guarding routes with tokens
from a real ``authgate serve`` process (its JWKS fetched over real HTTP).

Two authgate processes run, each with its own development key pair: tokens of the
second stand for tokens signed by a key the first does not publish (a retired key, or
another deployment). A JWKS stand-in that we control plays the key rotation.
"""

# No ``from __future__ import annotations``: FastAPI must see the route annotations.

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI, Request
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from authgate.resource import (
    BearerTokenMiddleware,
    Claims,
    JwksKeys,
    TokenVerifier,
    require_token,
)
from tests.e2e.server import RunningServer, running_server
from tests.e2e.test_key_rotation import keys_cli
from tests.resource.support import Clock, JwksPublisher, LocalServer, forge_payload, local_server

pytestmark = pytest.mark.e2e

ISSUER = "https://auth.example.test"
AUDIENCE = "authgate"  # JWT_AUDIENCE's default
SETTINGS = {
    "PASSWORD_HASH_TIME_COST": "1",
    "PASSWORD_HASH_MEMORY_KIB": "8",
    # Pinned: the default issuer follows the server's free port.
    "JWT_ISSUER": ISSUER,
}


@dataclass
class Issuer:
    server: RunningServer
    access_token: str
    user_id: str

    @property
    def jwks_url(self) -> str:
        return f"{self.server.base_url}/.well-known/jwks.json"

    def jwks(self) -> dict[str, Any]:
        document: dict[str, Any] = httpx.get(self.jwks_url, timeout=10).json()
        return document


def _start(directory: Path) -> Iterator[Issuer]:
    directory.mkdir()
    with running_server(directory, **SETTINGS) as server:
        signup = httpx.post(
            f"{server.base_url}/api/v1/signup/credentials",
            json={"email": "cow@cow.jp", "password": "Moo00!_*&x", "firstName": "Melvin"},
            timeout=10,
        )
        assert signup.status_code == 200, signup.text
        token = signup.json()["accessToken"]
        me = httpx.get(
            f"{server.base_url}/api/v1/me",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        yield Issuer(server, token, me.json()["userId"])


@pytest.fixture(scope="module")
def authgate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    yield from _start(tmp_path_factory.mktemp("resource") / "first")


@pytest.fixture(scope="module")
def other_authgate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    yield from _start(tmp_path_factory.mktemp("resource") / "second")


def orders_service(verifier: TokenVerifier) -> FastAPI:
    """The other team's service: it knows authgate only through authgate.resource."""
    user = Annotated[Claims, Depends(require_token(verifier))]
    app = FastAPI()

    @app.get("/orders")
    async def orders(claims: user) -> dict[str, Any]:
        return {"sub": claims.sub, "email": claims.email}

    return app


async def _get(app: Any, token: str | None, path: str = "/orders") -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
        return await client.get(path, headers=headers)


@pytest.fixture
def service(authgate: Issuer) -> FastAPI:
    verifier = TokenVerifier.from_jwks_url(authgate.jwks_url, issuer=ISSUER, audience=AUDIENCE)
    return orders_service(verifier)


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_a_token_from_authgate_opens_the_route(service: FastAPI, authgate: Issuer) -> None:
    response = await _get(service, authgate.access_token)
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": authgate.user_id, "email": "cow@cow.jp"}


async def test_an_expired_token_is_refused(authgate: Issuer) -> None:
    exp = jwt.decode(authgate.access_token, options={"verify_signature": False})["exp"]
    clock = Clock(exp - 1)
    verifier = TokenVerifier.from_jwks_url(
        authgate.jwks_url, issuer=ISSUER, audience=AUDIENCE, now=clock
    )
    service = orders_service(verifier)
    assert (await _get(service, authgate.access_token)).status_code == 200
    clock.value = exp  # authgate's ACCESS_TOKEN_TTL_SECONDS has run out
    assert_refused(await _get(service, authgate.access_token))


async def test_tampered_tokens_are_refused(service: FastAPI, authgate: Issuer) -> None:
    token = authgate.access_token
    assert_refused(await _get(service, forge_payload(token, sub="someone-else")))
    head, payload, signature = token.split(".")
    flipped = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    assert_refused(await _get(service, f"{head}.{payload}.{flipped}"))


async def test_a_service_with_another_audience_refuses_the_token(authgate: Issuer) -> None:
    billing = TokenVerifier.from_jwks_url(authgate.jwks_url, issuer=ISSUER, audience="billing")
    assert_refused(await _get(orders_service(billing), authgate.access_token))


async def test_a_token_signed_by_a_key_not_in_the_jwks_is_refused(
    service: FastAPI, other_authgate: Issuer
) -> None:
    assert_refused(await _get(service, other_authgate.access_token))


@pytest.mark.parametrize("header", [None, "Basic Y293OmNvdw==", "Bearer", "Bearer a.b"])
async def test_missing_or_garbled_authorization_is_refused(
    service: FastAPI, header: str | None
) -> None:
    transport = httpx.ASGITransport(app=service)
    headers = {} if header is None else {"Authorization": header}
    async with httpx.AsyncClient(transport=transport, base_url="http://orders") as client:
        assert_refused(await client.get("/orders", headers=headers))


@pytest.fixture
def publisher(authgate: Issuer) -> JwksPublisher:
    return JwksPublisher(authgate.jwks())


@pytest.fixture
def jwks_server(publisher: JwksPublisher) -> Iterator[LocalServer]:
    with local_server(publisher) as server:
        yield server


async def test_a_new_key_is_picked_up_after_rotation_without_a_restart(
    authgate: Issuer, other_authgate: Issuer, publisher: JwksPublisher, jwks_server: LocalServer
) -> None:
    monotonic = Clock(0.0)
    keys = JwksKeys(f"{jwks_server.url}/jwks.json", clock=monotonic)
    service = orders_service(TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE))
    assert (await _get(service, authgate.access_token)).status_code == 200
    assert_refused(await _get(service, other_authgate.access_token))  # not published yet

    # Rotation: the new key is published next to the old one.
    publisher.document = {"keys": authgate.jwks()["keys"] + other_authgate.jwks()["keys"]}
    monotonic.advance(31)  # past the refetch cool-down; well inside max-age
    response = await _get(service, other_authgate.access_token)
    assert response.status_code == 200, response.text
    assert response.json()["sub"] == other_authgate.user_id
    assert (await _get(service, authgate.access_token)).status_code == 200  # previous key
    assert jwks_server.count == 2

    # Retirement: the old key leaves the JWKS; its tokens stop, even verified ones.
    publisher.document = other_authgate.jwks()
    monotonic.advance(301)  # the cached set is stale (max-age 300 from our stand-in)
    assert_refused(await _get(service, authgate.access_token))
    assert (await _get(service, other_authgate.access_token)).status_code == 200


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.state.claims.sub})


async def test_the_middleware_guards_a_starlette_app(
    authgate: Issuer, other_authgate: Issuer
) -> None:
    app = Starlette(routes=[Route("/whoami", whoami)])
    verifier = TokenVerifier.from_jwks_url(authgate.jwks_url, issuer=ISSUER, audience=AUDIENCE)
    app.add_middleware(BearerTokenMiddleware, verifier=verifier)
    response = await _get(app, authgate.access_token, "/whoami")
    assert response.status_code == 200
    assert response.json() == {"sub": authgate.user_id}
    for token in (None, other_authgate.access_token, forge_payload(authgate.access_token)):
        assert_refused(await _get(app, token, "/whoami"))


def test_authgate_itself_accepts_what_the_service_accepts(authgate: Issuer) -> None:
    # The same token at authgate's own guard, so both answer the same.
    response = httpx.get(
        f"{authgate.server.base_url}/secure",
        headers={"Authorization": f"Bearer {authgate.access_token}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["userId"] == authgate.user_id


async def test_a_real_key_rotation_reaches_the_service_through_the_jwks(
    tmp_path: Path,
) -> None:
    # authgate's own ring, rotated and retired by its CLI: the service, which knows
    # authgate only by its JWKS URL, accepts the old token and the new one across the
    # rotation (the new key was published as "next" before it signed anything), and
    # refuses the old one once its key is retired and the JWKS cached by the service
    # has expired (JWKS_MAX_AGE_SECONDS=1 here, and no minimum cache time).
    ring = {**SETTINGS, "KEY_RING_REFRESH_SECONDS": "1", "JWKS_MAX_AGE_SECONDS": "1"}
    with running_server(tmp_path, **ring) as server:
        http = httpx.AsyncClient(base_url=server.base_url, timeout=10)
        signup = await http.post(
            "/api/v1/signup/credentials",
            json={"email": "cow@cow.jp", "password": "Moo00!_*&x", "firstName": "Melvin"},
        )
        assert signup.status_code == 200, signup.text
        before = signup.json()["accessToken"]
        old_kid = jwt.get_unverified_header(before)["kid"]
        # The kit keeps a JWKS at least 30 s by default; here it follows max-age (1 s).
        keys = JwksKeys(f"{server.base_url}/.well-known/jwks.json", min_cache_seconds=0)
        service = orders_service(TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE))
        assert (await _get(service, before)).status_code == 200

        await asyncio.sleep(2.2)  # the next key has been published long enough
        rotated = keys_cli(tmp_path, "rotate", **ring)
        assert rotated.returncode == 0, rotated.stderr
        after = before
        for _ in range(50):
            signin = await http.post(
                "/api/v1/auth/credentials",
                json={"email": "cow@cow.jp", "password": "Moo00!_*&x"},
            )
            after = signin.json()["accessToken"]
            if jwt.get_unverified_header(after)["kid"] != old_kid:
                break
            await asyncio.sleep(0.2)
        assert jwt.get_unverified_header(after)["kid"] != old_kid
        assert (await _get(service, after)).status_code == 200
        assert (await _get(service, before)).status_code == 200  # previous key

        retired = keys_cli(tmp_path, "retire", old_kid, "--force", **ring)
        assert retired.returncode == 0, retired.stderr
        await asyncio.sleep(2.5)  # the ring's refresh, then the service's max-age
        assert_refused(await _get(service, before))
        assert (await _get(service, after)).status_code == 200
        await http.aclose()
