"""The processes under test: ``authgate serve`` as a user runs it, and the hello app."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import procs

REPO = Path(__file__).resolve().parent.parent
MARIADB_SERVER_URL = "mysql+asyncmy://root@127.0.0.1:3306/?charset=utf8mb4"
# Suffixed per run (``authgate_bench_<pid>``): two harness runs at once (another
# engineer checking a change) must not drop each other's database mid-run.
MARIADB_DATABASE_PREFIX = "authgate_bench"

# Settings a developer's shell might export; the server gets only what we set.
_AUTHGATE_VARIABLES = {
    "DATABASE_URL", "MYSQL_HOST", "MYSQL_PORT", "MYSQL_USER", "MYSQL_PASSWORD",
    "MYSQL_DATABASE", "JWT_PRIVATE_KEY_PATH", "JWT_PUBLIC_KEY_PATH", "JWT_ALGORITHM",
    "AUTHGATE_ENV", "PORT", "HOST", "WORKERS", "AUTHGATE_DATA_DIR", "ACCESS_LOG",
    "LOG_LEVEL", "TRUSTED_PROXIES", "DB_POOL_SIZE", "PASSWORD_HASH_TIME_COST",
    "PASSWORD_HASH_MEMORY_KIB", "PASSWORD_HASH_PARALLELISM", "PASSWORD_HASH_WORKERS",
    "REFRESH_REUSE_LEEWAY_SECONDS", "AUTO_MIGRATE", "RATE_LIMIT_ENABLED",
    "RATE_LIMIT_STORAGE_URL", "RATE_LIMIT_AUTH_PER_IP", "RATE_LIMIT_SIGNUP_PER_IP",
    "RATE_LIMIT_REFRESH_PER_IP", "RATE_LIMIT_FAILED_SIGNINS_PER_ACCOUNT",
    "PASSWORD_MIN_STRENGTH", "PASSWORD_MIN_LENGTH", "PYTHONPATH",
}  # fmt: skip


class BenchError(Exception):
    """A one-line reason the benchmark cannot go on."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_environment(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in _AUTHGATE_VARIABLES}
    env.update(values)
    return env


def authgate_command(*args: str) -> list[str]:
    """The console script a user runs, next to this interpreter (``python -m`` else)."""
    script = Path(sys.executable).parent / "authgate"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "authgate", *args]


def code_environment(src: Path | None) -> dict[str, str]:
    """PYTHONPATH for a frozen copy of src/ (it comes before the editable install)."""
    return {"PYTHONPATH": str(src)} if src is not None else {}


def snapshot_source(destination: Path) -> Path:
    """Copy src/ so the run measures one version of the code: other people edit
    the working tree while we run, and a half-saved file would break a block."""
    shutil.copytree(REPO / "src", destination, ignore=shutil.ignore_patterns("__pycache__"))
    return destination


def generate_keys(directory: Path, algorithm: str, src: Path | None) -> tuple[Path, Path]:
    """``authgate keys generate`` into ``directory``; returns (private, public)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        authgate_command("keys", "generate", "--out", str(directory), "--algorithm", algorithm),
        capture_output=True,
        text=True,
        check=False,
        env=clean_environment(**code_environment(src)),
        cwd=directory.parent,
    )
    if out.returncode != 0:
        raise BenchError(f"authgate keys generate failed: {out.stderr.strip()}")
    paths = dict(line.split("=", 1) for line in out.stdout.splitlines() if line.startswith("JWT_"))
    return Path(paths["JWT_PRIVATE_KEY_PATH"]), Path(paths["JWT_PUBLIC_KEY_PATH"])


@dataclass
class Server:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    workers: int
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def worker_pids(self) -> list[int]:
        """Processes serving requests: the workers, or the main process with one worker."""
        if self.workers == 1:
            return [self.pid]
        pids = []
        for pid in procs.descendants(self.pid)[1:]:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            # uvicorn's spawned workers; not multiprocessing's resource tracker.
            if b"resource_tracker" not in cmdline:
                pids.append(pid)
        return pids

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                # Our own process group (start_new_session): the server and its workers.
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _start(
    name: str, command: list[str], *, env: dict[str, str], cwd: Path, log_path: Path, workers: int
) -> Server:
    port = int(env["PORT"])
    cwd.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(name, f"http://127.0.0.1:{port}", process, log_path, workers)
    try:
        _wait_ready(server, health_path="/healthz" if name == "authgate" else "/")
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: Server, *, health_path: str, timeout: float = 90.0) -> None:
    """Healthy over HTTP, and every worker has logged its start-up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"{server.name} exited early:\n{server.log()[-4000:]}")
        try:
            healthy = httpx.get(server.base_url + health_path, timeout=1.0).status_code == 200
        except httpx.TransportError:
            healthy = False
        if healthy and server.log().count("Application startup complete") >= server.workers:
            return
        time.sleep(0.2)
    raise BenchError(f"{server.name} did not become ready:\n{server.log()[-4000:]}")


