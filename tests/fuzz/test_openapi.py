"""Property-based fuzzing of our own OpenAPI schema against the real server process.

For every generated request: no 5xx; every error is problem+json with a stable
code; a refused request writes nothing (the audit log aside, where a refused
sign-in is the event). The example count is bounded to keep the suite quick.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Err

from tests.e2e.server import RunningServer, running_server

pytestmark = pytest.mark.e2e

BUSINESS_TABLES = ("users", "identities", "sessions", "refresh_tokens")
STATS: Counter[str] = Counter()
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir = tmp_path_factory.mktemp("fuzz")
    settings_env = {
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "8",
        "RATE_LIMIT_ENABLED": "false",  # let the fuzzer reach the handlers, not the limiter
        "ACCESS_LOG": "false",
        "JWT_AUDIENCE_GOOGLE": "fuzz-client",
        "GOOGLE_JWKS_URL": "http://127.0.0.1:9/keys",  # a closed port: keys unavailable
    }
    with running_server(workdir, **settings_env) as server:
        server.database = workdir / "authgate.db"  # type: ignore[attr-defined]
        # One account with a live session, so there are rows a failed request
        # could wrongly change, not only tables it could wrongly grow.
        seeded = httpx.post(
            f"{server.base_url}/api/v1/signup/credentials",
            json={"email": "fuzz-owner@cow.jp", "password": "Moo00!_*&x fuzz"},
            timeout=10,
        )
        assert seeded.status_code == 200, seeded.text
        yield server


def _business_rows(database: Path) -> dict[str, str]:
    """A digest of every row of every table that holds accounts and sessions: an
    UPDATE by a failed request (a rotation, a revocation, a password change) shows
    up as surely as an INSERT."""
    with sqlite3.connect(database) as connection:
        digests = {}
        for table in BUSINESS_TABLES:
            rows = connection.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()  # noqa: S608
            digests[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return digests


def _check(case: Any, database: Path) -> None:
    before = _business_rows(database)
    response = case.call(timeout=10)
    STATS["requests"] += 1
    STATS[f"{response.status_code // 100}xx"] += 1
    where = (case.method, case.formatted_path, response.status_code, response.text[:300])
    assert response.status_code < 500, where
    if response.status_code >= 400 and case.path.startswith("/oauth/"):
        # RFC 6749 §5.2 error bodies on the OAuth endpoints (413 from the size
        # limit, 429 and 503 stay problems).
        body = response.json()
        if response.status_code not in (413, 429, 503):
            assert set(body) == {"error", "error_description"}, where
            assert "no-store" in str(response.headers["cache-control"]), where
        assert _business_rows(database) == before, where
    elif response.status_code >= 400:
        content_type = response.headers.get("content-type")
        if isinstance(content_type, list):
            content_type = content_type[0]
        assert content_type == "application/problem+json", where
        body = response.json()
        assert {"type", "title", "status", "detail", "code"} <= set(body), where
        assert body["status"] == response.status_code, where
        assert _business_rows(database) == before, where


def _operations(server: RunningServer) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operations.append(result.ok())
    return operations


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_5xx_problem_bodies_and_no_writes_on_failure(
    fuzz_server: RunningServer, mode: GenerationMode
) -> None:
    database: Path = fuzz_server.database  # type: ignore[attr-defined]
    operations = _operations(fuzz_server)
    assert len(operations) >= 15  # every route is in the schema, so every route is fuzzed
    requests_before = STATS["requests"]
    without_invalid_inputs = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: Any) -> None:
            _check(case, database)

        try:
            run()
        except Unsatisfiable:
            # A route without parameters or body (GET /healthz) has no invalid input.
            if mode is GenerationMode.POSITIVE:
                raise
            without_invalid_inputs.append(f"{operation.method.upper()} {operation.path}")
    assert len(without_invalid_inputs) < len(operations) / 2, without_invalid_inputs
    assert STATS["requests"] - requests_before >= 10 * (
        len(operations) - len(without_invalid_inputs)
    )
    # ACCESS_LOG=false: hundreds of requests and not one access line in the log.
    assert "uvicorn.access" not in fuzz_server.log()
