"""Start-up as a user meets it: production refusals, warnings printed once per
start, and the small CLI behaviours (``--version``, ``| head``, MariaDB notes)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.server import RunningServer, authgate_command, clean_environment, running_server
from tests.support.databases import ensure_mariadb

pytestmark = pytest.mark.e2e


def _keys(tmp_path: Path) -> dict[str, str]:
    keys = tmp_path / "keys"
    subprocess.run(
        authgate_command("keys", "generate", "--out", str(keys)),
        check=True,
        capture_output=True,
        env=clean_environment(),
    )
    return {
        "JWT_PRIVATE_KEY_PATH": str(keys / "jwt-private.pem"),
        "JWT_PUBLIC_KEY_PATH": str(keys / "jwt-public.pem"),
    }


def _serve(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        authgate_command("serve"),
        cwd=tmp_path,
        env=clean_environment(**{"PORT": "0", **settings}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "unsafe"),
    [
        ("RATE_LIMIT_ENABLED", {"RATE_LIMIT_ENABLED": "false"}),
        ("RATE_LIMIT_STORAGE_URL", {"WORKERS": "2"}),
        ("PASSWORD_HASH_MEMORY_KIB", {"PASSWORD_HASH_MEMORY_KIB": "8"}),
        ("PUBLIC_URL", {"PUBLIC_URL": "http://auth.example.test"}),
        ("JWT_PRIVATE_KEY_PATH", {"KEY_MODE": "0644"}),
    ],
)
def test_production_refuses_an_unsafe_setting_with_one_line(
    tmp_path: Path, variable: str, unsafe: dict[str, str]
) -> None:
    settings = {
        **_keys(tmp_path),
        "AUTHGATE_ENV": "production",
        "PUBLIC_URL": "https://auth.example.test",
        **unsafe,
    }
    if mode := settings.pop("KEY_MODE", None):
        Path(settings["JWT_PRIVATE_KEY_PATH"]).chmod(int(mode, 8))
    result = _serve(tmp_path, **settings)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"authgate: error: {variable}"), lines[0]
    assert "AUTHGATE_ENV=production" in lines[0]
    assert not (tmp_path / "authgate.db").exists()  # refused before touching anything


def _wait_for_workers(server: RunningServer, count: int, timeout: float = 90.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = server.log()
        if log.count("Application startup complete") >= count:
            return log
        time.sleep(0.2)
    raise AssertionError(f"{count} workers did not start:\n{server.log()}")


def test_development_warnings_print_once_per_start_not_per_worker(tmp_path: Path) -> None:
    settings = {
        "WORKERS": "2",  # with memory:// counters: a warning
        "PASSWORD_HASH_TIME_COST": "1",  # below OWASP: a warning
        "PASSWORD_HASH_MEMORY_KIB": "8",
        "REFRESH_REUSE_LEEWAY_SECONDS": "120",  # a warning
    }
    with running_server(tmp_path, **settings) as server:
        log = _wait_for_workers(server, 2)
    expected = [
        "RATE_LIMIT_STORAGE_URL:",
        "PASSWORD_HASH_MEMORY_KIB / PASSWORD_HASH_TIME_COST:",
        "REFRESH_REUSE_LEEWAY_SECONDS:",
        "PUBLIC_URL:",  # the default issuer is http://127.0.0.1:PORT
    ]
    for marker in expected:
        assert log.count(marker) == 1, (marker, log)
    assert log.count("(allowed in development only)") == len(expected)
    # Two workers, one database ring: created once, under its lock.
    assert log.count("created the signing-key ring") == 1, log


def test_migrate_sql_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    process = subprocess.Popen(
        authgate_command("migrate", "--sql"),
        cwd=tmp_path,
        env=clean_environment(DATABASE_URL="sqlite+aiosqlite:///x.db"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    # The reader goes away before the DDL is written, as `| head -1` does after a line.
    process.stdout.close()
    with process.stderr:
        stderr = process.stderr.read()
    assert process.wait(timeout=60) in (0, 141)
    assert stderr == ""


def test_migrate_sql_piped_to_head(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            "bash",
            "-c",
            'set -o pipefail; "$@" 2>err.txt | head -c 10 >/dev/null; echo "status=$?"',
            "bash",
            *authgate_command("migrate", "--sql"),
        ],
        cwd=tmp_path,
        env=clean_environment(DATABASE_URL="sqlite+aiosqlite:///x.db"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() in ("status=0", "status=141")
    assert (tmp_path / "err.txt").read_text() == ""


async def _recreate(url: URL, *, drop_only: bool = False) -> None:
    server = create_async_engine(url.set(database=""))
    try:
        async with server.connect() as connection:
            await connection.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
            if not drop_only:
                await connection.execute(
                    text(f"CREATE DATABASE `{url.database}` CHARACTER SET utf8mb4")
                )
    finally:
        await server.dispose()


@pytest.mark.mariadb
def test_migrate_on_mariadb_prints_no_primary_key_name_notes(tmp_path: Path) -> None:
    shared = ensure_mariadb()  # skips (or fails in CI) without MariaDB
    # A database of its own: the shared one is already migrated.
    url = shared.set(database=f"{shared.database}"[:56] + "_migrate")
    asyncio.run(_recreate(url))
    try:
        result = subprocess.run(
            authgate_command("migrate"),
            cwd=tmp_path,
            env=clean_environment(DATABASE_URL=url.render_as_string(hide_password=False)),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        asyncio.run(_recreate(url, drop_only=True))
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Running upgrade" in output  # it did create the tables
    assert "ignored for PRIMARY key" not in output
    assert "pk_users" not in output