def start_authgate(
    workdir: Path,
    *,
    database_url: str,
    workers: int,
    algorithm: str,
    keys: tuple[Path, Path],
    hashing: dict[str, int],
    extra_env: dict[str, str] | None = None,
    src: Path | None = None,
) -> Server:
    port = free_port()
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = clean_environment(
        HOST="127.0.0.1",
        PORT=str(port),
        WORKERS=str(workers),
        DATABASE_URL=database_url,
        ACCESS_LOG="false",
        AUTHGATE_DATA_DIR=str(data_dir),
        JWT_ALGORITHM=algorithm,
        JWT_PRIVATE_KEY_PATH=str(keys[0]),
        JWT_PUBLIC_KEY_PATH=str(keys[1]),
        PASSWORD_HASH_TIME_COST=str(hashing["time_cost"]),
        PASSWORD_HASH_MEMORY_KIB=str(hashing["memory_kib"]),
        PASSWORD_HASH_PARALLELISM=str(hashing["parallelism"]),
        **(extra_env or {}),
        **code_environment(src),
    )
    # cwd is the scratch directory, so no stray .env in the repository is read.
    return _start(
        "authgate",
        authgate_command("serve"),
        env=env,
        cwd=workdir,
        log_path=workdir / f"authgate-{port}.log",
        workers=workers,
    )


def start_hello(workdir: Path, *, workers: int) -> Server:
    """The bare FastAPI app under the uvicorn settings ``authgate serve`` uses."""
    port = free_port()
    env = clean_environment(PORT=str(port), PYTHONPATH=str(REPO))
    command = [
        sys.executable, "-m", "uvicorn", "bench.hello_app:app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--loop", "uvloop", "--http", "httptools", "--no-access-log",
        "--no-server-header", "--no-proxy-headers", "--log-level", "info",
    ]  # fmt: skip
    return _start(
        "hello",
        command,
        env=env,
        cwd=workdir,
        log_path=workdir / f"hello-{port}.log",
        workers=workers,
    )


async def _mariadb(statements: list[str]) -> str:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    # asyncmy logs MariaDB's notes as warnings ("Can't drop database ...; database
    # doesn't exist" for DROP ... IF EXISTS): not worth printing here.
    logging.getLogger("asyncmy").setLevel(logging.ERROR)
    engine = create_async_engine(MARIADB_SERVER_URL)
    try:
        async with engine.connect() as connection:
            version = str((await connection.execute(text("SELECT VERSION()"))).scalar())
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()
    return version


def mariadb_database_name() -> str:
    return f"{MARIADB_DATABASE_PREFIX}_{os.getpid()}"


def recreate_mariadb_database() -> tuple[str, str, str]:
    """Drop and create this run's database; returns (DATABASE_URL, version, name)."""
    name = mariadb_database_name()
    statements = [
        f"DROP DATABASE IF EXISTS `{name}`",
        f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    ]
    try:
        version = asyncio.run(_mariadb(statements))
    except Exception as exc:
        raise BenchError(f"MariaDB at 127.0.0.1:3306 is not usable: {exc}") from None
    url = f"mysql+asyncmy://root@127.0.0.1:3306/{name}?charset=utf8mb4"
    return url, version, name


def drop_mariadb_database() -> None:
    asyncio.run(_mariadb([f"DROP DATABASE IF EXISTS `{mariadb_database_name()}`"]))
