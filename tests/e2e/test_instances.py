"""Several instances on one database, as an operator starts them: heartbeat rows,
memory:// counters beside a live instance, and a rolling upgrade's window."""

from __future__ import annotations

import secrets
import socket
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import authgate_command, clean_environment, running_server

pytestmark = pytest.mark.e2e

PASSWORD = "Moo00!_*&x"
FAST = {"PASSWORD_HASH_TIME_COST": "1", "PASSWORD_HASH_MEMORY_KIB": "8"}


def _production(tmp_path: Path) -> dict[str, str]:
    keys = tmp_path / "keys"
    subprocess.run(
        authgate_command("keys", "generate", "--out", str(keys)),
        check=True,
        capture_output=True,
        env=clean_environment(),
    )
    return {
        "AUTHGATE_ENV": "production",
        "JWT_PRIVATE_KEY_PATH": str(keys / "jwt-private.pem"),
        "JWT_PUBLIC_KEY_PATH": str(keys / "jwt-public.pem"),
        "PUBLIC_URL": "https://auth.example.test",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "SMTP_HOST": "127.0.0.1",
        "EMAIL_VERIFY_URL": "https://app.example.test/verify?token={token}",
        "PASSWORD_RESET_URL": "https://app.example.test/reset?token={token}",
        "EMAIL_VERIFICATION": "off",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}",
    }


