"""Key rotation on real ``authgate serve`` processes, driven by the real CLI.

A token signed before ``authgate keys rotate`` still verifies (at /secure and in
PyJWT's ``PyJWKClient`` against the live JWKS); new tokens carry the new kid;
after ``keys retire --force`` the old token is refused; two instances on one
MariaDB publish the same JWKS and accept each other's tokens after a rotation.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.e2e.server import RunningServer, authgate_command, clean_environment, running_server
from tests.support.databases import empty_mariadb, ensure_mariadb

pytestmark = pytest.mark.e2e

RING = {
    "PASSWORD_HASH_TIME_COST": "1",
    "PASSWORD_HASH_MEMORY_KIB": "8",
    # A rotation reaches every instance within a second; a next key may be
    # promoted once published for JWKS_MAX_AGE_SECONDS + 1 s = 2 s.
    "KEY_RING_REFRESH_SECONDS": "1",
    "JWKS_MAX_AGE_SECONDS": "1",
}
PASSWORD = "Moo00!_*&x"


def keys_cli(workdir: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        authgate_command("keys", *args),
        cwd=workdir,
        env=clean_environment(**settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def sign_up(server: RunningServer, email: str) -> str:
    response = httpx.post(
        f"{server.base_url}/api/v1/signup/credentials",
        json={
            "email": email,
            "password": PASSWORD,
            "passwordConfirm": PASSWORD,
            "firstName": "Melvin",
            "lastName": "Friedman",
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["accessToken"]
    return token


def sign_in(server: RunningServer, email: str) -> str:
    response = httpx.post(
        f"{server.base_url}/api/v1/auth/credentials",
        json={"email": email, "password": PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["accessToken"]
    return token


def secure(server: RunningServer, token: str) -> int:
    response = httpx.get(
        f"{server.base_url}/secure", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    return response.status_code


def kid(token: str) -> str:
    value: str = jwt.get_unverified_header(token)["kid"]
    return value


def jwks(server: RunningServer) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{server.base_url}/.well-known/jwks.json").json()
    return body


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the ring refresh"
        time.sleep(0.2)


def third_party_claims(server: RunningServer, token: str) -> dict[str, Any]:
    # What any resource server does: keys from the live JWKS, picked by kid.
    client = jwt.PyJWKClient(f"{server.base_url}/.well-known/jwks.json", cache_keys=False)
    key = client.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["RS256"], audience="authgate", issuer=server.base_url
    )
    return claims


def test_rotate_then_retire_on_a_running_server(tmp_path: Path) -> None:
    with running_server(tmp_path, **RING) as server:
        assert "created the signing-key ring" in server.log()
        before = sign_up(server, "cow@cow.jp")
        old_kid = kid(before)
        published = [key["kid"] for key in jwks(server)["keys"]]
        assert len(published) == 2  # current + next
        assert old_kid in published
        upcoming = next(k for k in published if k != old_kid)

        time.sleep(2.2)  # the next key has been published long enough
        rotated = keys_cli(tmp_path, "rotate", **RING)
        assert rotated.returncode == 0, rotated.stderr
        assert f"current  {upcoming}" in rotated.stdout
        assert f"previous {old_kid}" in rotated.stdout

        eventually(lambda: kid(sign_in(server, "cow@cow.jp")) == upcoming)
        assert secure(server, before) == 200
        assert third_party_claims(server, before)["email"] == "cow@cow.jp"
        after = sign_in(server, "cow@cow.jp")
        assert third_party_claims(server, after)["sub"] == third_party_claims(server, before)["sub"]

        listed = keys_cli(tmp_path, "list", **RING)
        assert listed.returncode == 0, listed.stderr
        states = {line.split()[0]: line.split()[1] for line in listed.stdout.splitlines()[1:]}
        assert states[old_kid] == "previous"
        assert states[upcoming] == "current"
        assert sorted(states.values()) == ["current", "next", "previous"]

        refused = keys_cli(tmp_path, "retire", old_kid, **RING)
        assert refused.returncode == 2
        assert "may still be live" in refused.stderr
        current = keys_cli(tmp_path, "retire", upcoming, "--force", **RING)
        assert current.returncode == 2
        assert "current key" in current.stderr

        retired = keys_cli(tmp_path, "retire", old_kid, "--force", **RING)
        assert retired.returncode == 0, retired.stderr
        # /secure had this token in its verified-token cache: retirement empties it.
        eventually(lambda: secure(server, before) == 401)
        assert old_kid not in {key["kid"] for key in jwks(server)["keys"]}
        assert secure(server, after) == 200


def test_a_static_ring_refuses_rotation(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    subprocess.run(
        authgate_command("keys", "generate", "--out", str(keys)),
        check=True,
        capture_output=True,
        env=clean_environment(),
    )
    static = {"JWT_PRIVATE_KEY_PATH": str(keys / "jwt-private.pem")}
    result = keys_cli(tmp_path, "rotate", **static)
    assert result.returncode == 2
    assert "the key ring is static (JWT_PRIVATE_KEY_PATH is set)" in result.stderr
    listed = keys_cli(tmp_path, "list", "--json", **static)
    assert listed.returncode == 0, listed.stderr
    assert '"state": "current"' in listed.stdout


@pytest.fixture
def shared_mariadb() -> Iterator[str]:
    url = ensure_mariadb()  # skips locally (fails in CI) without MariaDB
    asyncio.run(empty_mariadb(url))
    yield url.render_as_string(hide_password=False)
    asyncio.run(empty_mariadb(url))


@pytest.mark.mariadb
def test_two_instances_share_one_ring(tmp_path: Path, shared_mariadb: str) -> None:
    # Nothing shared but the database and the server secret (and the issuer name,
    # which otherwise follows each process's own port).
    settings = {
        **RING,
        "DATABASE_URL": shared_mariadb,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "JWT_ISSUER": "http://auth.example.test",
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        running_server(tmp_path / "a", **settings) as first,
        running_server(tmp_path / "b", **settings) as second,
    ):
        assert jwks(first) == jwks(second)
        from_first = sign_up(first, "cow@cow.jp")
        from_second = sign_up(second, "moo@cow.jp")
        assert kid(from_first) == kid(from_second)
        assert secure(second, from_first) == 200
        assert secure(first, from_second) == 200

        time.sleep(2.2)
        rotated = keys_cli(tmp_path, "rotate", **settings)
        assert rotated.returncode == 0, rotated.stderr
        new_kid = rotated.stdout.split()[1]
        eventually(
            lambda: (
                kid(sign_in(first, "cow@cow.jp")) == new_kid
                and kid(sign_in(second, "moo@cow.jp")) == new_kid
            )
        )
        assert jwks(first) == jwks(second)
        assert len(jwks(first)["keys"]) == 3
        new_first, new_second = sign_in(first, "cow@cow.jp"), sign_in(second, "moo@cow.jp")
        for server in (first, second):
            for token in (from_first, from_second, new_first, new_second):
                assert secure(server, token) == 200


def test_a_ring_sealed_under_another_secret_needs_it_as_previous(tmp_path: Path) -> None:
    old, new = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with running_server(tmp_path, **RING, SECRET_KEY=old) as server:
        kids = [key["kid"] for key in jwks(server)["keys"]]
    # The secret changed without SECRET_KEY_PREVIOUS: the keys cannot be opened,
    # and the server says so instead of serving without them.
    refused = subprocess.run(
        authgate_command("serve"),
        cwd=tmp_path,
        env=clean_environment(PORT="0", **RING, SECRET_KEY=new),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0
    assert "SECRET_KEY_PREVIOUS" in refused.stdout + refused.stderr
    with running_server(tmp_path, **RING, SECRET_KEY=new, SECRET_KEY_PREVIOUS=old) as server:
        assert [key["kid"] for key in jwks(server)["keys"]] == kids
