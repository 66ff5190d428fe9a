"""The SQLite database and the data directory are created private, whatever the umask."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import authgate_command, clean_environment, running_server

pytestmark = pytest.mark.e2e


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o277])
def test_migrate_creates_a_private_database_in_a_private_directory(
    tmp_path: Path, umask: int
) -> None:
    database = tmp_path / "var" / "authgate" / "authgate.db"
    env = clean_environment(DATABASE_URL=f"sqlite+aiosqlite:///{database}")
    result = subprocess.run(
        authgate_command("migrate"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        umask=umask,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert _mode(database) == 0o600
    assert _mode(database.parent) == 0o700
    # The database is real, not just an empty placeholder.
    assert database.stat().st_size > 0


def test_serve_keeps_the_database_its_wal_and_the_data_directory_private(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    database = data_dir / "db" / "authgate.db"
    with running_server(
        tmp_path,
        AUTHGATE_DATA_DIR=str(data_dir),
        DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        PASSWORD_HASH_TIME_COST="1",
        PASSWORD_HASH_MEMORY_KIB="8",
    ) as server:
        signup = httpx.post(
            f"{server.base_url}/api/v1/signup/credentials",
            json={
                "email": "cow@cow.jp",
                "password": "Moo00!_*&x",
                "passwordConfirm": "Moo00!_*&x",
                "firstName": "Melvin",
                "lastName": "Friedman",
            },
            timeout=10,
        )
        assert signup.status_code == 200, signup.text
        # While the server runs, the WAL holds the new password hash too.
        wal, shm = Path(f"{database}-wal"), Path(f"{database}-shm")
        assert wal.exists()
        assert shm.exists()
        modes = {p.name: _mode(p) for p in (database, wal, shm)}
        assert modes == {p.name: 0o600 for p in (database, wal, shm)}
        assert _mode(database.parent) == 0o700
        assert _mode(data_dir) == 0o700
        assert _mode(data_dir / "secret.key") == 0o600
        # The signing keys live in the database (sealed), not in files.
        assert not (data_dir / "keys").exists()


def test_an_existing_exposed_database_is_named_in_a_warning(tmp_path: Path) -> None:
    database = tmp_path / "authgate.db"
    env = clean_environment(DATABASE_URL=f"sqlite+aiosqlite:///{database}")
    subprocess.run(authgate_command("migrate"), cwd=tmp_path, env=env, check=True, timeout=120)
    database.chmod(0o644)
    result = subprocess.run(
        authgate_command("migrate"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"chmod 600 {database}" in result.stdout + result.stderr
    assert _mode(database) == 0o644  # an operator's choice is reported, not overridden
