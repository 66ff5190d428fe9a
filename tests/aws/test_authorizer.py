"""authgate.aws.authorizer through its real handler, on AWS's documented event shapes,
with tokens from a real authgate and its JWKS served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from authgate.aws import authorizer
from tests.aws.support import ISSUER, IssuedTokens, event, issue_tokens
from tests.resource.support import JwksPublisher, LocalServer, forge_payload, local_server
from tests.resource.test_public_face import _blocked_modules
from tests.support.databases import sqlite_copy

STAGE_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/dev/*/*"
SECURE_ARN = "arn:aws:execute-api:us-east-1:123456789012:abcdef123/dev/POST/secure"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory, key_pair: tuple[Path, Path]) -> IssuedTokens:
    from authgate.config import load_settings
    from tests.conftest import CHEAP_HASHING

    directory = tmp_path_factory.mktemp("authorizer")
    settings = load_settings(
        database_url=sqlite_copy(directory, tmp_path_factory.getbasetemp()).render_as_string(),
        jwt_private_key_path=key_pair[0],
        jwt_public_key_path=key_pair[1],
        jwt_issuer=ISSUER,
        authgate_data_dir=directory / "data",
        email_verification="off",
        **CHEAP_HASHING,
    )
    return issue_tokens(settings)


@pytest.fixture
def jwks_server(issued: IssuedTokens) -> Iterator[LocalServer]:
    with local_server(JwksPublisher(issued.jwks)) as server:
        yield server


@pytest.fixture
def configured(jwks_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    monkeypatch.setenv("JWT_ISSUER", ISSUER)
    monkeypatch.setenv("JWT_AUDIENCE", "orders, authgate")
    monkeypatch.setenv("JWKS_URL", f"{jwks_server.url}/.well-known/jwks.json")
    monkeypatch.delenv("AUTHORIZER_ROUTES", raising=False)
    authorizer.reset()
    yield jwks_server
    authorizer.reset()


def _unauthorized(sample: dict[str, Any]) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$") as raised:
        authorizer.handler(sample, None)
    assert type(raised.value) is Exception  # exactly what API Gateway maps to 401


def _statement(answer: dict[str, Any]) -> dict[str, Any]:
    document = answer["policyDocument"]
    assert document["Version"] == "2012-10-17"
    (statement,) = document["Statement"]
    assert statement["Action"] == "execute-api:Invoke"
    return dict(statement)


@pytest.mark.parametrize("kind", ["authorizer_token", "authorizer_request"])
def test_a_user_token_is_allowed_on_the_whole_stage(
    kind: str, issued: IssuedTokens, configured: LocalServer
) -> None:
    answer = authorizer.handler(event(kind, token=issued.user_token), None)
    assert answer["principalId"] == issued.user_id
    assert _statement(answer) == {
        "Action": "execute-api:Invoke",
        "Effect": "Allow",
        "Resource": STAGE_ARN,
    }
    context = answer["context"]
    assert context["userId"] == issued.user_id
    assert context["email"] == "cow@cow.jp"
    assert context["clientId"] == "authgate"
    assert context["sid"]
    # API Gateway passes on only strings, numbers and booleans.
    assert all(isinstance(value, str) for value in context.values())


def test_the_jwks_is_fetched_once_across_invocations(
    issued: IssuedTokens, configured: LocalServer
) -> None:
    for kind in ["authorizer_token", "authorizer_request", "authorizer_token"]:
        authorizer.handler(event(kind, token=issued.user_token), None)
    assert configured.count == 1
    # Another token, the same cached keys.
    authorizer.handler(event("authorizer_token", token=issued.service_token), None)
    assert configured.count == 1


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("", id="empty"),
        pytest.param("Basic Y293OmNvdw==", id="basic"),
        pytest.param("Bearer", id="no-token"),
        pytest.param("Bearer not-a-jwt", id="garbage"),
        pytest.param("Bearer a.b.c", id="three-parts"),
        pytest.param("Bearer eyJhbGciOiJub25lIn0.e30.", id="alg-none"),
    ],
)
def test_a_malformed_token_is_refused_before_any_key_fetch(
    header: str, configured: LocalServer
) -> None:
    token_event = event("authorizer_token", token="x")
    token_event["authorizationToken"] = header
    _unauthorized(token_event)
    request_event = event("authorizer_request", token="x")
    request_event["headers"]["Authorization"] = header
    _unauthorized(request_event)
    v2 = event("authorizer_http_api_v2", token="x")
    v2["headers"]["authorization"] = header
    assert authorizer.handler(v2, None) == {"isAuthorized": False, "context": {}}
    assert configured.count == 0


def test_a_missing_header_is_unauthorized(configured: LocalServer) -> None:
    request_event = event("authorizer_request", token="x")
    del request_event["headers"]["Authorization"]
    _unauthorized(request_event)
    assert configured.count == 0


def test_a_forged_or_foreign_token_is_unauthorized(
    issued: IssuedTokens, configured: LocalServer
) -> None:
    _unauthorized(event("authorizer_token", token=forge_payload(issued.user_token, sub="x")))
    head, payload, signature = issued.user_token.split(".")
    flipped = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    _unauthorized(event("authorizer_token", token=f"{head}.{payload}.{flipped}"))


def test_a_token_for_another_audience_is_unauthorized(
    issued: IssuedTokens, configured: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWT_AUDIENCE", "billing")
    authorizer.reset()
    _unauthorized(event("authorizer_token", token=issued.user_token))


def test_a_service_token_on_a_user_route_is_denied_not_unauthorized(
    issued: IssuedTokens, configured: LocalServer
) -> None:
    answer = authorizer.handler(event("authorizer_token", token=issued.service_token), None)
    assert _statement(answer) == {
        "Action": "execute-api:Invoke",
        "Effect": "Deny",
        "Resource": SECURE_ARN,  # this route only
    }
    assert answer["principalId"] == "billing"
    assert answer["context"]["sid"] == ""
    assert answer["context"]["clientId"] == "billing"


def test_route_rules_from_the_environment(
    issued: IssuedTokens, configured: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = {
        "POST /secure": {"scopes": ["orders:write"]},
        "ANY /ledger": {"serviceTokens": True},
    }
    monkeypatch.setenv("AUTHORIZER_ROUTES", json.dumps(rules))
    authorizer.reset()
    # The user token has no orders:write scope: Deny (403) on /secure.
    answer = authorizer.handler(event("authorizer_token", token=issued.user_token), None)
    assert _statement(answer)["Effect"] == "Deny"
    # A service token may use /ledger (any method).
    ledger = event("authorizer_token", token=issued.service_token)
    ledger["methodArn"] = ledger["methodArn"].replace("POST/secure", "GET/ledger")
    assert _statement(authorizer.handler(ledger, None))["Effect"] == "Allow"
    v2 = event("authorizer_http_api_v2", token=issued.user_token)
    refused = authorizer.handler(v2, None)
    assert refused["isAuthorized"] is False
    assert refused["context"]["userId"] == issued.user_id


def test_http_api_simple_responses(issued: IssuedTokens, configured: LocalServer) -> None:
    answer = authorizer.handler(event("authorizer_http_api_v2", token=issued.user_token), None)
    assert answer["isAuthorized"] is True
    assert answer["context"]["userId"] == issued.user_id
    assert answer["context"]["email"] == "cow@cow.jp"
    forged = forge_payload(issued.user_token, sub="someone-else")
    assert authorizer.handler(event("authorizer_http_api_v2", token=forged), None) == {
        "isAuthorized": False,
        "context": {},
    }
    service = authorizer.handler(event("authorizer_http_api_v2", token=issued.service_token), None)
    assert service["isAuthorized"] is False


@pytest.mark.parametrize(
    "arn",
    [
        pytest.param("", id="empty"),
        pytest.param("arn:aws:lambda:us-east-1:1:function:x", id="not-execute-api"),
        pytest.param("arn:aws:execute-api:us-east-1:1:api", id="no-stage"),
    ],
)
def test_a_bad_method_arn_is_unauthorized(
    arn: str, issued: IssuedTokens, configured: LocalServer
) -> None:
    sample = event("authorizer_token", token=issued.user_token)
    sample["methodArn"] = arn
    _unauthorized(sample)


def test_other_partitions_keep_their_prefix(issued: IssuedTokens, configured: LocalServer) -> None:
    sample = event("authorizer_token", token=issued.user_token)
    sample["methodArn"] = sample["methodArn"].replace("arn:aws:", "arn:aws-cn:")
    answer = authorizer.handler(sample, None)
    assert _statement(answer)["Resource"] == STAGE_ARN.replace("arn:aws:", "arn:aws-cn:")


def test_an_event_of_another_kind_is_unauthorized(configured: LocalServer) -> None:
    _unauthorized({"source": "aws.events"})


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        pytest.param("{", "not valid JSON", id="json"),
        pytest.param("[]", "must be an object", id="list"),
        pytest.param('{"/secure": {}}', "METHOD /path", id="no-method"),
        pytest.param('{"GET /x": {"scope": []}}', "unknown", id="unknown-key"),
        pytest.param('{"GET /x": {"scopes": "a"}}', "list of strings", id="scopes-string"),
        pytest.param('{"GET /x": {"serviceTokens": "yes"}}', "true or false", id="flag"),
    ],
)
def test_bad_configuration_is_refused_with_the_variable_named(
    routes: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWT_ISSUER", ISSUER)
    monkeypatch.setenv("AUTHORIZER_ROUTES", routes)
    authorizer.reset()
    with pytest.raises(ValueError, match=message):
        authorizer.handler(event("authorizer_token", token="a.b.c"), None)
    authorizer.reset()


def test_the_issuer_is_required_and_the_jwks_url_defaults_to_the_issuers() -> None:
    with pytest.raises(ValueError, match="JWT_ISSUER"):
        authorizer.AuthorizerConfig.from_env({})
    with pytest.raises(ValueError, match="JWT_AUDIENCE"):
        authorizer.AuthorizerConfig.from_env({"JWT_ISSUER": ISSUER, "JWT_AUDIENCE": " , "})
    config = authorizer.AuthorizerConfig.from_env({"JWT_ISSUER": ISSUER + "/"})
    assert config.jwks_url == f"{ISSUER}/.well-known/jwks.json"
    assert config.audiences == ("authgate",)


def test_importing_it_needs_nothing_of_the_server() -> None:
    """Every installed distribution the verifier kit does not need is unimportable in
    the child, and the authorizer still imports and answers."""
    from tests.resource.test_public_face import _BLOCKER

    code = _BLOCKER.format(blocked=_blocked_modules()) + (
        "import sys\n"
        "from authgate.aws import authorizer\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('authgate.web', "
        "'authgate.config', 'authgate.storage', 'authgate.services', 'fastapi', "
        "'sqlalchemy', 'pydantic')))\n"
        "assert not bad, bad\n"
        "import os\n"
        "os.environ['JWT_ISSUER'] = 'https://auth.example.test'\n"
        "try:\n"
        "    authorizer.handler({'type': 'TOKEN', 'authorizationToken': 'Bearer x.y', "
        "'methodArn': 'arn:aws:execute-api:r:1:a/s/GET/x'}, None)\n"
        "except Exception as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Unauthorized"


def test_keys_that_cannot_be_fetched_are_an_error_not_a_401(
    issued: IssuedTokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key server down is our fault, not the caller's: the invocation fails (API
    Gateway answers 500) instead of telling a valid client its token is bad."""
    from authgate.resource import VerifierUnavailable

    publisher = JwksPublisher(issued.jwks, status=503)
    with local_server(publisher) as server:
        monkeypatch.setenv("JWT_ISSUER", ISSUER)
        monkeypatch.setenv("JWKS_URL", f"{server.url}/.well-known/jwks.json")
        authorizer.reset()
        try:
            with pytest.raises(VerifierUnavailable):
                authorizer.handler(event("authorizer_token", token=issued.user_token), None)
        finally:
            authorizer.reset()
