"""AUTHGATE_ENV=production refuses each unsafe setting with one line naming the
variable; development accepts it and warns once (docs/security.md, "Production mode")."""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path
from typing import Any

import pytest

from authgate.config import Settings, SettingsError, load_settings
from authgate.config_checks import log_development_warnings, unsafe_settings

OIDC_HTTP_KEYS = json.dumps(
    {
        "corp": {
            "issuer": "https://login.corp.example",
            "jwks_url": "http://127.0.0.1:9/keys",
            "audiences": ["client"],
        }
    }
)

PRODUCTION_SECRET = secrets.token_urlsafe(32)

# (variable named in the refusal, overrides that make exactly that one unsafe)
UNSAFE: list[tuple[str, dict[str, Any]]] = [
    ("RATE_LIMIT_ENABLED", {"rate_limit_enabled": False}),
    ("RATE_LIMIT_STORAGE_URL", {"workers": 2}),
    (
        "RATE_LIMIT_STORAGE_URL",
        {"runtime": "lambda", "database_url": "mysql+asyncmy://u:p@db.example:3306/authgate"},
    ),
    ("PASSWORD_HASH_MEMORY_KIB", {"password_hash_memory_kib": 19_455}),
    ("PASSWORD_HASH_TIME_COST", {"password_hash_time_cost": 1}),
    ("PASSWORD_HASH_MEMORY_KIB", {"password_hash_memory_kib": 7_167, "password_hash_time_cost": 5}),
    ("PASSWORD_MIN_LENGTH", {"password_min_length": 7}),
    ("PASSWORD_MIN_STRENGTH", {"password_min_strength": 1}),
    (
        "GOOGLE_JWKS_URL",
        {"jwt_audience_google": "web", "google_jwks_url": "http://127.0.0.1:9/keys"},
    ),
    (
        "APPLE_JWKS_URL",
        {"jwt_audience_apple": "app", "apple_jwks_url": "http://localhost:9/keys"},
    ),
    ("OIDC_PROVIDERS", {"oidc_providers": OIDC_HTTP_KEYS}),
    ("REFRESH_REUSE_LEEWAY_SECONDS", {"refresh_reuse_leeway_seconds": 61}),
    ("PROVIDER_CLOCK_SKEW_SECONDS", {"provider_clock_skew_seconds": 301}),
    ("PUBLIC_URL", {"public_url": "http://auth.example.test"}),
    ("JWT_ISSUER", {"jwt_issuer": "http://auth.example.test"}),
    ("JWT_ISSUER", {"jwt_issuer": "authgate"}),
]


@pytest.fixture
def key_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.chdir(tmp_path)  # no .env
    private, public = tmp_path / "jwt-private.pem", tmp_path / "jwt-public.pem"
    private.write_text("not parsed by Settings")
    private.chmod(0o600)
    public.write_text("not parsed by Settings")
    return private, public


def _production(key_files: tuple[Path, Path], **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "authgate_env": "production",
        "jwt_private_key_path": key_files[0],
        "jwt_public_key_path": key_files[1],
        "public_url": "https://auth.example.test",
        # Required in production (tests/unit/test_server_secret.py covers its refusals).
        "secret_key": PRODUCTION_SECRET,
        "smtp_host": "smtp.example.test",
        "email_verify_url": "https://app.example.test/verify?token={token}",
        "password_reset_url": "https://app.example.test/reset?token={token}",
        **overrides,
    }
    return load_settings(**values)


def test_safe_production_settings_start(key_files: tuple[Path, Path]) -> None:
    settings = _production(key_files)
    assert unsafe_settings(settings) == []
    assert settings.issuer == "https://auth.example.test"


@pytest.mark.parametrize(
    "overrides",
    [
        {"password_hash_memory_kib": 47_104, "password_hash_time_cost": 1},
        {"password_hash_memory_kib": 12_288, "password_hash_time_cost": 3},
        {"password_hash_memory_kib": 9_216, "password_hash_time_cost": 4},
        {"password_hash_memory_kib": 7_168, "password_hash_time_cost": 5},
        {"password_min_length": 8, "password_min_strength": 2},
        {"refresh_reuse_leeway_seconds": 60, "provider_clock_skew_seconds": 300},
        {"workers": 2, "rate_limit_storage_url": "redis://127.0.0.1:6379/0"},
        {"jwt_audience_google": "web", "oidc_providers": ""},
        {"jwt_issuer": "https://issuer.example.test", "public_url": "http://10.0.0.1:3000"},
    ],
)
def test_the_edges_of_each_rule_are_allowed(
    key_files: tuple[Path, Path], overrides: dict[str, Any]
) -> None:
    assert unsafe_settings(_production(key_files, **overrides)) == []


