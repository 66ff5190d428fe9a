"""authgate.aws.handler: the whole HTTP API through the real handler function, for
each event kind Lambda receives (AWS's documented shapes, tests/aws/events/), on a
real MariaDB: Lambda refuses SQLite, which is checked separately."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL

from authgate.aws import handler
from authgate.config import SettingsError, load_settings
from authgate.web.deps import app_services
from tests.aws.support import ISSUER, PASSWORD, Answer, http_event
from tests.support.databases import empty_mariadb, ensure_mariadb
from tests.support.server_secrets import TEST_SECRET_TEXT

KINDS = ["api_gateway_v1", "http_api_v2", "function_url", "alb"]


def lambda_environment(url: URL, data_dir: Path) -> dict[str, str]:
    return {
        # What the Lambda runtime sets: the app knows where it runs from it.
        "AWS_LAMBDA_FUNCTION_NAME": "authgate-http",
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "SECRET_KEY": TEST_SECRET_TEXT,
        "JWT_ISSUER": ISSUER,
        "AUTHGATE_DATA_DIR": str(data_dir),
        "EMAIL_VERIFICATION": "off",
        "PASSWORD_HASH_TIME_COST": "1",
        "PASSWORD_HASH_MEMORY_KIB": "8",
        "PASSWORD_HASH_WORKERS": "1",
    }


@pytest.fixture
def mariadb() -> Iterator[URL]:
    url = ensure_mariadb()
    yield url
    asyncio.run(empty_mariadb(url))


@pytest.fixture
def on_lambda(
    mariadb: URL, key_pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    environment = lambda_environment(mariadb, tmp_path / "data")
    # The static ring as PEM text: no key files on a Lambda.
    environment["JWT_PRIVATE_KEY"] = key_pair[0].read_text()
    environment["JWT_PUBLIC_KEY"] = key_pair[1].read_text()
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    handler.reset()
    yield environment
    handler.reset()


def call(kind: str, method: str, path: str, body: Any = None, **headers: str) -> Answer:
    return Answer.of(handler.handler(http_event(kind, method, path, body, headers), None))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("kind", KINDS)
def test_the_seed_routes_work_unchanged(kind: str, on_lambda: dict[str, str]) -> None:
    email = f"{kind.replace('_', '-')}@cow.jp"
    register = call(
        kind, "POST", "/register", {"email": email, "password": PASSWORD, "displayName": "Moo"}
    )
    assert register.status == 200, register.body
    assert set(register.json()) == {"accessToken", "refreshToken", "tokenType", "expiresIn"}
    login = call(kind, "POST", "/login", {"email": email, "password": PASSWORD})
    assert login.status == 200, login.body
    tokens = login.json()

    secure = call(kind, "POST", "/secure", **bearer(tokens["accessToken"]))
    assert secure.status == 200, secure.body
    assert secure.json()["message"] == "You are authenticated."
    refused = call(kind, "POST", "/secure")
    assert refused.status == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert refused.headers["content-type"] == "application/problem+json"

    refreshed = call(kind, "POST", "/refreshToken", {"refreshToken": tokens["refreshToken"]})
    assert refreshed.status == 200, refreshed.body
    successor = refreshed.json()["refreshToken"]
    assert call(kind, "POST", "/revokeToken", {"refreshToken": successor}).status == 200
    assert call(kind, "POST", "/refreshToken", {"refreshToken": successor}).status == 401
    wrong = call(kind, "POST", "/login", {"email": email, "password": "not-it-at-all"})
    assert wrong.status == 401


def test_one_app_per_container_and_no_timers(on_lambda: dict[str, str]) -> None:
    assert call("http_api_v2", "GET", "/healthz").status == 200
    first = handler.container()
    assert call("alb", "GET", "/healthz").status == 200
    assert handler.container() is first
    names = {task.get_name() for task in asyncio.all_tasks(first.loop)}
    assert not names & {"authgate-periodic-pruning", "authgate-mail", "authgate-key-ring"}
    # One connection per container, checked after a freeze.
    pool: Any = app_services(first.app).engine.pool
    assert pool.size() == 1
    assert pool._pre_ping is True
    assert first.settings.on_lambda


def test_bad_input_is_a_4xx_not_a_500(on_lambda: dict[str, str]) -> None:
    for kind in KINDS:
        answer = call(kind, "POST", "/login", {"email": "x"})
        assert answer.status == 422, (kind, answer.body)
        assert call(kind, "GET", "/no-such-route").status == 404


def test_the_database_ring_is_reloaded_when_stale(
    mariadb: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in lambda_environment(mariadb, tmp_path / "data").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KEY_RING_REFRESH_SECONDS", "60")
    handler.reset()
    try:
        jwks = call("function_url", "GET", "/.well-known/jwks.json")
        assert jwks.status == 200
        current = handler.container()
        refresher: Any = current.ring_refresher
        assert refresher is not None
        loaded_at = current.ring_loaded_at
        current.refresh_ring_if_stale(loaded_at + 59)
        assert current.ring_loaded_at == loaded_at  # still fresh: no database read
        current.refresh_ring_if_stale(loaded_at + 61)
        assert current.ring_loaded_at == loaded_at + 61
    finally:
        handler.reset()


def test_sqlite_is_refused_on_lambda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "authgate-http")
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET_TEXT)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("MYSQL_HOST", raising=False)
    handler.reset()
    with pytest.raises(SettingsError) as raised:
        handler.handler(http_event("http_api_v2", "GET", "/healthz"), None)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("DATABASE_URL: SQLite is refused on AWS Lambda")
    sqlite = f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"
    with pytest.raises(SettingsError, match="SQLite is refused"):
        load_settings(database_url=sqlite, aws_lambda_function_name="", runtime="lambda")
    # RUNTIME=server outside Lambda, and auto outside it, keep SQLite.
    assert not load_settings(database_url=sqlite, runtime="server").on_lambda
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    assert not load_settings(database_url=sqlite).on_lambda


async def _recreate(url: URL, *, drop_only: bool = False) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

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


def test_a_ring_not_loaded_at_start_is_retried_at_the_next_request(
    mariadb: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The container started while its database could not give it the key ring (here:
    not migrated yet): it serves what it can, and the next request tries again at once
    instead of waiting KEY_RING_REFRESH_SECONDS."""
    from authgate.storage.migrate import upgrade_url

    url = mariadb.set(database=f"{mariadb.database}_ring")
    asyncio.run(_recreate(url))
    for name, value in lambda_environment(url, tmp_path / "data").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KEY_RING_REFRESH_SECONDS", "3600")
    handler.reset()
    try:
        empty = call("http_api_v2", "GET", "/.well-known/jwks.json")
        assert empty.status == 200
        assert empty.json() == {"keys": []}
        asyncio.run(upgrade_url(url))
        jwks = call("http_api_v2", "GET", "/.well-known/jwks.json")
        assert len(jwks.json()["keys"]) >= 1
    finally:
        handler.reset()
        asyncio.run(_recreate(url, drop_only=True))
