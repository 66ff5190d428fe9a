"""RFC 7662 introspection against a local stand-in endpoint on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from authgate.resource import (
    Introspection,
    InvalidToken,
    StaticKeys,
    TokenVerifier,
    VerifierUnavailable,
)
from tests.resource.support import (
    AUDIENCE,
    ISSUER,
    Clock,
    IntrospectionEndpoint,
    LocalServer,
    jwks,
    local_server,
    mint,
    rsa_key,
)

KEY = rsa_key()


@pytest.fixture
def endpoint() -> IntrospectionEndpoint:
    return IntrospectionEndpoint()


@pytest.fixture
def server(endpoint: IntrospectionEndpoint) -> Iterator[LocalServer]:
    with local_server(endpoint) as running:
        yield running


def client(server: LocalServer, endpoint: IntrospectionEndpoint, **options: Any) -> Introspection:
    return Introspection(
        f"{server.url}/oauth/introspect",
        client_id=endpoint.client_id,
        client_secret=endpoint.client_secret,
        **options,
    )


def verifier(introspection: Introspection | None) -> TokenVerifier:
    return TokenVerifier(
        StaticKeys.from_jwks(jwks(KEY)),
        issuer=ISSUER,
        audience=AUDIENCE,
        introspection=introspection,
        now=Clock(),
    )


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
async def test_a_live_token_is_active_and_a_revoked_one_is_not(
    server: LocalServer, endpoint: IntrospectionEndpoint, auth_method: str
) -> None:
    v = verifier(client(server, endpoint, auth_method=auth_method))
    token = mint(KEY)
    endpoint.live.add(token)
    assert (await v.verify(token, introspect=True)).sub
    method, path, headers, body = server.requests[-1]
    assert (method, path) == ("POST", "/oauth/introspect")
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    form = parse_qs(body.decode())
    assert form["token"] == [token]
    assert form["token_type_hint"] == ["access_token"]

    endpoint.live.clear()  # the session was revoked
    with pytest.raises(InvalidToken, match="not active"):
        await v.verify(token, introspect=True)
    # Without introspection the signature alone still passes: that is the trade-off.
    assert (await v.verify(token)).sub
    assert len(server.requests) == 2


async def test_introspection_runs_only_after_local_checks(
    server: LocalServer, endpoint: IntrospectionEndpoint
) -> None:
    v = verifier(client(server, endpoint))
    with pytest.raises(InvalidToken):
        await v.verify(mint(rsa_key("stranger")), introspect=True)
    assert server.count == 0  # forged tokens never cause an outbound call


async def test_wrong_client_credentials_make_it_unavailable(
    server: LocalServer, endpoint: IntrospectionEndpoint
) -> None:
    bad = Introspection(
        f"{server.url}/oauth/introspect", client_id=endpoint.client_id, client_secret="wrong"
    )
    token = mint(KEY)
    endpoint.live.add(token)
    with pytest.raises(VerifierUnavailable, match="401"):
        await verifier(bad).verify(token, introspect=True)


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (b'{"active": true, "sub": "x"}', True),
        (b'{"active": "true"}', False),
        (b'{"active": 1}', False),
        (b'{"active": false}', False),
        (b"{}", VerifierUnavailable),
        (b"[true]", VerifierUnavailable),
        (b"not json", VerifierUnavailable),
        (b"[" * 30_000 + b"]" * 30_000, VerifierUnavailable),
    ],
)
async def test_only_a_json_true_is_active(
    server: LocalServer, answer: bytes, outcome: bool | type[Exception]
) -> None:
    def respond(*_: Any) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "application/json"}, answer

    server.respond = respond
    introspection = Introspection(
        f"{server.url}/introspect", client_id="orders-api", client_secret="x"
    )
    if isinstance(outcome, bool):
        assert await introspection.is_active("a.b.c") is outcome
    else:
        with pytest.raises(outcome):
            await introspection.is_active("a.b.c")


async def test_an_endpoint_that_is_down_is_unavailable(
    server: LocalServer, endpoint: IntrospectionEndpoint
) -> None:
    endpoint.answer_status = 500
    token = mint(KEY)
    with pytest.raises(VerifierUnavailable):
        await verifier(client(server, endpoint)).verify(token, introspect=True)
    gone = Introspection("http://127.0.0.1:9/introspect", client_id="a", client_secret="b")
    with pytest.raises(VerifierUnavailable):
        await verifier(gone).verify(token, introspect=True)


def test_the_secret_is_never_in_the_repr() -> None:
    introspection = Introspection(
        "https://auth.example.test/oauth/introspect", client_id="orders-api", client_secret="s3"
    )
    assert "s3" not in repr(introspection)
    with pytest.raises(ValueError, match="https"):
        Introspection("http://auth.example.test/x", client_id="a", client_secret="b")
    with pytest.raises(ValueError, match="client_secret"):
        Introspection("https://auth.example.test/x", client_id="a", client_secret="")
