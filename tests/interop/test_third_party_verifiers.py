"""Third-party clients verify our tokens: the "Verified with" matrix of docs/tokens.md.

One real ``authgate serve`` process per signing algorithm (module-scoped) signs a
user in; eight JOSE libraries that other teams use (five Python, three Node) then
verify the access token from ``/.well-known/jwks.json`` over real HTTP, pinning the
issuer, the audience and the algorithm, and must refuse the same token tampered
with, forged under our ``kid``, for another audience or issuer, or outside their
algorithm allowlist (so the harness itself can fail). What a library cannot do is
asserted as observed (tests/interop/harness.py: UNSUPPORTED, WARNS).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.e2e.server import running_server
from tests.interop.harness import (
    ALGORITHMS,
    OTHER_ALGORITHM,
    SETTINGS,
    UNSUPPORTED,
    WARNS,
    Issued,
    case,
    forged,
    sign_in,
    sign_up,
    subject,
    tampered,
    verify_with_every_library,
)
from tests.interop.node_verifiers import NODE_LIBRARIES
from tests.interop.verifiers import PYTHON_VERIFIERS

pytestmark = pytest.mark.e2e

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
        sign_up(http)
        token = sign_in(http)
        assert jwt.get_unverified_header(token)["alg"] == algorithm
        yield Issued(
            algorithm=algorithm,
            jwks_url=f"{server.base_url}/.well-known/jwks.json",
            user_id=subject(token),
            cases=(
                case("valid", token, algorithm, accept=True),
                case("tampered", tampered(token), algorithm, accept=False),
                case("forged", forged(token, algorithm), algorithm, accept=False),
                case("wrong_audience", token, algorithm, accept=False, audience="billing"),
                case(
                    "wrong_issuer",
                    token,
                    algorithm,
                    accept=False,
                    issuer="https://evil.example.test",
                ),
                case(
                    "wrong_algorithm",
                    token,
                    algorithm,
                    accept=False,
                    allowed=OTHER_ALGORITHM[algorithm],
                ),
            ),
        )


@pytest.mark.node
def test_third_party_libraries_verify_our_tokens(issued: Issued, subtests: pytest.Subtests) -> None:
    # One test per algorithm, not per library: under pytest-xdist, per-library tests
    # would start the algorithm's server once on every worker.
    verify_with_every_library(issued, subtests)


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
