"""Third-party clients verify our tokens: the "Verified with" matrix of docs/tokens.md.

One real ``authgate serve`` process per signing algorithm (module-scoped) signs a
user in; eight JOSE libraries that other teams use (five Python, three Node) then
verify the access token from ``/.well-known/jwks.json`` over real HTTP, pinning the
issuer, the audience and the algorithm, and must refuse the same token tampered
with, forged under our ``kid``, for another audience or issuer, or outside their
algorithm allowlist (so the harness itself can fail).

A library that cannot verify an algorithm is listed in UNSUPPORTED with the reason
we observed: the test asserts it still fails that way, so a library that learns the
algorithm makes this test fail and the matrix gets updated. The matrix in
docs/tokens.md is checked against UNSUPPORTED too.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.e2e.server import running_server
from tests.interop.node_verifiers import NODE_LIBRARIES, run_node_verifiers
from tests.interop.verifiers import PYTHON_VERIFIERS, Case, run_python_verifier

pytestmark = pytest.mark.e2e

ALGORITHMS = ("RS256", "ES256", "EdDSA")
ISSUER = "https://auth.example.test"
AUDIENCE = "orders"
SETTINGS = {
    "PASSWORD_HASH_TIME_COST": "1",
    "PASSWORD_HASH_MEMORY_KIB": "8",
    # Pinned: the default issuer follows the server's free port.
    "JWT_ISSUER": ISSUER,
    "JWT_AUDIENCE": AUDIENCE,
}
PASSWORD = "Moo00!_*&x"
# Each case but "valid" must be refused by every library.
REFUSED_CASES = ("tampered", "forged", "wrong_audience", "wrong_issuer", "wrong_algorithm")
# The allowlist a "wrong_algorithm" case pins: not the token's algorithm.
OTHER_ALGORITHM = {"RS256": "ES256", "ES256": "RS256", "EdDSA": "RS256"}


@dataclass(frozen=True)
class Caveat:
    """What a library does instead of a plain ✓, as the matrix says and as observed."""

    note: str  # the matrix cell in docs/tokens.md
    observed: str  # a regular expression the library's error or warning matches today


# Observed with the versions in uv.lock and tests/interop/node/package-lock.json.
# Cannot verify the algorithm: the valid token is refused, and with this error.
UNSUPPORTED: dict[tuple[str, str], Caveat] = {
    ("jsonwebtoken+jwks-rsa", "EdDSA"): Caveat(
        '✗ jsonwebtoken 9 refuses Ed25519 keys ("Unknown key type")',
        r'^Error: Unknown key type "ed25519"\.$',
    ),
    ("express-jwt", "EdDSA"): Caveat(
        '✗ verifies with jsonwebtoken 9: 401 ("Unknown key type")',
        r'^HTTP 401 invalid_token: Unknown key type "ed25519"\.$',
    ),
    ("python-jose", "EdDSA"): Caveat(
        "✗ has no OKP keys (JWKError)",
        r"^JWKError: Unable to find an algorithm for key$",
    ),
}
# Verifies, and warns while doing it.
WARNS: dict[tuple[str, str], Caveat] = {
    ("joserfc", "EdDSA"): Caveat(
        "✓ with a SecurityWarning (RFC 9864 deprecates `EdDSA` for `Ed25519`)",
        r"^SecurityWarning: EdDSA is deprecated via RFC 9864$",
    ),
}

# Row labels of the matrix in docs/tokens.md, in its order.
DOC_ROWS = {
    "jose": "Node `jose`",
    "jsonwebtoken+jwks-rsa": "Node `jsonwebtoken` + `jwks-rsa`",
    "express-jwt": "Node `express-jwt` (+ `jwks-rsa`, in an express app)",
    "PyJWT": "PyJWT `PyJWKClient`",
    "joserfc": "`joserfc`",
    "Authlib": "Authlib `authlib.jose`",
    "jwcrypto": "`jwcrypto`",
    "python-jose": "`python-jose`",
}


@dataclass(frozen=True)
class Issued:
    """What one authgate process handed out, and the cases built from it."""

    algorithm: str
    jwks_url: str
    user_id: str
    cases: tuple[Case, ...]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tampered(token: str) -> str:
    """The same header and signature over a payload naming another user."""
    header, payload, signature = token.split(".")
    claims = json.loads(_unb64(payload))
    claims["sub"] = claims["userId"] = str(uuid.uuid4())
    return ".".join((header, _b64(json.dumps(claims).encode()), signature))


def _forged(token: str, algorithm: str) -> str:
    """The same header (our ``kid``) and claims, signed by a key we never published."""
    key: Any = {
        "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate,
    }[algorithm]()
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(claims, key, algorithm=algorithm, headers=header)


def build_cases(token: str, algorithm: str) -> tuple[Case, ...]:
    """The valid case and the ones every library must refuse, for one token.

    Extend here for new situations (a token signed before a key rotation, say):
    every library runs every case.
    """

    def case(name: str, value: str = token, **pins: str) -> Case:
        return Case(
            name,
            value,
            issuer=pins.get("issuer", ISSUER),
            audience=pins.get("audience", AUDIENCE),
            algorithms=(pins.get("algorithm", algorithm),),
        )

    return (
        case("valid"),
        case("tampered", _tampered(token)),
        case("forged", _forged(token, algorithm)),
        case("wrong_audience", audience="billing"),
        case("wrong_issuer", issuer="https://evil.example.test"),
        case("wrong_algorithm", algorithm=OTHER_ALGORITHM[algorithm]),
    )


@pytest.fixture(scope="module", params=ALGORITHMS)
def issued(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Issued]:
    algorithm: str = request.param
    workdir = tmp_path_factory.mktemp(f"interop-{algorithm.lower()}")
    with (
        running_server(workdir, JWT_ALGORITHM=algorithm, **SETTINGS) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        signup = http.post(
            "/api/v1/signup/credentials",
            json={
                "email": "interop@cow.jp",
                "password": PASSWORD,
                "passwordConfirm": PASSWORD,
                "firstName": "Melvin",
                "lastName": "Friedman",
            },
        )
        assert signup.status_code == 200, signup.text
        signin = http.post(
            "/api/v1/auth/credentials", json={"email": "interop@cow.jp", "password": PASSWORD}
        )
        assert signin.status_code == 200, signin.text
        token = signin.json()["accessToken"]
        assert jwt.get_unverified_header(token)["alg"] == algorithm
        user_id = jwt.decode(token, options={"verify_signature": False})["sub"]
        yield Issued(
            algorithm=algorithm,
            jwks_url=f"{server.base_url}/.well-known/jwks.json",
            user_id=user_id,
            cases=build_cases(token, algorithm),
        )


def check_outcomes(library: str, issued: Issued, outcomes: dict[str, Any]) -> None:
    assert sorted(outcomes) == sorted(case.name for case in issued.cases)
    valid = outcomes["valid"]
    key = (library, issued.algorithm)
    if key in UNSUPPORTED:
        assert not valid["ok"], (
            f"{library} now verifies {issued.algorithm}: drop it from UNSUPPORTED "
            "and mark it ✓ in the matrix of docs/tokens.md"
        )
        assert re.search(UNSUPPORTED[key].observed, valid["error"]), valid["error"]
    else:
        assert valid["ok"], valid["error"]
        assert valid["sub"] == issued.user_id
        warned = valid.get("warnings", [])
        if key in WARNS:
            assert len(warned) == 1, warned
            assert re.search(WARNS[key].observed, warned[0]), warned
        else:
            assert warned == []
    accepted = {name: outcomes[name] for name in REFUSED_CASES if outcomes[name]["ok"]}
    assert accepted == {}, f"{library} accepted what it must refuse"
    if library == "express-jwt":
        # The protected route answers a bad token 401, never 500.
        statuses = {name: outcomes[name]["error"].split(" ")[:2] for name in REFUSED_CASES}
        assert all(status == ["HTTP", "401"] for status in statuses.values()), statuses


@pytest.mark.node
def test_third_party_libraries_verify_our_tokens(issued: Issued, subtests: pytest.Subtests) -> None:
    """Every library on every case, one subtest per library.

    One test per algorithm (not per library): under pytest-xdist, per-library tests
    would start the algorithm's server once on every worker.
    """
    for library, verify in PYTHON_VERIFIERS.items():
        with subtests.test(library=library):
            outcomes = {
                case.name: run_python_verifier(verify, case, issued.jwks_url)
                for case in issued.cases
            }
            check_outcomes(library, issued, outcomes)
    node_outcomes: dict[str, dict[str, Any]] = {}
    with subtests.test(library="Node"):
        # Skips here (fails under CI=true) when Node is missing; the Python rows stand.
        node_outcomes = run_node_verifiers(issued.jwks_url, list(issued.cases))
    for library, outcomes in node_outcomes.items():
        with subtests.test(library=library):
            check_outcomes(library, issued, outcomes)


def test_the_documented_matrix_is_the_one_tested() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "tokens.md").read_text()
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] in DOC_ROWS.values():
            rows[cells[0]] = cells[1:]
    assert list(rows) == list(DOC_ROWS.values())
    assert sorted(DOC_ROWS) == sorted([*NODE_LIBRARIES, *PYTHON_VERIFIERS])
    for library, label in DOC_ROWS.items():
        for algorithm, cell in zip(ALGORITHMS, rows[label], strict=True):
            caveat = UNSUPPORTED.get((library, algorithm)) or WARNS.get((library, algorithm))
            assert cell == (caveat.note if caveat else "✓"), (label, algorithm)
