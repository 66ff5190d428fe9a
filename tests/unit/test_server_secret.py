"""The server secret: loading, refusals that name the variable, derived keys."""

from __future__ import annotations

import logging
import secrets
import stat
from pathlib import Path
from typing import Any

import pytest

from authgate.config import SettingsError, load_settings
from authgate.server_secret import (
    ServerSecret,
    ServerSecretError,
    load_server_secret,
    secret_strength_problem,
    warn_if_development,
)

STRONG = secrets.token_urlsafe(32)  # 43 characters
OTHER = secrets.token_urlsafe(32)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Settings from a clean environment, in a directory without a .env file."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "SECRET_KEY",
        "SECRET_KEY_PATH",
        "SECRET_KEY_PREVIOUS",
        "SECRET_KEY_PREVIOUS_PATH",
        "AUTHGATE_ENV",
        "AUTHGATE_DATA_DIR",
    ):
        monkeypatch.delenv(name, raising=False)

    def settings(**values: Any) -> Any:
        return load_settings(authgate_data_dir=tmp_path / "data", **values)

    return settings


def _production(tmp_path: Path) -> dict[str, Any]:
    return {
        "authgate_env": "production",
        "jwt_private_key_path": tmp_path / "private.pem",
        "jwt_public_key_path": tmp_path / "public.pem",
        "public_url": "https://auth.example.test",
        "smtp_host": "smtp.example.test",
        "email_verify_url": "https://app.example.test/verify?token={token}",
        "password_reset_url": "https://app.example.test/reset?token={token}",
    }


def _secret_file(path: Path, content: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(content)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("a" * 100, False),  # a repetition
        ("passwordpassword" * 4, False),  # 7 distinct characters
        (secrets.token_hex(32)[:63], False),  # 252 bits of hex
        (secrets.token_hex(32), True),
        (secrets.token_urlsafe(32)[:42], False),
        (secrets.token_urlsafe(32), True),
    ],
    # Fixed ids: pytest-xdist workers must collect the same names, and these values
    # are drawn at random.
    ids=["repetition", "few-characters", "short-hex", "hex", "short-base64url", "base64url"],
)
def test_weak_secret_values_are_refused(value: str, accepted: bool) -> None:
    assert (secret_strength_problem(value.encode()) is None) is accepted


def test_a_short_secret_key_is_refused_without_echoing_it(env: Any) -> None:
    weak = secrets.token_urlsafe(20)
    with pytest.raises(SettingsError, match=r"^SECRET_KEY: must hold at least 32") as caught:
        env(secret_key=weak)
    assert weak not in str(caught.value)
    with pytest.raises(SettingsError, match=r"^SECRET_KEY_PREVIOUS: "):
        env(secret_key=STRONG, secret_key_previous="short")


def test_value_and_path_together_are_refused(env: Any, tmp_path: Path) -> None:
    path = _secret_file(tmp_path / "s.key", secrets.token_bytes(32))
    with pytest.raises(SettingsError, match="SECRET_KEY and SECRET_KEY_PATH are both set"):
        env(secret_key=STRONG, secret_key_path=path)
    with pytest.raises(SettingsError, match="SECRET_KEY_PREVIOUS and SECRET_KEY_PREVIOUS_PATH"):
        env(secret_key=STRONG, secret_key_previous=OTHER, secret_key_previous_path=path)