@pytest.mark.parametrize(("variable", "overrides"), UNSAFE)
def test_production_refuses_with_one_line_naming_the_variable(
    key_files: tuple[Path, Path], variable: str, overrides: dict[str, Any]
) -> None:
    with pytest.raises(SettingsError) as refused:
        _production(key_files, **overrides)
    message = str(refused.value)
    assert variable in message.split(":")[0]
    assert "AUTHGATE_ENV=production" in message
    assert "\n" not in message


@pytest.mark.parametrize(("variable", "overrides"), UNSAFE)
def test_development_warns_once_naming_the_variable(
    key_files: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
    variable: str,
    overrides: dict[str, Any],
) -> None:
    settings = _production(key_files, **overrides, authgate_env="development")
    log = logging.getLogger("tests.production_mode")
    with caplog.at_level(logging.WARNING, logger=log.name):
        log_development_warnings(settings, log)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1, lines
    assert variable in lines[0].split(":")[0]
    assert "development only" in lines[0]


def test_a_private_key_open_to_group_or_others_is_refused(key_files: tuple[Path, Path]) -> None:
    for mode in (0o640, 0o604, 0o620):
        key_files[0].chmod(mode)
        with pytest.raises(SettingsError, match=r"^JWT_PRIVATE_KEY_PATH: .* \(mode 06"):
            _production(key_files)
    key_files[0].chmod(0o400)
    assert _production(key_files).is_production


def test_every_unsafe_setting_is_named_in_the_one_line(key_files: tuple[Path, Path]) -> None:
    with pytest.raises(SettingsError) as refused:
        _production(key_files, rate_limit_enabled=False, password_min_length=6)
    message = str(refused.value)
    assert "RATE_LIMIT_ENABLED" in message
    assert "PASSWORD_MIN_LENGTH" in message
    assert "\n" not in message


def test_development_defaults_warn_only_about_the_http_issuer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    findings = unsafe_settings(load_settings())
    assert [f.variable for f in findings] == ["PUBLIC_URL"]


def test_port_zero_without_a_public_url_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    findings = unsafe_settings(load_settings(port=0, public_url="https://a.example.test"))
    assert findings == []
    findings = unsafe_settings(load_settings(port=0))
    assert any("PORT=0" in f.problem for f in findings)


def test_every_refusal_is_on_the_one_line(key_files: tuple[Path, Path]) -> None:
    # One edit fixes them all: an unsafe setting and what production lacks (the
    # server secret, SMTP) are reported together, not one per start.
    with pytest.raises(SettingsError) as refused:
        _production(
            key_files,
            public_url="http://auth.example.test",
            secret_key=None,
            smtp_host="",
            rate_limit_enabled=False,
        )
    message = str(refused.value)
    assert "\n" not in message
    for variable in ("RATE_LIMIT_ENABLED", "PUBLIC_URL", "SECRET_KEY / SECRET_KEY_PATH"):
        assert f"{variable}: " in message
    assert "SMTP_HOST: " in message


def test_production_needs_the_apps_mail_links(key_files: tuple[Path, Path]) -> None:
    # Development's links point at pages under PUBLIC_URL that authgate does not serve.
    with pytest.raises(SettingsError) as refused:
        _production(key_files, email_verify_url="", password_reset_url="")
    assert "EMAIL_VERIFY_URL: " in str(refused.value)
    assert "PASSWORD_RESET_URL: " in str(refused.value)
    quiet = _production(
        key_files,
        email_verify_url="",
        password_reset_url="",
        email_verification="off",
        password_reset_enabled=False,
    )
    assert not quiet.mail_required


def test_development_mail_links_follow_the_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    monkeypatch.setenv("PORT", "4123")
    settings = load_settings()
    assert settings.effective_email_verify_url == (
        "http://127.0.0.1:4123/verify-email?token={token}"
    )
    assert settings.effective_password_reset_url.startswith("http://127.0.0.1:4123/")
    assert settings.effective_email_change_url == settings.effective_email_verify_url
