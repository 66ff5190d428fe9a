"""``authgate import``: the seeds' users, from their own MariaDB tables, sign in.

The seeds' tables are made from their DDL in a database of their own (one per test,
dropped after it) and filled with hashes made by the seeds' algorithms. authgate's
database is SQLite or MariaDB (the ``database_url`` fixture).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from authgate.cli.imports import run_import
from authgate.crypto.legacy_hashes import LEGACY_MARKER
from authgate.storage.tables import users
from tests.api.test_providers import _provider_settings, apple_token, google_token
from tests.conftest import CHEAP_HASHING, Api, start_api
from tests.support.databases import ensure_mariadb
from tests.support.idp import FakeIdp
from tests.support.rows import count_rows, fetch_all
from tests.support.seeds import (
    SERVERLESS_DDL,
    SeedDatabase,
    bcrypt_hash,
    serverless_row,
    sha3_hex,
    timelapse_ddl,
    timelapse_row,
)

SIGN_IN = "/api/v1/auth/credentials"
LOCK = {"rate_limit_failed_signins_per_account": "3/15 minutes"}
ALICE_PASSWORD = "old-Secret-1"
BOB_PASSWORD = "bob's pässwörd ✓"  # the seed hashed the UTF-8 text


@pytest.fixture
async def api(
    make_settings: Any, clock: Any, google: FakeIdp, apple: FakeIdp
) -> AsyncIterator[Api]:
    settings = make_settings(**_provider_settings(google, apple), **LOCK)
    async for value in start_api(settings, clock):
        yield value


@pytest.fixture
def seed_server() -> Any:
    return ensure_mariadb()  # skips, or fails when MariaDB is required, if unreachable


@pytest.fixture
async def seed(seed_server: Any) -> AsyncIterator[SeedDatabase]:
    database = SeedDatabase(seed_server)
    try:
        yield database
    finally:
        await database.drop()


async def serverless_seed(seed: SeedDatabase) -> None:
    await seed.create([SERVERLESS_DDL])
    await seed.insert(
        "USER_LIST",
        [
            serverless_row("alice@example.com", sha3_hex(ALICE_PASSWORD), "Alice"),
            serverless_row("bob@example.com", sha3_hex(BOB_PASSWORD), "Bobby"),
            # CIF 3: the same mailbox as CIF 1 (the key lowercases): the first row wins.
            serverless_row("ALICE@example.com", sha3_hex("another one"), "Alice2"),
            serverless_row("not-an-email", sha3_hex("x"), "Nobody"),
            serverless_row("dave@example.com", "5f" * 32, "Dave"),  # not a SHA3-512 digest
            serverless_row("carol@example.com", sha3_hex("carol's"), "Carol"),
        ],
    )


def run_cli(api: Api, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": api.settings.effective_database_url.render_as_string(hide_password=False),
        "AUTHGATE_DATA_DIR": str(tmp_path / "cli-data"),
        **{name.upper(): str(value) for name, value in CHEAP_HASHING.items()},
    }
    return subprocess.run(
        [sys.executable, "-m", "authgate", "import", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def sign_in(api: Api, email: str, password: str) -> Any:
    return await api.client.post(SIGN_IN, json={"email": email, "password": password})


async def user_row(api: Api, email: str) -> dict[str, Any]:
    rows = await fetch_all(api.settings.effective_database_url, "users")
    return next(row for row in rows if row["email"] == email)


async def set_password_hash(api: Api, email: str, value: str) -> None:
    engine = create_async_engine(api.settings.effective_database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                update(users).where(users.c.email == email).values(password_hash=value)
            )
    finally:
        await engine.dispose()


async def test_serverless_seed_through_the_cli(
    api: Api, seed: SeedDatabase, tmp_path: Path
) -> None:
    await serverless_seed(seed)
    await api.sign_up("carol@example.com", "Carol's own 9!pw")
    url = api.settings.effective_database_url
    before = await count_rows(url, include_audit=True)

    dry = run_cli(api, tmp_path, "serverless-seed", "--from", seed.cli_url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert "duplicate: CIF=3: ALICE@example.com: same address as CIF=1, which wins" in lines
    assert "invalid: CIF=4: email is not a valid address" in lines
    assert "invalid: CIF=5: PASSWORD is not a SHA3-512 hex digest" in lines
    assert any(line.startswith("exists: CIF=6: carol@example.com") for line in lines)
    assert lines[-1].startswith(
        "dry run: 6 rows in USER_LIST: would import 2 (2 password, 0 google, 0 apple); "
        "1 duplicate, 1 already in authgate, 2 invalid; nothing written"
    )
    assert len(lines) == 5  # one line per problem, then the summary
    assert await count_rows(url, include_audit=True) == before

    done = run_cli(api, tmp_path, "serverless-seed", "--from", seed.cli_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        "imported 2 of 6 rows from USER_LIST (2 password, 0 google, 0 apple); "
        "1 duplicate, 1 already in authgate, 2 invalid; 2 imported accounts not yet upgraded"
    )
    alice = await user_row(api, "alice@example.com")
    assert alice["password_hash"].startswith(f"{LEGACY_MARKER}sha3-512$argon2id$")
    # No unsalted hash stored: not as the value, not inside the wrapper, nowhere.
    for row in await fetch_all(url, "users"):
        assert sha3_hex(ALICE_PASSWORD) not in str(row)
        assert sha3_hex(BOB_PASSWORD) not in str(row)
    assert (alice["imported_from"], alice["imported_provider"]) == ("serverless-seed", None)
    assert not alice["email_verified"]
    assert (alice["given_name"], alice["family_name"], alice["display_name"]) == (
        "Alice",
        "",
        "Alice",
    )
    carol = await user_row(api, "carol@example.com")
    assert carol["imported_from"] is None  # never overwritten
    assert carol["password_hash"].startswith("$argon2id$")

    # Importing again adds nothing.
    counts = await count_rows(url)
    again = run_cli(api, tmp_path, "serverless-seed", "--from", seed.cli_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1].startswith("imported 0 of 6 rows")
    assert "3 already in authgate" in again.stdout
    assert await count_rows(url) == counts

    # The old passwords work; the account is then plain argon2id.
    signed_in = await sign_in(api, "alice@example.com", ALICE_PASSWORD)
    assert signed_in.status_code == 200, signed_in.text
    assert (await user_row(api, "alice@example.com"))["password_hash"].startswith("$argon2id$")
    assert (await sign_in(api, "Alice@Example.com", ALICE_PASSWORD)).status_code == 200
    assert (await sign_in(api, "bob@example.com", BOB_PASSWORD)).status_code == 200
    me = await api.client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {signed_in.json()['accessToken']}"}
    )
    assert (me.json()["firstName"], me.json()["emailVerified"]) == ("Alice", False)
    events = await fetch_all(url, "audit_events")
    assert sum(e["name"] == "user_imported" for e in events) == 2
    assert sum(e["reason"] == "password_rehashed" for e in events) == 2

    final = run_cli(api, tmp_path, "serverless-seed", "--from", seed.cli_url, "--dry-run")
    assert final.stdout.splitlines()[-1].endswith("0 imported accounts not yet upgraded")


async def test_a_wrong_password_fails_and_counts_against_the_lock(
    api: Api, seed: SeedDatabase
) -> None:
    await serverless_seed(seed)
    assert await run_import(api.settings, seed="serverless-seed", source=seed.cli_url) == 0
    for guess in ("old-secret-1", sha3_hex(ALICE_PASSWORD), f"{ALICE_PASSWORD} "):
        refused = await sign_in(api, "alice@example.com", guess)
        assert refused.status_code == 401, refused.text
    locked = await sign_in(api, "alice@example.com", ALICE_PASSWORD)
    assert locked.status_code == 429
    assert (await user_row(api, "alice@example.com"))["password_hash"].startswith(LEGACY_MARKER)


async def test_a_raw_legacy_hash_never_verifies(api: Api) -> None:
    password = "Moo00!_*&x"
    await api.sign_up("cow@cow.jp", password)
    for raw in (sha3_hex(password), bcrypt_hash(password), f"{LEGACY_MARKER}{sha3_hex(password)}"):
        await set_password_hash(api, "cow@cow.jp", raw)
        refused = await sign_in(api, "cow@cow.jp", password)
        assert refused.status_code == 401, raw
        assert (await user_row(api, "cow@cow.jp"))["password_hash"] == raw  # not "upgraded"


@pytest.mark.parametrize("version", ["13bb39c", "nickname"])
async def test_timelapseme_seed(api: Api, seed: SeedDatabase, version: str) -> None:
    await seed.create(timelapse_ddl(version))

    def names(first: str, last: str, nick: str) -> dict[str, str]:
        if version == "13bb39c":
            return {"firstName": first, "lastName": last}
        return {"nickname": nick}

    long_password = "ü" * 36 + "tail-ignored-by-bcrypt"  # 72 bytes, then more
    hashes = {"dora": bcrypt_hash("dora-Old-1"), "long": bcrypt_hash(long_password)}
    await seed.insert(
        "Users",
        [
            timelapse_row(
                "dora@example.com",
                "CREDENTIALS",
                hashes["dora"],
                **names("Dora", "Explorer", "dora"),
            ),
            timelapse_row(
                "long@example.com",
                "CREDENTIALS",
                hashes["long"],
                **names("Long", "Word", "long"),
            ),
            timelapse_row("gina@corp.example", "GOOGLE", None, **names("Gina", "G", "gg")),
            timelapse_row("ann@icloud.com", "APPLE", None, **names("Ann", "A", "ann")),
            timelapse_row("nohash@example.com", "CREDENTIALS", None, **names("N", "H", "nh")),
            timelapse_row(
                "badsalt@example.com", "CREDENTIALS", "$2b$10$" + "z" * 53, **names("B", "S", "bs")
            ),
        ],
    )
    url = api.settings.effective_database_url
    source = seed.url.render_as_string(hide_password=False)  # mysql+asyncmy:// works too
    assert await run_import(api.settings, seed="timelapseme-seed", source=source) == 0
    dora = await user_row(api, "dora@example.com")
    assert dora["password_hash"].startswith(f"{LEGACY_MARKER}bcrypt$2b$10$")
    assert len(dora["password_hash"]) <= 255
    gina = await user_row(api, "gina@corp.example")
    ann = await user_row(api, "ann@icloud.com")
    assert (gina["imported_provider"], ann["imported_provider"]) == ("google", "apple")
    assert gina["password_hash"] is None
    assert bool(gina["email_verified"])
    assert not dora["email_verified"]
    if version == "13bb39c":
        assert (dora["given_name"], dora["family_name"], dora["display_name"]) == (
            "Dora",
            "Explorer",
            "",
        )
    else:
        assert (dora["given_name"], dora["family_name"], dora["display_name"]) == (
            "dora",
            "",
            "dora",
        )
    rows = await fetch_all(url, "users")
    assert {row["email"] for row in rows} == {
        "dora@example.com",
        "long@example.com",
        "gina@corp.example",
        "ann@icloud.com",
    }
    for row in rows:  # only the salt and cost are kept, never the bcrypt checksum
        for legacy in hashes.values():
            assert legacy[-31:] not in str(row)

    assert (await sign_in(api, "dora@example.com", "dora-Old-2")).status_code == 401
    assert (await sign_in(api, "dora@example.com", "dora-Old-1")).status_code == 200
    assert (await user_row(api, "dora@example.com"))["password_hash"].startswith("$argon2id$")
    # As node-bcrypt did, only the first 72 bytes counted for the imported hash...
    other_tail = long_password[:36] + "another tail"
    assert (await sign_in(api, "long@example.com", other_tail)).status_code == 200
    # ...and the whole password counts once it is re-hashed with argon2id.
    assert (await sign_in(api, "long@example.com", long_password)).status_code == 401

    counts = await count_rows(url)
    assert await run_import(api.settings, seed="timelapseme-seed", source=source) == 0
    assert await count_rows(url) == counts


async def _timelapse_providers(api: Api, seed: SeedDatabase) -> None:
    await seed.create(timelapse_ddl("13bb39c"))
    await seed.insert(
        "Users",
        [
            timelapse_row("gina@corp.example", "GOOGLE", None, firstName="Gina", lastName="G"),
            timelapse_row("ann@corp.example", "APPLE", None, firstName="Ann", lastName="A"),
            timelapse_row(
                "pat@corp.example",
                "CREDENTIALS",
                bcrypt_hash("pat-Old-1"),
                firstName="Pat",
                lastName="P",
            ),
        ],
    )
    assert await run_import(api.settings, seed="timelapseme-seed", source=seed.cli_url) == 0


async def test_an_imported_google_user_binds_its_subject_once(
    api: Api, seed: SeedDatabase, google: FakeIdp, apple: FakeIdp
) -> None:
    await _timelapse_providers(api, seed)
    url = api.settings.effective_database_url

    async def google_sign_in(**claims: Any) -> Any:
        token = google_token(api, google, **claims)
        return await api.client.post("/api/v1/auth/google", json={"jwt": token})

    # corp.example is no Google address (no hd): Google's general rule would not link
    # it; the seed's tie of this address to Google does, once, when it is verified.
    unverified = await google_sign_in(sub="g-gina", email="gina@corp.example", email_verified=False)
    assert unverified.status_code == 404
    other_address = await google_sign_in(sub="g-gina", email="gina2@corp.example")
    assert other_address.status_code == 404
    # Another provider never takes the seed's Google slot (Apple's verified address
    # links by the general rule, but the account still waits for its Google subject).
    by_apple = await api.client.post(
        "/api/v1/auth/apple",
        json={"jwt": apple_token(api, apple, sub="a-gina", email="gina@corp.example")},
    )
    assert by_apple.status_code == 200, by_apple.text
    assert (await user_row(api, "gina@corp.example"))["imported_provider"] == "google"
    assert not [i for i in await fetch_all(url, "identities") if i["provider"] == "google"]

    bound = await google_sign_in(sub="g-gina", email="Gina@corp.example")
    assert bound.status_code == 200, bound.text
    gina = await user_row(api, "gina@corp.example")
    assert gina["imported_provider"] is None
    identities = [i for i in await fetch_all(url, "identities") if i["provider"] == "google"]
    assert [(i["subject"], i["user_id"]) for i in identities] == [("g-gina", gina["id"])]
    events = await fetch_all(url, "audit_events")
    assert [e["reason"] for e in events if e["name"] == "provider_link"].count("imported_bind") == 1

    # Once: another Google subject with the same address is not bound.
    assert (await google_sign_in(sub="g-impostor", email="gina@corp.example")).status_code == 404
    again = await google_sign_in(sub="g-gina", email="gina@corp.example")
    assert again.status_code == 200

    # An imported Apple user is not bound by a Google token, nor a password account
    # by its provider's token.
    assert (await google_sign_in(sub="g-ann", email="ann@corp.example")).status_code == 404
    assert (await google_sign_in(sub="g-pat", email="pat@corp.example")).status_code == 404
    assert (await user_row(api, "ann@corp.example"))["imported_provider"] == "apple"
    ann = await api.client.post(
        "/api/v1/auth/apple",
        json={"jwt": apple_token(api, apple, sub="a-ann", email="ann@corp.example")},
    )
    assert ann.status_code == 200
    assert (await user_row(api, "ann@corp.example"))["imported_provider"] is None


def test_source_errors_are_one_line_naming_from(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from authgate.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    server = ensure_mariadb()
    cases = {
        "postgresql://u@h/db": "--from: postgresql:// is not supported",
        "mysql://root@127.0.0.1": "--from: the URL names no database",
        "mysql://root@127.0.0.1:1/seed": "--from mysql+asyncmy://root@127.0.0.1:1/seed",
        server.set(password="s3cret-pw").render_as_string(hide_password=False): "denied",
        server.render_as_string(hide_password=False): "no table USER_LIST",
    }
    for source, expected in cases.items():
        assert main(["import", "serverless-seed", "--from", source]) == 2
        err = capsys.readouterr().err
        assert err.startswith("authgate: error: "), err
        assert expected in err, err
        assert len(err.splitlines()) == 1
        assert "s3cret-pw" not in err
