"""Imported seed hashes: wrapped in argon2id, verified through the legacy computation
only, never accepted raw; and the seed rows they come from."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import bcrypt
import pytest

from authgate.crypto.legacy_hashes import (
    LEGACY_MARKER,
    LegacyHashError,
    bcrypt_legacy,
    parse_wrapped,
    sha3_legacy,
)
from authgate.crypto.passwords import Argon2Parameters, Argon2PasswordHasher
from authgate.importers import serverless_seed, timelapseme_seed
from authgate.importers.records import InvalidRow


@pytest.fixture
def hasher() -> Iterator[Argon2PasswordHasher]:
    value = Argon2PasswordHasher(Argon2Parameters(time_cost=1, memory_kib=8), workers=1)
    yield value
    value.close()


def sha3(password: str) -> str:
    return hashlib.sha3_512(password.encode("utf-8")).hexdigest()


def node_bcrypt(password: str, cost: int = 4) -> str:
    return bcrypt.hashpw(password.encode("utf-8")[:72], bcrypt.gensalt(cost)).decode()


async def test_a_wrapped_sha3_hash_verifies_the_old_password_only(
    hasher: Argon2PasswordHasher,
) -> None:
    digest = sha3("Moo00!")
    stored = await hasher.wrap_legacy(sha3_legacy(digest))
    assert stored.startswith(f"{LEGACY_MARKER}sha3-512$argon2id$")
    assert digest not in stored
    assert await hasher.verify(stored, "Moo00!")
    assert not await hasher.verify(stored, "moo00!")
    assert not await hasher.verify(stored, digest)  # the hash is not a password
    assert hasher.needs_rehash(stored)


async def test_a_wrapped_bcrypt_hash_keeps_salt_and_cost_but_not_the_checksum(
    hasher: Argon2PasswordHasher,
) -> None:
    legacy = node_bcrypt("Moo00!", cost=10)
    stored = await hasher.wrap_legacy(bcrypt_legacy(legacy))
    assert stored.startswith(f"{LEGACY_MARKER}bcrypt{legacy[:29]}$argon2id$")
    assert legacy[29:] not in stored
    assert len(stored) <= 255
    assert await hasher.verify(stored, "Moo00!")
    assert not await hasher.verify(stored, "Moo00?")
    wrapped = parse_wrapped(stored)
    assert wrapped is not None
    assert wrapped.setting == legacy[:29]


async def test_bcrypt_counts_72_bytes_as_node_bcrypt_did(hasher: Argon2PasswordHasher) -> None:
    password = "é" * 36 + "the rest"  # 72 bytes of UTF-8, then more
    stored = await hasher.wrap_legacy(bcrypt_legacy(node_bcrypt(password)))
    assert await hasher.verify(stored, "é" * 36)
    assert not await hasher.verify(stored, "é" * 35)


async def test_the_legacy_step_uses_the_password_as_typed(hasher: Argon2PasswordHasher) -> None:
    # js-sha3 hashed the UTF-8 text as typed: a decomposed accent is another password.
    composed, decomposed = "caf\u00e9-pass", "cafe\u0301-pass"
    stored = await hasher.wrap_legacy(sha3_legacy(sha3(decomposed)))
    assert await hasher.verify(stored, decomposed)
    assert not await hasher.verify(stored, composed)


@pytest.mark.parametrize(
    "raw",
    [
        sha3("Moo00!"),
        node_bcrypt("Moo00!"),
        f"{LEGACY_MARKER}{sha3('Moo00!')}",
        f"{LEGACY_MARKER}bcrypt{node_bcrypt('Moo00!')}",
        f"{LEGACY_MARKER}sha3-512$argon2id$garbage",
    ],
    # Fixed ids: bcrypt salts are random, and pytest-xdist workers must collect the
    # same names.
    ids=["raw-sha3", "raw-bcrypt", "marker-on-sha3", "marker-on-bcrypt", "damaged-wrapper"],
)
async def test_a_raw_or_damaged_legacy_value_never_verifies(
    hasher: Argon2PasswordHasher, raw: str
) -> None:
    assert not await hasher.verify(raw, "Moo00!")


def test_seed_hashes_of_the_wrong_shape_are_refused() -> None:
    for value in ("", "ab" * 63, "zz" * 64, sha3("x") + "0"):
        with pytest.raises(LegacyHashError):
            sha3_legacy(value)
    assert sha3_legacy(sha3("x").upper() + "  ").secret == sha3("x")  # CHAR(130) padding
    bad_salt = "$2b$10$" + "z" * 53  # the salt's last character has ignored bits set
    for value in ("", "$2b$10$short", "$1$abc", bad_salt, "$2b$99$" + "a" * 53):
        with pytest.raises(LegacyHashError):
            bcrypt_legacy(value)


def test_serverless_rows_map_display_name_to_display_and_first_name() -> None:
    user = serverless_seed.parse_row(
        {"CIF": 7, "EMAIL": " Cow@Cow.JP ", "PASSWORD": sha3("x"), "DISPLAY_NAME": "Melvin"}
    )
    assert (user.row_id, user.email.key, user.kind) == ("CIF=7", "cow@cow.jp", "password")
    assert (user.given_name, user.family_name, user.display_name) == ("Melvin", "", "Melvin")
    with pytest.raises(InvalidRow, match="DISPLAY_NAME"):
        serverless_seed.parse_row(
            {"CIF": 8, "EMAIL": "a@b.jp", "PASSWORD": sha3("x"), "DISPLAY_NAME": "a\u202eb"}
        )


def test_timelapseme_rows_of_both_versions() -> None:
    google = timelapseme_seed.parse_row(
        {
            "id": 1,
            "email": "g@corp.example",
            "passwordHash": None,
            "authenticationMethod": "GOOGLE",
            "firstName": "Gina",
            "lastName": "G",
        }
    )
    assert (google.kind, google.given_name, google.family_name) == ("google", "Gina", "G")
    nick = timelapseme_seed.parse_row(
        {
            "id": 2,
            "email": "n@corp.example",
            "passwordHash": node_bcrypt("x"),
            "authenticationMethod": "CREDENTIALS",
            "nickname": "nick",
        }
    )
    assert (nick.kind, nick.given_name, nick.display_name) == ("password", "nick", "nick")
    for method, password_hash in (("CREDENTIALS", None), ("FACEBOOK", None)):
        with pytest.raises(InvalidRow):
            timelapseme_seed.parse_row(
                {
                    "id": 3,
                    "email": "x@corp.example",
                    "passwordHash": password_hash,
                    "authenticationMethod": method,
                }
            )
