"""Sealed successors: a database copy plus any old token never yields a live token.

The sealing key mixes the server secret (not in the database) with the parent
token, and each sealed copy is cleared as soon as nothing may open it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authgate.clock import FrozenClock
from authgate.crypto.refresh_secrets import SuccessorSealer, hash_refresh_token
from authgate.server_secret import ServerSecret
from authgate.services.pruning import PruningService, RetentionPolicy
from tests.conftest import Api, start_api
from tests.support.rows import fetch_all

REFRESH = "/api/v1/refresh"
OLD_SECRET = secrets.token_urlsafe(32)
NEW_SECRET = secrets.token_urlsafe(32)


async def _rotate(api: Api, token: str) -> str:
    response = await api.client.post(REFRESH, json={"refreshToken": token})
    assert response.status_code == 200, response.text
    refresh_token: str = response.json()["refreshToken"]
    return refresh_token


def _open_without_secret(parent: str, sealed: bytes) -> str | None:
    """The derivation before the server secret: HKDF of the parent token alone."""
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"authgate refresh-token successor v1",
    ).derive(parent.encode())
    aad = hash_refresh_token(parent).encode("ascii")
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], aad).decode()
    except (InvalidTag, ValueError):
        return None


def _everything_recoverable(
    known: set[str], blobs: list[bytes], openers: Sequence[Callable[[str, bytes], str | None]]
) -> set[str]:
    """Every token reachable from ``known`` by opening blobs, repeated to a fixpoint."""
    known = set(known)
    while True:
        found = {
            opened
            for blob in blobs
            for token in known
            for opener in openers
            if (opened := opener(token, blob)) is not None
        }
        if found <= known:
            return known
        known |= found


async def test_a_database_copy_and_the_sign_in_token_yield_no_live_token(api: Api) -> None:
    sign_in = (await api.sign_up())["refreshToken"]
    current = sign_in
    for _ in range(4):
        api.clock.advance(1)
        current = await _rotate(api, current)
    api.clock.advance(api.settings.refresh_reuse_leeway_seconds + 1)

    rows = await fetch_all(api.settings.effective_database_url, "refresh_tokens")
    assert len(rows) == 5
    blobs = [row["sealed_for_parent"] for row in rows if row["sealed_for_parent"] is not None]
    # Rotating a token cleared its own sealed copy: only the current one is left.
    assert len(blobs) == 1
    # Someone with the copy and the sign-in token, trying the old derivation, or even
    # the server's own keys: nothing opens, so the current token stays out of reach.
    server = SuccessorSealer(_secret_of(api).refresh_sealing_keys())
    openers = [_open_without_secret, server.open]
    assert _everything_recoverable({sign_in}, blobs, openers) == {sign_in}
    # Nor from any token short of the current one's parent without the secret.
    assert _everything_recoverable({sign_in}, blobs, [_open_without_secret]) == {sign_in}
    assert (await api.client.post(REFRESH, json={"refreshToken": current})).status_code == 200


async def test_without_the_secret_not_even_the_parent_opens_the_current_copy(api: Api) -> None:
    parent = (await api.sign_up())["refreshToken"]
    current = await _rotate(api, parent)
    (row,) = [
        r
        for r in await fetch_all(api.settings.effective_database_url, "refresh_tokens")
        if r["token_hash"] == hash_refresh_token(current)
    ]
    sealed = row["sealed_for_parent"]
    assert _open_without_secret(parent, sealed) is None
    stranger = SuccessorSealer(ServerSecret(secrets.token_bytes(32)).refresh_sealing_keys())
    assert stranger.open(parent, sealed) is None
    assert SuccessorSealer(_secret_of(api).refresh_sealing_keys()).open(parent, sealed) == current


def _secret_of(api: Api) -> ServerSecret:
    path = api.settings.authgate_data_dir / "secret.key"
    if api.settings.secret_key is not None:
        return ServerSecret(api.settings.secret_key.get_secret_value().encode())
    return ServerSecret(path.read_bytes().rstrip(b"\r\n"))


async def _sealed_by_hash(api: Api) -> dict[str, bytes | None]:
    rows = await fetch_all(api.settings.effective_database_url, "refresh_tokens")
    return {row["token_hash"]: row["sealed_for_parent"] for row in rows}


async def test_rotating_the_successor_clears_its_sealed_copy(api: Api) -> None:
    t0 = (await api.sign_up())["refreshToken"]
    t1 = await _rotate(api, t0)
    assert (await _sealed_by_hash(api))[hash_refresh_token(t1)] is not None
    t2 = await _rotate(api, t1)
    sealed = await _sealed_by_hash(api)
    assert sealed[hash_refresh_token(t0)] is None
    assert sealed[hash_refresh_token(t1)] is None
    assert sealed[hash_refresh_token(t2)] is not None
    # t1 may still retry within the leeway: t2's copy is the one it opens.
    retry = await api.client.post(REFRESH, json={"refreshToken": t1})
    assert (retry.status_code, retry.json()["refreshToken"]) == (200, t2)


async def test_revoking_the_session_clears_its_sealed_copies(api: Api) -> None:
    t0 = (await api.sign_up())["refreshToken"]
    await _rotate(api, t0)
    api.clock.advance(api.settings.refresh_reuse_leeway_seconds + 1)
    # Past the leeway, the parent's return is reuse: the family is revoked and
    # nothing of it stays sealed.
    assert (await api.client.post(REFRESH, json={"refreshToken": t0})).status_code == 401
    assert set((await _sealed_by_hash(api)).values()) == {None}

    t0 = (
        await api.client.post(
            "/api/v1/auth/credentials", json={"email": "cow@cow.jp", "password": "Moo00!_*&x"}
        )
    ).json()["refreshToken"]
    t1 = await _rotate(api, t0)
    assert (await _sealed_by_hash(api))[hash_refresh_token(t1)] is not None
    assert (await api.client.post("/api/v1/revoke", json={"refreshToken": t1})).status_code == 200
    assert set((await _sealed_by_hash(api)).values()) == {None}


async def test_zero_leeway_seals_nothing(make_settings: Any, clock: FrozenClock) -> None:
    async for api in start_api(make_settings(refresh_reuse_leeway_seconds=0), clock):
        t0 = (await api.sign_up())["refreshToken"]
        await _rotate(api, await _rotate(api, t0))
        assert set((await _sealed_by_hash(api)).values()) == {None}


async def test_successors_sealed_under_the_previous_secret_still_open(
    make_settings: Any, clock: FrozenClock
) -> None:
    # Two sessions rotated under the old secret...
    async for api in start_api(make_settings(secret_key=OLD_SECRET), clock):
        a0 = (await api.sign_up())["refreshToken"]
        b0 = (
            await api.client.post(
                "/api/v1/auth/credentials", json={"email": "cow@cow.jp", "password": "Moo00!_*&x"}
            )
        ).json()["refreshToken"]
        a1, b1 = await _rotate(api, a0), await _rotate(api, b0)
    clock.advance(2)
    # ...then the secret is rotated, keeping the old one as SECRET_KEY_PREVIOUS: a
    # retry within the leeway still gets the same successor.
    rotated = make_settings(secret_key=NEW_SECRET, secret_key_previous=OLD_SECRET)
    async for api in start_api(rotated, clock):
        retry = await api.client.post(REFRESH, json={"refreshToken": a0})
        assert (retry.status_code, retry.json()["refreshToken"]) == (200, a1)
        # New material is sealed under the new secret alone.
        a2 = await _rotate(api, a1)
        sealed = (await _sealed_by_hash(api))[hash_refresh_token(a2)]
        assert sealed is not None
        new_only = SuccessorSealer(ServerSecret(NEW_SECRET.encode()).refresh_sealing_keys())
        old_only = SuccessorSealer(ServerSecret(OLD_SECRET.encode()).refresh_sealing_keys())
        assert new_only.open(a1, sealed) == a2
        assert old_only.open(a1, sealed) is None
    # Without the previous secret, the old copy no longer opens: the retry is reuse.
    async for api in start_api(make_settings(secret_key=NEW_SECRET), clock):
        assert (await api.client.post(REFRESH, json={"refreshToken": b0})).status_code == 401
        assert (await api.client.post(REFRESH, json={"refreshToken": b1})).status_code == 401


async def test_pruning_clears_the_sealed_copy_once_the_leeway_has_passed(api: Api) -> None:
    t0 = (await api.sign_up())["refreshToken"]
    t1 = await _rotate(api, t0)
    pruning = PruningService(
        uow=api.services.uow,
        clock=api.clock,
        policy=RetentionPolicy(
            session_retention_days=30,
            audit_retention_days=365,
            reuse_leeway_seconds=api.settings.refresh_reuse_leeway_seconds,
        ),
    )
    # Within the leeway the copy stays (a retry still needs it)...
    api.clock.advance(api.settings.refresh_reuse_leeway_seconds - 1)
    assert (await pruning.run()).sealed_copies == 0
    retry = await api.client.post(REFRESH, json={"refreshToken": t0})
    assert (retry.status_code, retry.json()["refreshToken"]) == (200, t1)
    # ...and once it has passed, pruning clears it; the session lives on.
    api.clock.advance(2)
    assert (await pruning.run()).sealed_copies == 1
    assert set((await _sealed_by_hash(api)).values()) == {None}
    assert (await api.client.post(REFRESH, json={"refreshToken": t1})).status_code == 200
