"""Three ``authgate serve`` processes on one MariaDB database and one Redis, one key
ring (issue 13 §1): what an operator running several instances relies on.

The restart test runs its own ``mariadbd`` (own data directory and port): the
shared server on 3306 is used by every other suite and is never restarted.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.server import (
    RunningServer,
    authgate_command,
    clean_environment,
    free_port,
    running_server,
)
from tests.support.databases import ensure_mariadb, mariadb_required

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb]

PASSWORD = "Moo00!_*&x"
MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "mariadb-install-db"
BASE = {
    "PASSWORD_HASH_TIME_COST": "1",
    "PASSWORD_HASH_MEMORY_KIB": "8",
    # Every run on this host comes from 127.0.0.1: only the per-account lock limits.
    "RATE_LIMIT_SIGNUP_PER_IP": "1000000/hour",
    "RATE_LIMIT_AUTH_PER_IP": "1000000/minute",
    "RATE_LIMIT_REFRESH_PER_IP": "1000000/minute",
    "RATE_LIMIT_FAILED_SIGNINS_PER_ACCOUNT": "4/15 minutes",
    # A rotation reaches every instance within a second.
    "KEY_RING_REFRESH_SECONDS": "1",
    "JWKS_MAX_AGE_SECONDS": "1",
    "INSTANCE_HEARTBEAT_SECONDS": "1",
}


def _redis_or_skip() -> None:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError as exc:
        message = f"Redis on 127.0.0.1:6379 is unreachable: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: Redis tests are required)", pytrace=False)
        pytest.skip(message)


async def _recreate(url: URL) -> None:
    server = create_async_engine(url.set(database=""))
    try:
        async with server.begin() as connection:
            await connection.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
            await connection.execute(
                text(f"CREATE DATABASE `{url.database}` CHARACTER SET utf8mb4")
            )
    finally:
        await server.dispose()


async def _scalars(url: URL, sql: str) -> list[object]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(text(sql))).scalars())
    finally:
        await engine.dispose()


@contextmanager
def _instances(tmp_path: Path, count: int, **settings: str) -> Iterator[list[RunningServer]]:
    with ExitStack() as stack:
        servers = []
        for index in range(count):
            workdir = tmp_path / f"instance-{index}"
            workdir.mkdir()
            servers.append(stack.enter_context(running_server(workdir, **settings)))
        yield servers


def _sign_up(server: RunningServer, email: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/register", json={"email": email, "password": PASSWORD}, timeout=30
    )


def _sign_in(server: RunningServer, email: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/v1/auth/credentials",
        json={"email": email, "password": password},
        timeout=30,
    )


def _signs_with(server: RunningServer, email: str, kid: str) -> bool:
    token = _sign_in(server, email).json()["accessToken"]
    return bool(jwt.get_unverified_header(token)["kid"] == kid)


def _signs_up(server: RunningServer) -> bool:
    return _sign_up(server, f"back-{uuid.uuid4().hex[:8]}@cow.jp").status_code == 200


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)
    return time.monotonic() - started


def test_three_instances_share_one_database_one_redis_one_key_ring(tmp_path: Path) -> None:
    _redis_or_skip()
    url = ensure_mariadb()
    url = url.set(database=f"{url.database}_multi"[:64])
    asyncio.run(_recreate(url))
    settings = {
        **BASE,
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "RATE_LIMIT_STORAGE_URL": "redis://127.0.0.1:6379/0",
        # One deployment, one secret: it seals the ring's keys and keys the counters
        # (a fresh one per run: this run's counters start at zero).
        "SECRET_KEY": secrets.token_urlsafe(32),
    }
    with _instances(tmp_path, 3, **settings) as servers:
        # Each process has its heartbeat row, counting in Redis.
        kinds = asyncio.run(_scalars(url, "SELECT rate_limit_storage FROM instances"))
        assert kinds == ["redis"] * 3

        # Concurrent refreshes of one token, spread over the three: one successor.
        email = f"race-{uuid.uuid4().hex[:8]}@cow.jp"
        issued = _sign_up(servers[0], email)
        assert issued.status_code == 200, issued.text
        token = issued.json()["refreshToken"]

        def refresh(index: int) -> httpx.Response:
            return httpx.post(
                f"{servers[index % 3].base_url}/api/v1/refresh",
                json={"refreshToken": token},
                timeout=30,
            )

        with ThreadPoolExecutor(max_workers=30) as pool:
            answers = list(pool.map(refresh, range(60)))
        successors = {answer.json().get("refreshToken") for answer in answers}
        print(f"race: {len(answers)} refreshes over 3 instances, {len(successors)} successor(s)")
        statuses = sorted({answer.status_code for answer in answers})
        assert statuses == [200], [answer.text for answer in answers if answer.status_code != 200]
        assert len({answer.json()["refreshToken"] for answer in answers}) == 1

        # A rotation through one instance (the CLI, on the same database) is seen by all.
        jwks = httpx.get(f"{servers[0].base_url}/.well-known/jwks.json").json()["keys"]
        current = jwt.get_unverified_header(issued.json()["accessToken"])["kid"]
        (upcoming,) = [key["kid"] for key in jwks if key["kid"] != current]
        time.sleep(2.2)  # the next key has been published for JWKS_MAX_AGE_SECONDS + 1 s
        rotated = subprocess.run(
            authgate_command("keys", "rotate"),
            cwd=tmp_path,
            env=clean_environment(**settings),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert rotated.returncode == 0, rotated.stderr
        for server in servers:
            _eventually(partial(_signs_with, server, email, upcoming), timeout=5)

        # The per-account lock counts across the three (Redis).
        victim = f"lock-{uuid.uuid4().hex[:8]}@cow.jp"
        assert _sign_up(servers[1], victim).status_code == 200
        wrong = [_sign_in(servers[i % 3], victim, "wrong").status_code for i in range(4)]
        assert wrong == [401, 401, 401, 401]
        assert [_sign_in(server, victim).status_code for server in servers] == [429, 429, 429]

        # kill -9 of one: the others go on serving (sign-in, refresh, sign-up).
        servers[1].process.send_signal(signal.SIGKILL)
        servers[1].process.wait(timeout=10)
        for server in (servers[0], servers[2]):
            signed_in = _sign_in(server, email)
            assert signed_in.status_code == 200, signed_in.text
            again = httpx.post(
                f"{server.base_url}/api/v1/refresh",
                json={"refreshToken": signed_in.json()["refreshToken"]},
            )
            assert again.status_code == 200, again.text
            assert _sign_up(server, f"after-{uuid.uuid4().hex[:8]}@cow.jp").status_code == 200
    for server in servers:
        assert "Traceback" not in server.log(settle_seconds=0)
    # Clean shutdowns deleted their rows; the killed one's is left to go stale.
    assert len(asyncio.run(_scalars(url, "SELECT instance_id FROM instances"))) == 1


@dataclass
class PrivateMariaDB:
    """A ``mariadbd`` of this test's own: its data directory, its port."""

    datadir: Path
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> URL:
        return make_url(f"mysql+asyncmy://root@127.0.0.1:{self.port}/authgate?charset=utf8mb4")

    def start(self) -> float:
        """Start and wait until it accepts connections; returns when it did (monotonic)."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    MARIADBD,
                    "--no-defaults",
                    f"--datadir={self.datadir}",
                    f"--port={self.port}",
                    "--bind-address=127.0.0.1",
                    f"--socket={self.datadir}/mariadb.sock",
                    f"--pid-file={self.datadir}/mariadb.pid",
                    "--user=root",
                    "--skip-log-bin",
                    "--innodb-buffer-pool-size=32M",
                    # The default: every acknowledged commit is on disk (the test checks it).
                    "--innodb-flush-log-at-trx-commit=1",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited:\n{self.log.read_text(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return time.monotonic()
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mariadbd did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture
def private_mariadb(tmp_path: Path) -> Iterator[PrivateMariaDB]:
    if not (Path(MARIADBD).exists() and shutil.which(INSTALL_DB)):
        message = f"{MARIADBD} or {INSTALL_DB} is not installed"
        if mariadb_required():
            pytest.fail(f"{message} (CI=true: the restart test is required)", pytrace=False)
        pytest.skip(message)
    database = PrivateMariaDB(tmp_path / "mariadb", free_port(), tmp_path / "mariadbd.log")
    subprocess.run(
        [
            INSTALL_DB,
            "--no-defaults",
            f"--datadir={database.datadir}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    database.start()
    try:
        asyncio.run(_recreate(database.url))
        yield database
    finally:
        database.kill()


@dataclass
class Load:
    """Sign-ups in a loop on several instances: each answer with its email."""

    servers: list[RunningServer]
    answers: list[tuple[float, str, int]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self, worker: int) -> None:
        server = self.servers[worker % len(self.servers)]
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            while not self.stopping.is_set():
                email = f"load-{uuid.uuid4().hex[:12]}@cow.jp"
                answer = http.post("/register", json={"email": email, "password": PASSWORD})
                self.answers.append((time.monotonic(), email, answer.status_code))
                if answer.status_code != 200:
                    time.sleep(0.02)


def test_a_mariadb_restart_mid_load(tmp_path: Path, private_mariadb: PrivateMariaDB) -> None:
    settings = {
        **BASE,
        "DATABASE_URL": private_mariadb.url.render_as_string(hide_password=False),
        "SECRET_KEY": secrets.token_urlsafe(32),
        "DB_CONNECT_TIMEOUT_SECONDS": "1",
    }
    with _instances(tmp_path, 3, **settings) as servers:
        load = Load(servers)
        threads = [threading.Thread(target=load.run, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1.5)
            killed_at = time.monotonic()
            private_mariadb.kill()
            time.sleep(2.0)
            returned_at = private_mariadb.start()
            # Seconds from the database's return to a sign-up acknowledged, per instance.
            recovery = []
            for server in servers:
                _eventually(partial(_signs_up, server), timeout=10)
                recovery.append(time.monotonic() - returned_at)
            time.sleep(1.0)
        finally:
            load.stopping.set()
            for thread in threads:
                thread.join(timeout=60)
    statuses = [status for _, _, status in load.answers]
    down = [status for at, _, status in load.answers if killed_at + 0.5 < at < returned_at]
    acknowledged = {email for _, email, status in load.answers if status == 200}
    print(  # the figures for the note (pytest -s)
        f"restart: {len(statuses)} sign-ups, {len(acknowledged)} acknowledged, "
        f"{statuses.count(503)} x 503, recovery {', '.join(f'{r:.2f}' for r in recovery)} s"
    )
    assert 500 not in statuses
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert down
    assert set(down) == {503}
    assert max(recovery) <= 2.0, recovery
    stored = set(asyncio.run(_scalars(private_mariadb.url, "SELECT email FROM users")))
    assert acknowledged <= stored, sorted(acknowledged - stored)[:5]
    for server in servers:
        assert "Traceback" not in server.log(settle_seconds=0)
