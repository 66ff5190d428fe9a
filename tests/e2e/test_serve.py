"""End to end: the real ``authgate serve`` process, driven over real HTTP."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy.engine import URL

from tests.e2e.server import RunningServer, authgate_command, clean_environment, running_server
from tests.support.databases import empty_mariadb, ensure_mariadb

pytestmark = pytest.mark.e2e

CHEAP_HASHING = {
    "PASSWORD_HASH_TIME_COST": "1",
    "PASSWORD_HASH_MEMORY_KIB": "8",
    "REFRESH_REUSE_LEEWAY_SECONDS": "1",
}


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    settings = dict(CHEAP_HASHING)
    mariadb: URL | None = None
    if request.param == "mariadb":
        import asyncio

        mariadb = ensure_mariadb()
        asyncio.run(empty_mariadb(mariadb))
        settings["DATABASE_URL"] = mariadb.render_as_string(hide_password=False)
    with running_server(tmp_path, **settings) as running:
        yield running
    if mariadb is not None:
        import asyncio

        asyncio.run(empty_mariadb(mariadb))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_whole_journey(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        signup = http.post(
            "/api/v1/signup/credentials",
            json={
                "email": "cow@cow.jp",
                "password": "Moo00!_*&x",
                "passwordConfirm": "Moo00!_*&x",
                "firstName": "Melvin",
                "lastName": "Friedman",
            },
        )
        assert signup.status_code == 200, signup.text
        signin = http.post(
            "/api/v1/auth/credentials", json={"email": "COW@cow.jp", "password": "Moo00!_*&x"}
        )
        assert signin.status_code == 200
        tokens = signin.json()

        # A resource server verifies our token from the JWKS alone, fetched over HTTP.
        jwks_client = jwt.PyJWKClient(f"{server.base_url}/.well-known/jwks.json")
        signing_key = jwks_client.get_signing_key_from_jwt(tokens["accessToken"])
        claims = jwt.decode(
            tokens["accessToken"],
            signing_key.key,
            algorithms=["RS256"],
            audience="authgate",
            # PUBLIC_URL is unset: the issuer follows HOST and the free PORT.
            issuer=server.base_url,
        )
        assert claims["email"] == "cow@cow.jp"

        for method in ("GET", "POST"):
            for path in ("/secure", "/secureWithFunction", "/secureWithFuction"):
                response = http.request(method, path, headers=_bearer(tokens["accessToken"]))
                assert response.status_code == 200, (method, path)
                assert response.json()["userId"] == claims["sub"]
                refused = http.request(method, path)
                assert refused.status_code == 401
                assert "invalid_token" in refused.headers["www-authenticate"]
        me = http.get("/api/v1/me", headers=_bearer(tokens["accessToken"]))
        assert me.json()["email"] == "cow@cow.jp"

        rotated = http.post("/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]})
        assert rotated.status_code == 200
        successor = rotated.json()["refreshToken"]
        time.sleep(1.2)  # past REFRESH_REUSE_LEEWAY_SECONDS=1 of the real process
        replay = http.post("/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]})
        assert replay.status_code == 401
        assert http.post("/api/v1/refresh", json={"refreshToken": successor}).status_code == 401

        # The Serverless seed's routes on the same server.
        registered = http.post(
            "/register",
            json={"email": "seed@cow.jp", "password": "Moo00!_*&x", "displayName": "Seed"},
        )
        assert registered.status_code == 200
        login = http.post("/login", json={"email": "seed@cow.jp", "password": "Moo00!_*&x"})
        assert login.status_code == 200
        refreshed = http.post(
            "/refreshToken",
            json={"email": "seed@cow.jp", "refreshToken": login.json()["refreshToken"]},
        )
        assert refreshed.status_code == 200
        revoked = http.post(
            "/revokeToken",
            json={"email": "seed@cow.jp", "refreshToken": refreshed.json()["refreshToken"]},
        )
        assert revoked.status_code == 200
        gone = http.post("/refreshToken", json={"refreshToken": refreshed.json()["refreshToken"]})
        assert gone.status_code == 401

        # v1 logout.
        fresh = http.post(
            "/api/v1/auth/credentials", json={"email": "cow@cow.jp", "password": "Moo00!_*&x"}
        ).json()
        assert (
            http.post("/api/v1/revoke", json={"refreshToken": fresh["refreshToken"]}).json() == {}
        )
        ended = http.post("/api/v1/refresh", json={"refreshToken": fresh["refreshToken"]})
        assert ended.status_code == 401

        assert http.get("/readyz").json() == {"status": "ok"}
        assert http.get("/openapi.json").status_code == 200
        assert http.get("/docs").status_code == 200
        too_big = http.post(
            "/api/v1/auth/credentials",
            content=b"{" + b" " * 70_000 + b"}",
            headers={"content-type": "application/json"},
        )
        assert too_big.status_code == 413
    log = server.log()
    assert "Moo00!_*&x" not in log
    assert tokens["refreshToken"] not in log
    assert tokens["accessToken"] not in log


def test_first_run_creates_the_key_ring_and_keeps_it(tmp_path: Path) -> None:
    with running_server(tmp_path, **CHEAP_HASHING) as server:
        assert "created the signing-key ring" in server.log()
        assert "USING A DEVELOPMENT SERVER SECRET (created now" in server.log()
        assert (tmp_path / "authgate.db").exists()
        # The ring lives in the database: no key files are written any more.
        assert not (tmp_path / ".authgate" / "keys").exists()
        secret = tmp_path / ".authgate" / "secret.key"
        assert secret.stat().st_mode & 0o777 == 0o600
        assert secret.parent.stat().st_mode & 0o777 == 0o700
        first_secret = secret.read_bytes()
        kids = [
            key["kid"]
            for key in httpx.get(f"{server.base_url}/.well-known/jwks.json").json()["keys"]
        ]
    with running_server(tmp_path, **CHEAP_HASHING) as server:
        assert "created earlier" in server.log()
        assert "created the signing-key ring" not in server.log()
        same = [
            key["kid"]
            for key in httpx.get(f"{server.base_url}/.well-known/jwks.json").json()["keys"]
        ]
    assert same == kids
    assert secret.read_bytes() == first_secret


def _secret_file(path: Path, mode: int = 0o600) -> Path:
    path.write_bytes(os.urandom(32))
    path.chmod(mode)
    return path


def test_production_refuses_a_missing_or_exposed_server_secret(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    subprocess.run(
        authgate_command("keys", "generate", "--out", str(keys)),
        check=True,
        capture_output=True,
        env=clean_environment(),
    )
    production = {
        "AUTHGATE_ENV": "production",
        "JWT_PRIVATE_KEY_PATH": str(keys / "jwt-private.pem"),
        "JWT_PUBLIC_KEY_PATH": str(keys / "jwt-public.pem"),
        "PUBLIC_URL": "https://auth.example.test",
        "SMTP_HOST": "127.0.0.1",
        "EMAIL_VERIFY_URL": "https://app.example.test/verify?token={token}",
        "PASSWORD_RESET_URL": "https://app.example.test/reset?token={token}",
    }
    missing = _serve_fails(tmp_path, **production)
    assert "SECRET_KEY / SECRET_KEY_PATH" in missing
    readable = _secret_file(tmp_path / "readable.key", 0o644)
    exposed = _serve_fails(tmp_path, SECRET_KEY_PATH=str(readable), **production)
    assert exposed.startswith("authgate: error: SECRET_KEY_PATH: ")
    assert "readable by group or others" in exposed
    short = _serve_fails(tmp_path, SECRET_KEY="too-short-to-be-a-secret", **production)
    assert short.startswith("authgate: error: SECRET_KEY: ")
    assert "too-short" not in short
    private = str(_secret_file(tmp_path / "private.key"))
    both = _serve_fails(
        tmp_path, SECRET_KEY_PATH=private, SECRET_KEY=secrets.token_urlsafe(32), **production
    )
    assert "SECRET_KEY and SECRET_KEY_PATH are both set" in both
    assert not (tmp_path / ".authgate" / "secret.key").exists()


def _serve_fails(tmp_path: Path, **settings: str) -> str:
    result = subprocess.run(
        authgate_command("serve"),
        cwd=tmp_path,
        env=clean_environment(**{"PORT": "0", **settings}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_bad_settings_stop_start_up_with_one_line_naming_the_variable(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    subprocess.run(
        authgate_command("keys", "generate", "--out", str(keys)),
        check=True,
        capture_output=True,
        env=clean_environment(),
    )
    private, public = str(keys / "jwt-private.pem"), str(keys / "jwt-public.pem")
    assert "JWT_ALGORITHM" in _serve_fails(tmp_path, JWT_ALGORITHM="HS256")
    assert "DATABASE_URL" in _serve_fails(tmp_path, DATABASE_URL="not a url")
    assert "JWT_PUBLIC_KEY_PATH is set without JWT_PRIVATE_KEY_PATH" in _serve_fails(
        tmp_path, JWT_PUBLIC_KEY_PATH=public
    )
    assert "JWT_PRIVATE_KEY_PATH" in _serve_fails(
        tmp_path, JWT_PRIVATE_KEY_PATH=str(tmp_path / "missing.pem")
    )
    assert "JWT_PRIVATE_KEY_PATH" in _serve_fails(
        tmp_path, JWT_PRIVATE_KEY_PATH=private, JWT_PUBLIC_KEY_PATH=public, JWT_ALGORITHM="ES256"
    )
    other = tmp_path / "other"
    subprocess.run(
        authgate_command("keys", "generate", "--out", str(other)),
        check=True,
        capture_output=True,
        env=clean_environment(),
    )
    assert "JWT_PUBLIC_KEY_PATH" in _serve_fails(
        tmp_path, JWT_PRIVATE_KEY_PATH=private, JWT_PUBLIC_KEY_PATH=str(other / "jwt-public.pem")
    )
    assert "PORT" in _serve_fails(tmp_path, PORT="seventy")


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "EdDSA"])
def test_configured_keys_of_each_algorithm(tmp_path: Path, algorithm: str) -> None:
    keys = tmp_path / "keys"
    generated = subprocess.run(
        authgate_command("keys", "generate", "--out", str(keys), "--algorithm", algorithm),
        check=True,
        capture_output=True,
        text=True,
        env=clean_environment(),
    )
    assert f"JWT_ALGORITHM={algorithm}" in generated.stdout
    assert (keys / "jwt-private.pem").stat().st_mode & 0o777 == 0o600
    settings = {
        # Production refuses cheap argon2 and an http issuer.
        "JWT_PRIVATE_KEY_PATH": str(keys / "jwt-private.pem"),
        "JWT_PUBLIC_KEY_PATH": str(keys / "jwt-public.pem"),
        "JWT_ALGORITHM": algorithm,
        "AUTHGATE_ENV": "production",
        "PUBLIC_URL": "https://auth.example.test",
        "SECRET_KEY_PATH": str(_secret_file(tmp_path / "secret.key")),
        # Production refuses to start without SMTP (issue 11); nothing is mailed here.
        "SMTP_HOST": "127.0.0.1",
        "EMAIL_VERIFY_URL": "https://app.example.test/verify?token={token}",
        "PASSWORD_RESET_URL": "https://app.example.test/reset?token={token}",
        "EMAIL_VERIFICATION": "off",
    }
    with (
        running_server(tmp_path, **settings) as server,
        httpx.Client(base_url=server.base_url) as http,
    ):
        tokens = http.post("/register", json={"email": "k@cow.jp", "password": "Moo00!_*&x"}).json()
        assert jwt.get_unverified_header(tokens["accessToken"])["alg"] == algorithm
        jwk = http.get("/.well-known/jwks.json").json()["keys"][0]
        assert jwk["alg"] == algorithm
        assert jwk["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)
        assert http.get("/secure", headers=_bearer(tokens["accessToken"])).status_code == 200
        assert "DEVELOPMENT" not in server.log()


def test_migrate_sql_prints_ddl_for_the_configured_dialect(tmp_path: Path) -> None:
    for url, marker in (
        ("sqlite+aiosqlite:///x.db", "CREATE TABLE users"),
        ("mysql+asyncmy://root@127.0.0.1/x", "ENGINE=InnoDB"),
    ):
        result = subprocess.run(
            authgate_command("migrate", "--sql"),
            cwd=tmp_path,
            env=clean_environment(DATABASE_URL=url),
            capture_output=True,
            text=True,
            check=True,
        )
        assert marker in result.stdout
        assert "CREATE TABLE refresh_tokens" in result.stdout
    assert not (tmp_path / "x.db").exists()  # --sql touches no database


def test_version_and_help() -> None:
    version = subprocess.run(
        authgate_command("version"), capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("authgate ")
    flag = subprocess.run(authgate_command("--version"), capture_output=True, text=True, check=True)
    assert flag.stdout == version.stdout
    for command in (
        ["--help"],
        ["serve", "--help"],
        ["migrate", "--help"],
        ["keys", "--help"],
        ["keys", "generate", "--help"],
        ["audit", "--help"],
        ["version", "--help"],
    ):
        shown = subprocess.run(
            authgate_command(*command), capture_output=True, text=True, check=True
        )
        assert "usage: authgate" in shown.stdout


def test_json_logs_and_the_audit_command(tmp_path: Path) -> None:
    import json

    settings = {**CHEAP_HASHING, "LOG_FORMAT": "json"}
    with (
        running_server(tmp_path, **settings) as server,
        httpx.Client(base_url=server.base_url) as http,
    ):
        tokens = http.post(
            "/register", json={"email": "log@cow.jp", "password": "Moo00!_*&x"}
        ).json()
        http.post("/login", json={"email": "log@cow.jp", "password": "wrong-password"})
        user_id = jwt.decode(tokens["accessToken"], options={"verify_signature": False})["sub"]
        log = server.log()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert records, log
    failed = [r for r in records if r.get("event") == "signin_failed"]
    assert failed
    assert failed[0]["reason"] == "wrong_password"
    assert failed[0]["user_id"] == user_id
    assert "wrong-password" not in log
    # ACCESS_LOG defaults to true: uvicorn's access lines come out as JSON too.
    assert any(r.get("logger") == "uvicorn.access" for r in records), log

    def audit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            authgate_command("audit", *args),
            cwd=tmp_path,
            env=clean_environment(),
            capture_output=True,
            text=True,
            check=False,
        )

    everything = audit("--json", "--since", "1h")
    assert everything.returncode == 0, everything.stderr
    names = [json.loads(line)["event"] for line in everything.stdout.splitlines()]
    assert names == ["signup", "signin_failed"]
    mine = audit("--user", user_id)
    assert mine.returncode == 0
    assert "signin_failed" in mine.stdout
    assert "reason=wrong_password" in mine.stdout
    for bad in (["--since", "yesterday-ish"], ["--user", "not-a-uuid"]):
        refused = audit(*bad)
        assert refused.returncode == 2
        assert refused.stderr.startswith("authgate: error: --")


def test_google_apple_and_a_linked_account(tmp_path: Path) -> None:
    from tests.support.idp import FakeIdp, apple_claims, google_claims

    with FakeIdp("google") as google, FakeIdp("apple") as apple:
        settings = {
            **CHEAP_HASHING,
            "JWT_AUDIENCE_GOOGLE": "web-client",
            "GOOGLE_JWKS_URL": google.jwks_url,
            "JWT_AUDIENCE_APPLE": "jp.timelapseme.app",
            "APPLE_JWKS_URL": apple.jwks_url,
        }
        with (
            running_server(tmp_path, **settings) as server,
            httpx.Client(base_url=server.base_url, timeout=10) as http,
        ):
            now = time.time()
            # Google sign-up: a new account from a verified Google identity.
            google_token = google.sign(google_claims(now=now, client_id="web-client"))
            signup = http.post("/api/v1/signup/google", json={"jwt": google_token})
            assert signup.status_code == 200, signup.text
            me = http.get("/api/v1/me", headers=_bearer(signup.json()["accessToken"])).json()
            assert me["providers"] == ["google"]

            # Apple: sign-up once (names come from the app), then sign in.
            apple_token = apple.sign(apple_claims(now=now, bundle_id="jp.timelapseme.app"))
            first = http.post(
                "/api/v1/signup/apple",
                json={"jwt": apple_token, "firstName": "Melvin", "lastName": "Friedman"},
            )
            assert first.status_code == 200, first.text
            # An ID token starts one session: the same one again is refused...
            replayed = http.post("/api/v1/auth/apple", json={"jwt": apple_token})
            assert replayed.status_code == 401
            # ...and the next sign-in at Apple gives a new one.
            apple_token = apple.sign(
                apple_claims(now=now + 1, bundle_id="jp.timelapseme.app", auth_time=int(now) + 1)
            )
            signin = http.post("/api/v1/auth/apple", json={"jwt": apple_token})
            assert signin.status_code == 200
            apple_me = http.get("/api/v1/me", headers=_bearer(signin.json()["accessToken"]))
            assert apple_me.json()["firstName"] == "Melvin"

            # Linked account: a password account, then a Google Workspace account
            # (hd: Google vouches for the address) signs in to it (and the unverified
            # password is dropped).
            http.post("/register", json={"email": "bob@example.com", "password": "Moo00!_*&x"})
            bob = google.sign(
                google_claims(
                    now=now,
                    client_id="web-client",
                    sub="bob-sub",
                    email="bob@example.com",
                    hd="example.com",
                )
            )
            linked = http.post("/api/v1/auth/google", json={"jwt": bob})
            assert linked.status_code == 200, linked.text
            linked_me = http.get("/api/v1/me", headers=_bearer(linked.json()["accessToken"]))
            assert linked_me.json()["providers"] == ["google"]
            assert linked_me.json()["email"] == "bob@example.com"
            stale = http.post("/login", json={"email": "bob@example.com", "password": "Moo00!_*&x"})
            assert stale.status_code == 401

            # The server fetched each provider's keys once, over real HTTP.
            assert google.request_count == 1
            assert apple.request_count == 1


def test_migrate_brings_a_fresh_database_to_head_and_names_a_bad_one(tmp_path: Path) -> None:
    import sqlite3

    from authgate.storage.migrate import head_revision

    database = tmp_path / "fresh.db"
    migrated = subprocess.run(
        authgate_command("migrate"),
        cwd=tmp_path,
        env=clean_environment(DATABASE_URL=f"sqlite+aiosqlite:///{database}"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stderr
    with sqlite3.connect(database) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == head_revision()

    unreachable = subprocess.run(
        authgate_command("migrate"),
        cwd=tmp_path,
        env=clean_environment(DATABASE_URL="mysql+asyncmy://root@127.0.0.1:1/none"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert unreachable.returncode == 1
    lines = [line for line in unreachable.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, unreachable.stderr
    assert lines[0].startswith("authgate: error: DATABASE_URL / MYSQL_*:")