def test_production_refuses_to_start_without_a_secret(env: Any, tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        env(**_production(tmp_path))
    message = str(caught.value)
    assert message.startswith("SECRET_KEY / SECRET_KEY_PATH: AUTHGATE_ENV=production")
    assert "\n" not in message
    assert not (tmp_path / "data").exists()


def test_production_refuses_a_secret_file_others_can_read(env: Any, tmp_path: Path) -> None:
    for mode in (0o640, 0o604):
        path = _secret_file(tmp_path / "s.key", secrets.token_bytes(32), mode)
        settings = env(secret_key_path=path, **_production(tmp_path))
        with pytest.raises(ServerSecretError, match=r"^SECRET_KEY_PATH: .* readable by group"):
            load_server_secret(settings)
    path.chmod(0o600)
    loaded = load_server_secret(env(secret_key_path=path, **_production(tmp_path)))
    assert loaded.secret.current == path.read_bytes()
    assert loaded.development_file is None


def test_development_warns_about_a_readable_secret_file(
    env: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _secret_file(tmp_path / "s.key", secrets.token_bytes(32), 0o644)
    with caplog.at_level(logging.WARNING, logger="authgate"):
        load_server_secret(env(secret_key_path=path))
    assert [r.getMessage() for r in caplog.records if "readable by group" in r.getMessage()]


@pytest.mark.parametrize(
    ("content", "problem"),
    [(secrets.token_bytes(31), "at least 32"), (b"x" * 64 + b"\n", "repetition")],
    ids=["31-random-bytes", "repetition"],
)
def test_a_weak_secret_file_is_refused(
    env: Any, tmp_path: Path, content: bytes, problem: str
) -> None:
    path = _secret_file(tmp_path / "s.key", content)
    with pytest.raises(ServerSecretError, match=rf"^SECRET_KEY_PATH: .*{problem}"):
        load_server_secret(env(secret_key_path=path))


def test_a_missing_secret_file_names_the_variable(env: Any, tmp_path: Path) -> None:
    settings = env(secret_key=STRONG, secret_key_previous_path=tmp_path / "missing")
    with pytest.raises(ServerSecretError, match=r"^SECRET_KEY_PREVIOUS_PATH: cannot read"):
        load_server_secret(settings)


def test_a_text_file_and_the_same_value_are_the_same_secret(env: Any, tmp_path: Path) -> None:
    path = _secret_file(tmp_path / "s.key", STRONG.encode() + b"\n")
    from_file = load_server_secret(env(secret_key_path=path)).secret
    from_value = load_server_secret(env(secret_key=STRONG)).secret
    assert from_file.refresh_sealing_keys() == from_value.refresh_sealing_keys()


def test_development_creates_one_private_secret_file(
    env: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="authgate"):
        first = load_server_secret(env())
        warn_if_development(first)
    path = tmp_path / "data" / "secret.key"
    assert first.development_file == (path, True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(path.read_bytes().strip()) >= 43
    warnings = [r.getMessage() for r in caplog.records if "SERVER SECRET" in r.getMessage()]
    assert len(warnings) == 1
    assert "created now" in warnings[0]
    assert "SECRET_KEY_PATH" in warnings[0]
    second = load_server_secret(env())
    assert second.development_file == (path, False)
    with caplog.at_level(logging.WARNING, logger="authgate"):
        warn_if_development(second)
        warn_if_development(load_server_secret(env(secret_key=STRONG)))
    warnings = [r.getMessage() for r in caplog.records if "SERVER SECRET" in r.getMessage()]
    assert len(warnings) == 2
    assert "created earlier" in warnings[1]
    assert second.secret.throttle_key() == first.secret.throttle_key()
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no temporary left


def test_purpose_keys_are_distinct_and_stable() -> None:
    secret = ServerSecret(STRONG.encode())
    (sealing,) = secret.refresh_sealing_keys()
    (kek,) = secret.key_encryption_keys()
    keys = {sealing, kek, secret.throttle_key(), STRONG.encode()}
    assert len(keys) == 4
    assert all(len(key) == 32 for key in keys - {STRONG.encode()})
    assert ServerSecret(STRONG.encode()).throttle_key() == secret.throttle_key()
    assert ServerSecret(OTHER.encode()).throttle_key() != secret.throttle_key()
    assert "STRONG" not in repr(secret)
    assert STRONG not in repr(secret)


def test_the_previous_secret_still_opens(env: Any) -> None:
    rotated = load_server_secret(env(secret_key=OTHER, secret_key_previous=STRONG)).secret
    before = ServerSecret(STRONG.encode())
    assert rotated.refresh_sealing_keys()[1:] == before.refresh_sealing_keys()
    assert rotated.key_encryption_keys()[1:] == before.key_encryption_keys()
    assert (
        rotated.refresh_sealing_keys()[0] == ServerSecret(OTHER.encode()).refresh_sealing_keys()[0]
    )
    with pytest.raises(ValueError, match="too weak"):
        ServerSecret(b"short")


@pytest.mark.parametrize("last", [b"\n", b"\r"])
def test_a_binary_secret_file_is_taken_whole(env: Any, tmp_path: Path, last: bytes) -> None:
    # Random bytes end in a line-ending byte one time in 128: still 32 bytes.
    content = b"\xff" + secrets.token_bytes(30) + last
    path = _secret_file(tmp_path / "s.key", content)
    assert load_server_secret(env(secret_key_path=path)).secret.current == content
