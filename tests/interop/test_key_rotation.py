"""Third-party libraries across a key rotation: a token signed before ``authgate keys
rotate`` still verifies everywhere, next to one signed after it; once the old key is
retired, every library refuses the old token (the database key ring: ``authgate keys
rotate | retire``, ``KEY_RING_REFRESH_SECONDS``).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import jwt
import pytest

from tests.e2e.server import authgate_command, clean_environment, running_server
from tests.interop.harness import (
    SETTINGS,
    Issued,
    case,
    sign_in,
    sign_up,
    subject,
    tampered,
    verify_with_every_library,
)

pytestmark = pytest.mark.e2e

# RS256 only: the rotation is the same for every algorithm, and each costs a server.
ALGORITHM = "RS256"
T = TypeVar("T")


def _keys(workdir: Path, settings: dict[str, str], *args: str) -> str:
    """``authgate keys ...`` against the running server's database and secret."""
    result = subprocess.run(
        authgate_command("keys", *args),
        cwd=workdir,
        env=clean_environment(**settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _eventually(probe: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    # Instances pick a ring change up within KEY_RING_REFRESH_SECONDS (1 s here).
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout} s: {what}")


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def _published(jwks_url: str) -> set[str]:
    return {key["kid"] for key in httpx.get(jwks_url, timeout=10).json()["keys"]}


@pytest.mark.node
def test_tokens_across_a_rotation_and_a_retirement(
    tmp_path: Path, subtests: pytest.Subtests
) -> None:
    settings = {**SETTINGS, "JWT_ALGORITHM": ALGORITHM, "KEY_RING_REFRESH_SECONDS": "1"}
    with (
        running_server(tmp_path, **settings) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):
        jwks_url = f"{server.base_url}/.well-known/jwks.json"
        sign_up(http)
        before = sign_in(http)
        old_kid = _kid(before)

        _keys(tmp_path, settings, "rotate", "--force")

        def signed_by_a_new_key() -> str | None:
            token = sign_in(http)
            return token if _kid(token) != old_kid else None

        after = _eventually(signed_by_a_new_key, "tokens signed by the new current key")
        assert {old_kid, _kid(after)} <= _published(jwks_url)
        rotated = Issued(
            ALGORITHM,
            jwks_url,
            subject(before),
            (
                case("signed_before_rotation", before, ALGORITHM, accept=True),
                case("signed_after_rotation", after, ALGORITHM, accept=True),
                case("tampered_before_rotation", tampered(before), ALGORITHM, accept=False),
            ),
        )
        verify_with_every_library(rotated, subtests, phase="rotated")

        _keys(tmp_path, settings, "retire", old_kid, "--force")
        _eventually(
            lambda: True if old_kid not in _published(jwks_url) else None,
            "the retired key gone from the JWKS",
        )
        retired = Issued(
            ALGORITHM,
            jwks_url,
            subject(before),
            (
                case("signed_by_a_retired_key", before, ALGORITHM, accept=False),
                case("signed_after_rotation", after, ALGORITHM, accept=True),
            ),
        )
        verify_with_every_library(retired, subtests, phase="retired")
