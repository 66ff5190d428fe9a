"""Settings: seed names, defaults, and one clear line per bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from authgate.config import SettingsError, load_settings


def test_defaults_match_the_documented_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")  # no .env here
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 3000)
    assert settings.effective_database_url.render_as_string() == "sqlite+aiosqlite:///./authgate.db"
    assert settings.jwt_algorithm == "RS256"
    assert settings.audiences == ("authgate",)
    assert settings.access_token_ttl_seconds == 900
    assert settings.refresh_token_ttl_seconds == 2_592_000
    assert settings.refresh_token_absolute_ttl_seconds == 7_776_000
    assert settings.refresh_reuse_leeway_seconds == 10
    assert settings.password_min_length == 8
    assert settings.trusted_proxy_list == []
    assert (
        settings.password_hash_time_cost,
        settings.password_hash_memory_kib,
        settings.password_hash_parallelism,
    ) == (2, 19_456, 1)


def test_mysql_seed_variables_build_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "MYSQL_HOST": "db.internal",
        "MYSQL_PORT": "3307",
        "MYSQL_USER": "auth",
        "MYSQL_PASSWORD": "p@ss:w/rd%",
        "MYSQL_DATABASE": "timelapse",
    }.items():
        monkeypatch.setenv(name, value)
    url = load_settings().effective_database_url
    assert url.drivername == "mysql+asyncmy"
    assert (url.host, url.port, url.username, url.database) == (
        "db.internal",
        3307,
        "auth",
        "timelapse",
    )
    assert url.password == "p@ss:w/rd%"
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///other.db")
    assert load_settings().effective_database_url.database == "other.db"


def test_audience_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_AUDIENCE", "api, mobile ,")
    assert load_settings().audiences == ("api", "mobile")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("JWT_ALGORITHM", "HS256"),
        ("DATABASE_URL", "postgresql+asyncpg://x/y"),
        ("DATABASE_URL", "::::"),
        ("DATABASE_URL", "sqlite:///blocking-driver.db"),
        ("DATABASE_URL", "mysql+aiomysql://root@127.0.0.1/authgate"),
        ("PORT", "70000"),
        ("ACCESS_TOKEN_TTL_SECONDS", "0"),
        ("REFRESH_REUSE_LEEWAY_SECONDS", "-1"),
        ("JWT_AUDIENCE", " , "),
        ("AUTO_MIGRATE", "maybe"),
        ("HOST", "999.1.1.1"),
        ("HOST", "bad host"),
        ("HOST", ""),
        ("HOST", "-leading.example"),
        ("JWT_ISSUER", ""),
        ("JWT_ISSUER", "  "),
        ("PUBLIC_URL", "ftp://auth.example"),
        ("PUBLIC_URL", "auth.example"),
        ("PUBLIC_URL", "https://auth.example/"),
        ("DOCS_ENABLED", "perhaps"),
    ],
)
def test_bad_values_name_their_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith(f"{variable}:")
    assert "\n" not in message


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    (tmp_path / ".env").write_text("PORT=4100\nJWT_ISSUER=https://auth.example\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.port == 4100
    assert settings.jwt_issuer == "https://auth.example"


@pytest.mark.parametrize("variable", ["JWT_PUBLIC_KEY_PATH", "JWT_PREVIOUS_PUBLIC_KEY_PATHS"])
def test_static_ring_files_need_the_private_key(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.chdir("/")
    monkeypatch.setenv(variable, "/etc/authgate/jwt-public.pem")
    with pytest.raises(SettingsError, match=rf"^{variable} is set without JWT_PRIVATE_KEY_PATH"):
        load_settings()


def test_previous_public_keys_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    monkeypatch.setenv("JWT_PRIVATE_KEY_PATH", "/k/new.pem")
    monkeypatch.setenv("JWT_PREVIOUS_PUBLIC_KEY_PATHS", " /k/a.pem, ,/k/b.pem ")
    settings = load_settings()
    assert settings.previous_public_key_paths == (Path("/k/a.pem"), Path("/k/b.pem"))
    assert settings.static_key_ring


def test_production_allows_the_database_ring(monkeypatch: pytest.MonkeyPatch) -> None:
    # No JWT_PRIVATE_KEY_PATH in production: the database ring (sealed under the
    # server secret, which production requires) instead of a refusal.
    monkeypatch.chdir("/")
    monkeypatch.setenv("AUTHGATE_ENV", "production")
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert "JWT_PRIVATE_KEY_PATH" not in str(refused.value)
    assert "SECRET_KEY" in str(refused.value)


def test_provider_email_trust_and_nonce_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from authgate.identity import EmailTrust

    monkeypatch.chdir("/")
    monkeypatch.setenv("JWT_AUDIENCE_GOOGLE", "web-client")
    monkeypatch.setenv("JWT_AUDIENCE_APPLE", "com.example.app")
    entry = {"issuer": "https://login.corp.example", "jwks_url": "https://login.corp.example/k"}
    providers = {
        "plain": {**entry, "audiences": ["a"]},
        "trusted": {**entry, "audiences": ["b"], "trustEmail": True, "requireNonce": False},
    }
    import json

    monkeypatch.setenv("OIDC_PROVIDERS", json.dumps(providers))
    configs = {c.name: c for c in load_settings().provider_configs()}
    assert {n: (c.email_trust, c.require_nonce) for n, c in configs.items()} == {
        "google": (EmailTrust.GOOGLE, False),
        "apple": (EmailTrust.VERIFIED, False),
        "plain": (EmailTrust.NONE, True),
        "trusted": (EmailTrust.VERIFIED, False),
    }
    monkeypatch.setenv("GOOGLE_REQUIRE_NONCE", "true")
    monkeypatch.setenv("APPLE_REQUIRE_NONCE", "true")
    configs = {c.name: c for c in load_settings().provider_configs()}
    assert configs["google"].require_nonce
    assert configs["apple"].require_nonce


@pytest.mark.parametrize("flag", ["trustEmail", "requireNonce"])
@pytest.mark.parametrize("value", ["false", "true", 1, None])
def test_provider_flags_must_be_json_booleans(
    monkeypatch: pytest.MonkeyPatch, flag: str, value: object
) -> None:
    import json

    monkeypatch.chdir("/")
    entry = {
        "issuer": "https://login.corp.example",
        "jwks_url": "https://login.corp.example/k",
        "audiences": ["a"],
        flag: value,
    }
    monkeypatch.setenv("OIDC_PROVIDERS", json.dumps({"corp": entry}))
    with pytest.raises(SettingsError, match=rf"^OIDC_PROVIDERS: .*{flag} must be true or false"):
        load_settings()


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "0.0.0.0", "::", "::1", "localhost", "auth-1.internal"],  # noqa: S104
)
def test_hosts_that_are_addresses_or_names(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.chdir("/")
    monkeypatch.setenv("HOST", host)
    assert load_settings().host == host


def test_the_issuer_follows_host_and_port_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    assert load_settings().issuer == "http://127.0.0.1:3000"
    monkeypatch.setenv("PORT", "4123")
    assert load_settings().issuer == "http://127.0.0.1:4123"
    monkeypatch.setenv("HOST", "::1")
    assert load_settings().issuer == "http://[::1]:4123"
    monkeypatch.setenv("PUBLIC_URL", "https://auth.example")
    assert load_settings().issuer == "https://auth.example"
    monkeypatch.setenv("JWT_ISSUER", "https://issuer.example")
    assert load_settings().issuer == "https://issuer.example"


def test_docs_default_to_development_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    assert load_settings().docs_on
    assert not load_settings(docs_enabled=False).docs_on
