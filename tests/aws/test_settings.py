"""Settings for a machine with no persistent disk: keys as PEM text, a shared secret,
no SQLite, one connection per container."""

from __future__ import annotations

from pathlib import Path

import pytest

from authgate.bootstrap import static_key_set
from authgate.config import SettingsError, load_settings
from authgate.crypto.keys import KeyError_, write_key_pair
from authgate.storage.engine import SERVERLESS_POOL
from tests.support.server_secrets import TEST_SECRET_TEXT

MARIADB = "mysql+asyncmy://authgate:pw@aurora.example:3306/authgate"


def test_the_static_ring_from_pem_text(key_pair: tuple[Path, Path]) -> None:
    private, public = key_pair[0].read_text(), key_pair[1].read_text()
    from_text = static_key_set(load_settings(jwt_private_key=private, jwt_public_key=public))
    from_files = static_key_set(
        load_settings(jwt_private_key_path=key_pair[0], jwt_public_key_path=key_pair[1])
    )
    assert from_text is not None
    assert from_files is not None
    assert from_text.signing.kid == from_files.signing.kid
    # The public key is optional; the private key is never shown.
    settings = load_settings(jwt_private_key=private)
    assert settings.static_key_ring
    assert "PRIVATE KEY" not in repr(settings)
    assert "PRIVATE KEY" not in str(settings)


def test_a_value_and_a_path_for_one_key_are_refused(key_pair: tuple[Path, Path]) -> None:
    private, public = key_pair[0].read_text(), key_pair[1].read_text()
    with pytest.raises(SettingsError, match="JWT_PRIVATE_KEY and JWT_PRIVATE_KEY_PATH"):
        load_settings(jwt_private_key=private, jwt_private_key_path=key_pair[0])
    with pytest.raises(SettingsError, match="JWT_PUBLIC_KEY and JWT_PUBLIC_KEY_PATH"):
        load_settings(
            jwt_private_key=private, jwt_public_key=public, jwt_public_key_path=key_pair[1]
        )
    with pytest.raises(SettingsError, match="JWT_PUBLIC_KEY is set without"):
        load_settings(jwt_public_key=public)
    # Empty means unset (a copied .env.example).
    assert not load_settings(jwt_private_key="", jwt_public_key="").static_key_ring


def test_bad_pem_text_names_the_variable_and_not_the_text(
    key_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    with pytest.raises(KeyError_) as raised:
        static_key_set(load_settings(jwt_private_key="-----BEGIN secret-ish nonsense"))
    assert str(raised.value).startswith("JWT_PRIVATE_KEY: the value is not")
    assert "nonsense" not in str(raised.value)
    _, other_public = write_key_pair(tmp_path, "RS256", stem="other")
    with pytest.raises(KeyError_, match="JWT_PUBLIC_KEY: the public key is not the public half"):
        static_key_set(
            load_settings(
                jwt_private_key=key_pair[0].read_text(), jwt_public_key=other_public.read_text()
            )
        )
    with pytest.raises(KeyError_, match="JWT_PUBLIC_KEY: the value is not a PEM public key"):
        static_key_set(
            load_settings(jwt_private_key=key_pair[0].read_text(), jwt_public_key="nope")
        )


def test_lambda_needs_a_shared_secret() -> None:
    with pytest.raises(SettingsError, match="SECRET_KEY: required on AWS Lambda"):
        load_settings(runtime="lambda", database_url=MARIADB)
    settings = load_settings(runtime="lambda", database_url=MARIADB, secret_key=TEST_SECRET_TEXT)
    assert settings.on_lambda


def test_detected_from_the_runtime_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "authgate-http")
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET_TEXT)
    assert load_settings(database_url=MARIADB).on_lambda
    assert not load_settings(runtime="server").on_lambda


def test_the_serverless_pool_is_one_connection_checked_after_a_freeze() -> None:
    assert SERVERLESS_POOL["pool_size"] == 1
    assert SERVERLESS_POOL["max_overflow"] <= 2
    assert SERVERLESS_POOL["pool_pre_ping"] is True
    assert SERVERLESS_POOL["pool_recycle"] <= 300