def _serve_fails(workdir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        authgate_command("serve"),
        cwd=workdir,
        env=clean_environment(PORT="0", HOST="127.0.0.1", **settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The error lines (the log goes to stderr too): one line, naming what to fix."""
    return [line for line in result.stderr.splitlines() if line.startswith("authgate: error:")]


def _rows(database: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as connection:
        return list(connection.execute(sql))


def test_memory_counters_beside_a_live_instance_refuse_in_production(tmp_path: Path) -> None:
    production = _production(tmp_path)
    database = tmp_path / "shared.db"
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    with running_server(first_dir, **production) as first:
        assert httpx.get(f"{first.base_url}/readyz").status_code == 200
        ((host, pid, kind),) = _rows(
            database, "SELECT host, pid, rate_limit_storage FROM instances"
        )
        assert (host, pid, kind) == (socket.gethostname(), first.process.pid, "memory")
        refused = _serve_fails(second_dir, **production)
        assert refused.returncode == 2, refused.stderr
        (line,) = _errors(refused)
        assert line.startswith("authgate: error: RATE_LIMIT_STORAGE_URL"), line
        assert f"pid {first.process.pid}" in line
        assert "redis://" not in production.values()  # the URL itself is never named
        # The refused instance left no row; development only warns.
        assert len(_rows(database, "SELECT 1 FROM instances")) == 1
        with running_server(second_dir, **FAST, DATABASE_URL=production["DATABASE_URL"]) as dev:
            assert httpx.get(f"{dev.base_url}/readyz").status_code == 200
            assert "RATE_LIMIT_STORAGE_URL: is memory:// but 1 other" in dev.log()
            assert len(_rows(database, "SELECT 1 FROM instances")) == 2
    # A clean shutdown deletes each row: the next memory:// instance starts alone.
    assert _rows(database, "SELECT 1 FROM instances") == []
    with running_server(second_dir, **production) as again:
        assert httpx.get(f"{again.base_url}/readyz").status_code == 200


def _stamp(database: Path, revision: str, oldest: str) -> None:
    """What a newer release's migration leaves: its revision and its window."""
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        connection.execute("UPDATE schema_window SET oldest_code_revision = ?", (oldest,))


def test_this_release_serves_a_newer_database_within_its_window(tmp_path: Path) -> None:
    """The previous release beside the next one on one migrated database: this code
    plays the previous release, the next one's migration is stamped (its revision
    and OLDEST_CODE_SERVED), since no release after this one exists yet."""
    from authgate.storage.migrate import head_revision

    head = head_revision()
    assert head is not None
    nxt = f"{int(head) + 1:04d}"
    database = tmp_path / "shared.db"
    settings = {**FAST, "DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    with running_server(tmp_path, **settings) as old:
        http = httpx.Client(base_url=old.base_url)
        tokens = http.post("/register", json={"email": "r@cow.jp", "password": "Moo00!_*&x"})
        assert tokens.status_code in (200, 201), tokens.text
        # Expand: the next release still serves this code.
        _stamp(database, nxt, head)
        assert http.get("/readyz").status_code == 200
        refreshed = http.post("/refreshToken", json={"refreshToken": tokens.json()["refreshToken"]})
        assert refreshed.status_code == 200, refreshed.text
        # Contract: it no longer does; not ready, and the answer says what to do.
        _stamp(database, nxt, nxt)
        contract = http.get("/readyz")
        assert contract.status_code == 503
        assert "upgrade this instance" in contract.json()["detail"]
        assert f"database at {nxt} no longer serves code at {head}" in old.log()
    # A start of this code (AUTO_MIGRATE on) on the expanded database serves without
    # migrating; on the contracted one it refuses in one line.
    _stamp(database, nxt, head)
    with running_server(tmp_path, **settings) as restarted:
        assert httpx.get(f"{restarted.base_url}/readyz").status_code == 200
        assert f"not migrating: database at {nxt} is ahead" in restarted.log()
    _stamp(database, nxt, nxt)
    refused = _serve_fails(tmp_path, **settings)
    assert refused.returncode == 1, refused.stderr
    (line,) = _errors(refused)
    assert "upgrade this instance" in line, refused.stderr


def _previous_release(tmp_path: Path) -> Path:
    """The code as it was before the head migration was added (git archive of the
    parent of the commit that added it), or skip outside a git checkout."""
    from authgate.storage.migrate import head_revision

    checkout = Path(__file__).resolve().parents[2]
    versions = "src/authgate/storage/migrations/versions"
    try:
        (head_file,) = [p for p in (checkout / versions).glob(f"{head_revision()}_*.py")]
        added = subprocess.run(
            [
                "git",
                "log",
                "-1",
                "--diff-filter=A",
                "--format=%H",
                "--",
                f"{versions}/{head_file.name}",
            ],
            cwd=checkout,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        if not added:
            raise ValueError("the head migration is not committed yet")
        target = tmp_path / "previous"
        target.mkdir()
        archive = subprocess.run(
            ["git", "archive", f"{added}^", "src"],
            cwd=checkout,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True, timeout=60)
    except (OSError, ValueError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"no previous release to run: {exc}")
    return target / "src"


def test_the_previous_release_serves_beside_this_one_on_the_migrated_database(
    tmp_path: Path,
) -> None:
    """This release migrates; the previous release's code (same dependencies) goes on
    answering sign-ups, sign-ins and refreshes on that database: the head migration
    is an expansion. (Its /readyz still wants the exact revision: the window starts
    with the release that ships 0009; docs/deploy.md says so.)"""
    previous_src = _previous_release(tmp_path)
    database = tmp_path / "shared.db"
    settings = {
        **FAST,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        # One deployment, one secret (it seals the shared key ring).
        "SECRET_KEY": secrets.token_urlsafe(32),
    }
    (tmp_path / "new").mkdir()
    (tmp_path / "old").mkdir()
    with running_server(tmp_path / "new", **settings) as new:
        with running_server(
            tmp_path / "old", **settings, AUTO_MIGRATE="false", PYTHONPATH=str(previous_src)
        ) as old:
            # Only this release writes heartbeat rows: the other process is the old code.
            assert [pid for (pid,) in _rows(database, "SELECT pid FROM instances")] == [
                new.process.pid
            ]
            for server, email in ((old, "old@cow.jp"), (new, "new@cow.jp")):
                signed_up = httpx.post(
                    f"{server.base_url}/register", json={"email": email, "password": PASSWORD}
                )
                assert signed_up.status_code == 200, signed_up.text
                # Each release refreshes what the other issued.
                other = new if server is old else old
                refreshed = httpx.post(
                    f"{other.base_url}/refreshToken",
                    json={"refreshToken": signed_up.json()["refreshToken"]},
                )
                assert refreshed.status_code == 200, refreshed.text
                signed_in = httpx.post(
                    f"{other.base_url}/login", json={"email": email, "password": PASSWORD}
                )
                assert signed_in.status_code == 200, signed_in.text
            assert httpx.get(f"{new.base_url}/readyz").status_code == 200
        assert "Traceback" not in old.log(settle_seconds=0)
