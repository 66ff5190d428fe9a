"""OAuth clients end to end: ``authgate clients`` as a real process, and Authlib's
standard ``AsyncOAuth2Client`` against a running ``authgate serve``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from authlib.deprecate import AuthlibDeprecationWarning

from authgate.resource.introspection import Introspection
from tests.conftest import Api
from tests.e2e.server import authgate_command, clean_environment, running_server
from tests.e2e.test_operator_cli import cli, ok, refused
from tests.support.oauth import basic, post_form
from tests.support.rows import fetch_all

with warnings.catch_warnings():
    # Authlib 1.9 prefers httpx2 and warns once when it falls back to httpx (its
    # deprecate module, imported above, installs an "always" filter at import).
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

pytestmark = pytest.mark.e2e

PASSWORD = "Moo00!_*&x"
CHEAP = {"PASSWORD_HASH_TIME_COST": "1", "PASSWORD_HASH_MEMORY_KIB": "8"}


async def test_clients_commands(api: Api, tmp_path: Path) -> None:
    created = json.loads(
        ok(
            await cli(
                api, tmp_path, "clients", "create", "billing", "--audience", "billing-api",
                "--audience", "ledger", "--introspect", "--json",
            )
        )
    )  # fmt: skip
    secret = created["client_secret"]
    assert len(secret) >= 43  # 256 bits in base64url
    assert created["type"] == "confidential"
    assert created["grant_types"] == ["client_credentials"]
    assert created["audiences"] == ["billing-api", "ledger"]
    assert created["introspect"] is True
    # Only the SHA-256 of the secret is stored.
    (row,) = await fetch_all(api.settings.effective_database_url, "clients")
    assert secret not in json.dumps(row, default=str)
    assert len(row["secret_hash"]) == 64
    public = json.loads(
        ok(await cli(api, tmp_path, "clients", "create", "mobile", "--audience", "orders",
                     "--public", "--json"))
    )  # fmt: skip
    assert public["client_secret"] is None
    assert public["grant_types"] == ["refresh_token"]
    listed = json.loads(ok(await cli(api, tmp_path, "clients", "list", "--json")))
    assert [c["client_id"] for c in listed] == ["authgate", "billing", "mobile"]
    assert listed[0]["type"] == "default"
    assert listed[0]["audiences"] == ["authgate"]
    assert "client_secret" not in json.dumps(listed)
    table = ok(await cli(api, tmp_path, "clients", "list"))
    assert table.splitlines()[0].split()[:2] == ["CLIENT_ID", "TYPE"]
    assert secret not in table

    # The secret works at /oauth/token, until the client is deleted.
    form = {"grant_type": "client_credentials"}
    granted = await post_form(api.client, "/oauth/token", form, basic("billing", secret))
    assert granted.status_code == 200
    # A session of the public client ends with the client.
    await api.sign_up()
    signed_in = await api.client.post(
        "/api/v1/auth/credentials",
        json={"email": "cow@cow.jp", "password": PASSWORD, "clientId": "mobile"},
    )
    assert signed_in.status_code == 200
    result = await cli(api, tmp_path, "clients", "delete", "mobile")
    assert result.returncode == 0, result.stderr
    assert "1 session(s) ended" in result.stderr
    sessions = await fetch_all(api.settings.effective_database_url, "sessions")
    assert {(s["client_id"], s["revoked_reason"]) for s in sessions} == {
        (None, None),
        ("mobile", "client_deleted"),
    }
    ok(await cli(api, tmp_path, "clients", "delete", "billing"))
    gone = await post_form(api.client, "/oauth/token", form, basic("billing", secret))
    assert gone.status_code == 401

    for args, words in (
        (("clients", "delete", "billing"), "no registered client"),
        (("clients", "create", "authgate", "--audience", "x"), "default client"),
        (("clients", "create", "bad id", "--audience", "x"), "client id"),
        (("clients", "create", "p", "--audience", "x", "--public", "--grant",
          "client_credentials"), "public client"),
        (("clients", "create", "p", "--audience", "x", "--public", "--introspect"),
         "public client"),
        (("clients", "create", "p", "--audience", "two words"), "audience"),
    ):  # fmt: skip
        assert words in refused(await cli(api, tmp_path, *args))
    ok(await cli(api, tmp_path, "clients", "create", "dup", "--audience", "x"))
    assert "exists already" in refused(
        await cli(api, tmp_path, "clients", "create", "dup", "--audience", "x")
    )


def _register(workdir: Path, database: str, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        authgate_command("clients", "create", *args, "--json"),
        cwd=workdir,
        env=clean_environment(DATABASE_URL=database, LOG_LEVEL="warning"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    created: dict[str, Any] = json.loads(result.stdout)
    return created


async def test_authlib_client_against_a_running_authgate(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'authgate.db'}"
    with running_server(tmp_path, DATABASE_URL=database, **CHEAP) as server:
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            meta = (await http.get("/.well-known/openid-configuration")).json()
            signed_up = await http.post(
                "/api/v1/signup/credentials", json={"email": "cow@cow.jp", "password": PASSWORD}
            )
            assert signed_up.status_code == 200
            tokens = signed_up.json()
        service = await asyncio.to_thread(
            _register, tmp_path, database, "billing", "--audience", base
        )
        resource = await asyncio.to_thread(
            _register, tmp_path, database, "orders-rs", "--audience", "authgate", "--introspect"
        )
        assert meta["token_endpoint"] == f"{base}/oauth/token"

        # 1. A public client whose access token has expired refreshes it on its own.
        updates: list[dict[str, Any]] = []

        async def update_token(token: dict[str, Any], refresh_token: str | None = None) -> None:
            updates.append(token)

        expired = {
            "access_token": tokens["accessToken"],
            "refresh_token": tokens["refreshToken"],
            "token_type": "Bearer",
            "expires_at": int(time.time()) - 60,
        }
        async with AsyncOAuth2Client(
            client_id="authgate",
            token_endpoint_auth_method="none",
            token=expired,
            update_token=update_token,
            token_endpoint=meta["token_endpoint"],
            timeout=10,
        ) as user_client:
            me = await user_client.get(f"{base}/api/v1/me")
            assert me.status_code == 200, me.text
            assert me.json()["email"] == "cow@cow.jp"
            assert len(updates) == 1
            refreshed = updates[0]
            assert refreshed["refresh_token"] != tokens["refreshToken"]
            assert refreshed["access_token"] != tokens["accessToken"]
            claims = jwt.decode(refreshed["access_token"], options={"verify_signature": False})
            assert claims["iss"] == meta["issuer"]
            assert claims["client_id"] == "authgate"
            # The old refresh token was rotated: presenting it after the leeway is reuse.
            # 2. RFC 7009 revocation through Authlib ends the session.
            revoked = await user_client.revoke_token(
                meta["revocation_endpoint"], token=refreshed["refresh_token"]
            )
            assert revoked.status_code == 200

        # 3. client_credentials, with each authentication method Authlib offers.
        for method in ("client_secret_basic", "client_secret_post"):
            async with AsyncOAuth2Client(
                client_id="billing",
                client_secret=service["client_secret"],
                token_endpoint_auth_method=method,
                timeout=10,
            ) as service_client:
                token = await service_client.fetch_token(
                    meta["token_endpoint"], grant_type="client_credentials"
                )
                assert token["token_type"] == "Bearer"
                assert "refresh_token" not in token
                claims = jwt.decode(token["access_token"], options={"verify_signature": False})
                assert claims["sub"] == "billing"
                assert claims["aud"] == base

        # 4. A resource server introspects through Authlib: the revoked session's
        # access token is inactive, though its signature and exp are still good.
        async with AsyncOAuth2Client(
            client_id="orders-rs",
            client_secret=resource["client_secret"],
            token_endpoint_auth_method="client_secret_basic",
            timeout=10,
        ) as rs_client:
            answer = await rs_client.introspect_token(
                meta["introspection_endpoint"], token=refreshed["access_token"]
            )
            assert answer.status_code == 200
            assert answer.json() == {"active": False}

        # 5. The verifier kit's own RFC 7662 client agrees, with both of its methods.
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            signed_in = await http.post(
                "/api/v1/auth/credentials", json={"email": "cow@cow.jp", "password": PASSWORD}
            )
            live = signed_in.json()["accessToken"]
        for method in ("client_secret_basic", "client_secret_post"):
            kit = Introspection(
                meta["introspection_endpoint"],
                client_id="orders-rs",
                client_secret=resource["client_secret"],
                auth_method=method,
                allow_http=True,  # loopback in the test
            )
            assert await kit.is_active(live) is True
            assert await kit.is_active(refreshed["access_token"]) is False
