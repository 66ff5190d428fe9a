"""Start-up as a user meets it: production refusals, warnings printed once per
start, and the small CLI behaviours (``--version``, ``| head``, MariaDB notes)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.server import RunningServer, authgate_command, clean_environment, running_server

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
        "USING DEVELOPMENT SIGNING KEYS",
        "RATE_LIMIT_STORAGE_URL:",
        "PASSWORD_HASH_MEMORY_KIB / PASSWORD_HASH_TIME_COST:",
        "REFRESH_REUSE_LEEWAY_SECONDS:",
        "PUBLIC_URL:",  # the default issuer is http://127.0.0.1:PORT
    ]
    for marker in expected:
        assert log.count(marker) == 1, (marker, log)
    assert log.count("(allowed in development only)") == len(expected) - 1
