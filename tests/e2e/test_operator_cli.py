"""``authgate users ...`` and ``authgate sessions ...`` as real processes, against the
database the in-process API writes to (a SQLite file, and MariaDB)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import jwt

from tests.conftest import Api
from tests.e2e.server import authgate_command, clean_environment
from tests.support.rows import fetch_all

PASSWORD = "Moo00!_*&x"


async def cli(
    api: Api, tmp_path: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    database = api.settings.effective_database_url
    if database.get_backend_name() == "sqlite" and database.database:
        # As an operator's would be: else the CLI warns (on stderr) that others can read it.
        os.chmod(database.database, 0o600)
    url = database.render_as_string(hide_password=False)
    return await asyncio.to_thread(
        subprocess.run,
        authgate_command(*args),
        cwd=tmp_path,
        env=clean_environment(
            DATABASE_URL=url,
            LOG_LEVEL="warning",
            PASSWORD_HASH_TIME_COST="1",
            PASSWORD_HASH_MEMORY_KIB="8",
        ),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 2 with one line on stderr."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("authgate: error: ")
    assert result.stdout == ""
    return lines[0]


def sid(tokens: dict[str, Any]) -> str:
    return str(jwt.decode(tokens["accessToken"], options={"verify_signature": False})["sid"])


async def sign_in(api: Api, email: str, password: str = PASSWORD) -> Any:
    return await api.client.post(
        "/api/v1/auth/credentials", json={"email": email, "password": password}
    )


async def test_users_commands(api: Api, tmp_path: Path) -> None:
    url = api.settings.effective_database_url
    tokens = await api.sign_up()
    await api.sign_up(email="pig@cow.jp")
    by_email = {row["email"]: str(row["id"]) for row in await fetch_all(url, "users")}
    cow = by_email["cow@cow.jp"]

    listed = json.loads(ok(await cli(api, tmp_path, "users", "list", "--json")))
    assert isinstance(listed, list)
    assert {row["email"] for row in listed} == {"cow@cow.jp", "pig@cow.jp"}
    table = await cli(api, tmp_path, "users", "list")
    assert ok(table).splitlines()[0].split() == [
        "ID", "EMAIL", "VERIFIED", "PASSWORD", "DISABLED", "CREATED"
    ]  # fmt: skip
    assert "0 account(s) not yet upgraded" in table.stderr

    shown = json.loads(ok(await cli(api, tmp_path, "users", "show", "COW@cow.jp", "--json")))
    assert shown["id"] == cow
    assert shown["providers"] == ["credentials"]
    assert shown["liveSessions"] == 1
    assert shown["verified"] is False

    ok(await cli(api, tmp_path, "users", "verify-email", cow))
    me = await api.client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {tokens['accessToken']}"}
    )
    assert me.json()["emailVerified"] is True

    ok(await cli(api, tmp_path, "users", "disable", "cow@cow.jp"))
    assert (await sign_in(api, "cow@cow.jp")).status_code == 403
    refresh = await api.client.post(
        "/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]}
    )
    assert refresh.status_code == 401
    ok(await cli(api, tmp_path, "users", "enable", "cow@cow.jp"))
    assert (await sign_in(api, "cow@cow.jp")).status_code == 200

    # set-password reads stdin, applies the policy, ends every session.
    weak = refused(await cli(api, tmp_path, "users", "set-password", cow, stdin="123\n"))
    assert "123" not in weak
    ok(await cli(api, tmp_path, "users", "set-password", cow, stdin="Quack11?-zebra\n"))
    assert (await sign_in(api, "cow@cow.jp")).status_code == 401
    assert (await sign_in(api, "cow@cow.jp", "Quack11?-zebra")).status_code == 200

    refused(await cli(api, tmp_path, "users", "delete", cow))  # needs --yes
    ok(await cli(api, tmp_path, "users", "delete", cow, "--yes"))
    assert cow not in {str(row["id"]) for row in await fetch_all(url, "users")}

    events = [e for e in await fetch_all(url, "audit_events") if e["reason"] == "operator"]
    assert {e["name"] for e in events} == {
        "email_verified", "account_disabled", "account_enabled", "password_set",
        "account_deleted",
    }  # fmt: skip
    # The deletion erased the client details of the account's earlier events (the
    # operator's too); reason "operator" stays, and the deletion's own row is the CLI's.
    assert {e["client_address"] for e in events} == {None}
    [deleted] = [e for e in events if e["name"] == "account_deleted"]
    assert deleted["user_agent"] == "authgate-cli"


async def test_sessions_commands(api: Api, tmp_path: Path) -> None:
    first = await api.sign_up()
    second = (await sign_in(api, "cow@cow.jp")).json()
    third = (await sign_in(api, "cow@cow.jp")).json()
    other = await api.sign_up(email="pig@cow.jp")

    listed = json.loads(
        ok(await cli(api, tmp_path, "sessions", "list", "--user", "cow@cow.jp", "--json"))
    )
    assert {row["id"] for row in listed} == {sid(first), sid(second), sid(third)}
    assert all(row["ip_address"] == "127.0.0.1" for row in listed)

    ok(await cli(api, tmp_path, "sessions", "revoke", sid(first)))
    again = refused(await cli(api, tmp_path, "sessions", "revoke", sid(first)))
    assert "session" in again.lower()
    ok(await cli(api, tmp_path, "sessions", "revoke", "--user", "cow@cow.jp"))
    for tokens, status in ((first, 401), (second, 401), (third, 401), (other, 200)):
        answer = await api.client.post(
            "/api/v1/refresh", json={"refreshToken": tokens["refreshToken"]}
        )
        assert answer.status_code == status
    assert (
        json.loads(
            ok(await cli(api, tmp_path, "sessions", "list", "--user", "cow@cow.jp", "--json"))
        )
        == []
    )


async def test_unknown_users_and_sessions_are_one_line_and_exit_2(api: Api, tmp_path: Path) -> None:
    for args in (
        ("users", "show", "ghost@cow.jp"),
        ("users", "disable", str(uuid.uuid4())),
        ("users", "delete", "not an address", "--yes"),
        ("sessions", "list", "--user", "ghost@cow.jp"),
        ("sessions", "revoke", str(uuid.uuid4())),
        ("sessions", "revoke"),
    ):
        refused(await cli(api, tmp_path, *args))
