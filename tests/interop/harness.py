"""What every interop test shares: the authgate settings, the cases, the expected
outcome of each library, and one call that runs every library on a set of cases.

A library that cannot verify an algorithm is listed in UNSUPPORTED with the error we
observed; one that verifies but warns, in WARNS. The tests assert both as observed,
so a library that changes makes them fail and the matrix in docs/tokens.md (kept
equal to these tables by test_third_party_verifiers.py) gets updated.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.interop.node_verifiers import run_node_verifiers
from tests.interop.verifiers import PYTHON_VERIFIERS, Case, run_python_verifier

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
# The allowlist a "wrong_algorithm" case pins: not the token's algorithm.
OTHER_ALGORITHM = {"RS256": "ES256", "ES256": "RS256", "EdDSA": "RS256"}


@dataclass(frozen=True)
class Caveat:
    """What a library does instead of a plain ✓, as the matrix says and as observed."""

    note: str  # the matrix cell in docs/tokens.md
    observed: str  # a regular expression the library's error or warning matches today


# Observed with the versions in uv.lock and tests/interop/node/package-lock.json.
# Cannot verify the algorithm: a token it must accept is refused, with this error.
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


@dataclass(frozen=True)
class Issued:
    """Tokens one authgate process handed out, as cases for every library."""

    algorithm: str
    jwks_url: str
    user_id: str
    cases: tuple[Case, ...]


def sign_up(http: httpx.Client, email: str = "interop@cow.jp") -> None:
    signup = http.post(
        "/api/v1/signup/credentials",
        json={
            "email": email,
            "password": PASSWORD,
            "passwordConfirm": PASSWORD,
            "firstName": "Melvin",
            "lastName": "Friedman",
        },
    )
    assert signup.status_code == 200, signup.text


def sign_in(http: httpx.Client, email: str = "interop@cow.jp") -> str:
    """A new session's access token for ``email``."""
    signin = http.post("/api/v1/auth/credentials", json={"email": email, "password": PASSWORD})
    assert signin.status_code == 200, signin.text
    token: str = signin.json()["accessToken"]
    return token


def subject(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def case(
    name: str,
    token: str,
    algorithm: str,
    *,
    accept: bool,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    allowed: str | None = None,
) -> Case:
    """A case pinning our issuer, audience and ``algorithm`` (or ``allowed`` instead)."""
    return Case(name, token, issuer, audience, (allowed or algorithm,), accept)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def tampered(token: str) -> str:
    """The same header and signature over a payload naming another user."""
    header, payload, signature = token.split(".")
    claims = json.loads(_unb64(payload))
    claims["sub"] = claims["userId"] = str(uuid.uuid4())
    return ".".join((header, _b64(json.dumps(claims).encode()), signature))


def forged(token: str, algorithm: str) -> str:
    """The same header (our ``kid``) and claims, signed by a key we never published."""
    key: Any = {
        "RS256": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate,
    }[algorithm]()
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(claims, key, algorithm=algorithm, headers=header)


def check_outcomes(library: str, issued: Issued, outcomes: dict[str, Any]) -> None:
    """One library's outcomes against what each case and the caveat tables expect."""
    assert sorted(outcomes) == sorted(c.name for c in issued.cases)
    key = (library, issued.algorithm)
    for expected in issued.cases:
        outcome = outcomes[expected.name]
        if not expected.accept:
            assert not outcome["ok"], f"{library} accepted {expected.name}: {outcome}"
            if library == "express-jwt":  # the protected route: 401, never 500
                assert outcome["error"].startswith("HTTP 401 "), (expected.name, outcome)
        elif key in UNSUPPORTED:
            assert not outcome["ok"], (
                f"{library} now verifies {issued.algorithm}: drop it from UNSUPPORTED "
                "and mark it ✓ in the matrix of docs/tokens.md"
            )
            assert re.search(UNSUPPORTED[key].observed, outcome["error"]), outcome
        else:
            assert outcome["ok"], (expected.name, outcome["error"])
            assert outcome["sub"] == issued.user_id
            warned = outcome.get("warnings", [])
            if key in WARNS:
                assert len(warned) == 1, warned
                assert re.search(WARNS[key].observed, warned[0]), warned
            else:
                assert warned == [], (expected.name, warned)


def verify_with_every_library(issued: Issued, subtests: pytest.Subtests, **context: str) -> None:
    """Every library on every case of ``issued``: one subtest per library.

    The Python libraries run in this process; the Node ones in one Node process.
    ``context`` is added to each subtest's report (a test's phase, say).
    """
    for library, verify in PYTHON_VERIFIERS.items():
        with subtests.test(library=library, **context):
            outcomes = {
                c.name: run_python_verifier(verify, c, issued.jwks_url) for c in issued.cases
            }
            check_outcomes(library, issued, outcomes)
    node_outcomes: dict[str, dict[str, Any]] = {}
    with subtests.test(library="Node", **context):
        # Skips here (fails under CI=true) when Node is missing; the Python rows stand.
        node_outcomes = run_node_verifiers(issued.jwks_url, list(issued.cases))
    for library, outcomes in node_outcomes.items():
        with subtests.test(library=library, **context):
            check_outcomes(library, issued, outcomes)
