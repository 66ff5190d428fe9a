"""Run the real ``authgate serve`` process on a free port, as a user would."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def authgate_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "authgate", *args]


def clean_environment(**values: str) -> dict[str, str]:
    """The parent's environment without any authgate setting, plus ``values``."""
    names = {
        "DATABASE_URL", "MYSQL_HOST", "JWT_PRIVATE_KEY_PATH", "JWT_PUBLIC_KEY_PATH",
        "JWT_ALGORITHM", "AUTHGATE_ENV", "PORT", "HOST", "AUTHGATE_DATA_DIR",
        "PUBLIC_URL", "JWT_ISSUER", "WORKERS", "DOCS_ENABLED",
        "SECRET_KEY", "SECRET_KEY_PATH", "SECRET_KEY_PREVIOUS", "SECRET_KEY_PREVIOUS_PATH",
        "JWT_PREVIOUS_PUBLIC_KEY_PATHS", "KEY_ROTATION_DAYS", "KEY_RING_REFRESH_SECONDS",
        "JWKS_MAX_AGE_SECONDS", "METRICS_PORT", "METRICS_HOST", "PROMETHEUS_MULTIPROC_DIR",
    }  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    env.update(values)
    return env


@dataclass
class RunningServer:
    base_url: str
    process: subprocess.Popen[str]
    log_path: Path

    def log(self, settle_seconds: float = 0.3) -> str:
        """The server's output so far.

        The server writes its log from a background thread, a moment after the
        request that caused a line has been answered: while it runs, wait until
        the file has stopped growing for ``settle_seconds`` (10 s at most).
        """
        if self.process.poll() is None:
            deadline = time.monotonic() + 10
            size = -1
            while time.monotonic() < deadline:
                current = self.log_path.stat().st_size
                if current == size:
                    break
                size = current
                time.sleep(settle_seconds)
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextmanager
def running_server(workdir: Path, **settings: str) -> Iterator[RunningServer]:
    port = free_port()
    env = clean_environment(PORT=str(port), HOST="127.0.0.1", **settings)
    log_path = workdir / f"server-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            authgate_command("serve"),
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = RunningServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_until_healthy(server)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_healthy(server: RunningServer, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"authgate serve exited early:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"authgate serve did not become healthy:\n{server.log()}")
