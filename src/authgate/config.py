"""Settings: environment variables and ``.env``, validated once at start-up.

Variable names follow the two seed projects where they had one (``PORT``,
``JWT_PRIVATE_KEY_PATH``, ``JWT_ISSUER``, ``MYSQL_HOST``...). Only the composition
roots (``web/app.py`` and the CLI) read settings; services receive plain values.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from authgate.identity.oidc import OidcProviderConfig

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./authgate.db"
# The async drivers authgate ships with (the engine is async; "sqlite://" or
# "mysql://" would pick a blocking driver and fail at the first request).
_ASYNC_DRIVERS = {("sqlite", "aiosqlite"), ("mysql", "asyncmy"), ("mariadb", "asyncmy")}
SUPPORTED_ALGORITHMS = ("RS256", "ES256", "EdDSA")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


PositiveInt = Annotated[int, Field(gt=0)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        frozen=True,
    )

    authgate_env: Environment = Environment.DEVELOPMENT
    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=0, le=65535)
    workers: PositiveInt = 1
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: Literal["text", "json"] = "text"
    access_log: bool = True
    # Addresses of reverse proxies whose X-Forwarded-For we believe. Empty by
    # default: uvicorn would otherwise trust 127.0.0.1, and anyone on the box
    # could then pick their own client address.
    trusted_proxies: str = ""

    database_url: str | None = None
    mysql_host: str | None = None
    mysql_port: int = Field(default=3306, ge=1, le=65535)
    mysql_user: str = "root"
    mysql_password: str = ""
    mysql_database: str = "authgate"
    db_pool_size: PositiveInt = 10
    # MySQL/MariaDB: the whole connect (TCP and handshake) must finish in this time,
    # or the request is answered 503 instead of waiting on a server that never answers.
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    # How long a request waits for a pooled connection when all are in use. A
    # failed connect does not wake the waiters (SQLAlchemy's pool), so with the
    # database down this is how long requests past the pool's size wait for their 503.
    db_pool_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    auto_migrate: bool = True

    authgate_data_dir: Path = Path(".authgate")
    jwt_private_key_path: Path | None = None
    jwt_public_key_path: Path | None = None
    jwt_algorithm: str = "RS256"
    jwt_issuer: str = "http://127.0.0.1:3000"
    jwt_audience: str = "authgate"
    jwks_max_age_seconds: PositiveInt = 300

    access_token_ttl_seconds: PositiveInt = 900
    refresh_token_ttl_seconds: PositiveInt = 2_592_000
    refresh_token_absolute_ttl_seconds: PositiveInt = 7_776_000
    refresh_reuse_leeway_seconds: int = Field(default=10, ge=0, le=300)

    password_min_length: int = Field(default=8, ge=1, le=1024)
    password_hash_time_cost: PositiveInt = 2
    password_hash_memory_kib: int = Field(default=19_456, ge=8)
    password_hash_parallelism: PositiveInt = 1
    # Threads that run argon2 off the event loop, per worker process. argon2-cffi
    # releases the GIL, so one thread per core uses the whole machine; 0 = the
    # machine's cores divided among WORKERS.
    password_hash_workers: int = Field(default=0, ge=0)
    # Hashing jobs queued or running per process before sign-ins get 503.
    password_hash_max_pending: PositiveInt = 128

    max_body_bytes: PositiveInt = 65_536

    # Abuse resistance. Limits are "N/period" strings ("100/minute", "10/15 minutes").
    rate_limit_enabled: bool = True
    # memory:// counts per process; redis://host:port/db shares counts between processes.
    rate_limit_storage_url: str = "memory://"
    rate_limit_auth_per_ip: str = "100/minute"
    rate_limit_signup_per_ip: str = "20/hour"
    rate_limit_refresh_per_ip: str = "300/minute"
    # Failed password sign-ins per account (normalized email) before it locks
    # itself until the window ends: spraying one account from many addresses
    # is stopped too.
    rate_limit_failed_signins_per_account: str = "10/15 minutes"
    # zxcvbn score a new password needs (0 = no strength check, 4 = strongest).
    password_min_strength: int = Field(default=2, ge=0, le=4)

    # Identity providers. A provider is enabled when its audiences are set.
    jwt_audience_google: str = ""
    jwt_audience_apple: str = ""
    google_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    apple_jwks_url: str = "https://appleid.apple.com/auth/keys"
    # JSON: {"name": {"issuer", "jwks_url", "audiences": [...], "algorithms": [...]}}
    oidc_providers: str = ""
    provider_signup_on_signin: bool = False
    provider_clock_skew_seconds: int = Field(default=60, ge=0, le=600)
    provider_http_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Least time between two JWKS fetches caused by unknown kids: a stream of
    # bogus kids must not turn into a stream of requests to the provider.
    jwks_refetch_cooldown_seconds: float = Field(default=60.0, ge=0, le=3600)

    @field_validator("jwt_algorithm")
    @classmethod
    def _known_algorithm(cls, value: str) -> str:
        if value not in SUPPORTED_ALGORITHMS:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_ALGORITHMS)}")
        return value

    @field_validator("jwt_audience")
    @classmethod
    def _audience_not_empty(cls, value: str) -> str:
        if not [a for a in value.split(",") if a.strip()]:
            raise ValueError("must name at least one audience")
        return value

    @field_validator("database_url")
    @classmethod
    def _parseable_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        # Imported here: SQLAlchemy takes most of a second to import, and
        # `authgate --help` or `version` should not pay for it.
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError("is not a valid SQLAlchemy URL") from exc
        backend, driver = url.get_backend_name(), url.get_driver_name()
        if (backend, driver) not in _ASYNC_DRIVERS:
            raise ValueError(
                f"uses {backend}+{driver}, which is not an installed async driver; use "
                "sqlite+aiosqlite:///PATH or mysql+asyncmy://USER:PASSWORD@HOST:PORT/DB"
            )
        return value

    @field_validator(
        "rate_limit_auth_per_ip",
        "rate_limit_signup_per_ip",
        "rate_limit_refresh_per_ip",
        "rate_limit_failed_signins_per_account",
    )
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        from authgate.throttling.rate import RateLimit

        RateLimit.parse(value)
        return value

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _valid_storage(cls, value: str) -> str:
        from urllib.parse import urlsplit

        if urlsplit(value).scheme not in ("memory", "redis", "rediss"):
            raise ValueError("must be memory:// or redis://host:port/db (rediss:// for TLS)")
        return value

    @field_validator("oidc_providers")
    @classmethod
    def _valid_providers(cls, value: str) -> str:
        if value.strip():
            _parse_providers(value)
        return value

    @model_validator(mode="after")
    def _providers_build(self) -> Settings:
        # Building the configurations checks names, algorithms and https URLs now,
        # at start-up, instead of at the first sign-in.
        self.provider_configs()
        return self

    def provider_configs(self) -> list[OidcProviderConfig]:
        from authgate.identity.providers import apple_config, generic_config, google_config

        configs = []
        try:
            if self.jwt_audience_google.strip():
                audiences = _split(self.jwt_audience_google)
                configs.append(google_config(audiences, self.google_jwks_url))
        except ValueError as exc:
            raise ValueError(f"GOOGLE_JWKS_URL / JWT_AUDIENCE_GOOGLE: {exc}") from None
        try:
            if self.jwt_audience_apple.strip():
                audiences = _split(self.jwt_audience_apple)
                configs.append(apple_config(audiences, self.apple_jwks_url))
        except ValueError as exc:
            raise ValueError(f"APPLE_JWKS_URL / JWT_AUDIENCE_APPLE: {exc}") from None
        for name, entry in _parse_providers(self.oidc_providers).items():
            try:
                if name in ("google", "apple"):
                    raise ValueError("is built in; configure it with JWT_AUDIENCE_*")
                configs.append(
                    generic_config(
                        name,
                        entry["issuer"],
                        entry["jwks_url"],
                        entry["audiences"],
                        entry.get("algorithms", ["RS256"]),
                    )
                )
            except ValueError as exc:
                raise ValueError(f"OIDC_PROVIDERS: provider {name!r}: {exc}") from None
        return configs

    @model_validator(mode="after")
    def _production_needs_real_keys(self) -> Settings:
        if self.jwt_public_key_path is not None and self.jwt_private_key_path is None:
            # Development keys would be used and this file silently ignored.
            raise ValueError(
                "JWT_PUBLIC_KEY_PATH is set without JWT_PRIVATE_KEY_PATH; set both (or neither, "
                "for development keys)"
            )
        if self.authgate_env is Environment.PRODUCTION and (
            self.jwt_private_key_path is None or self.jwt_public_key_path is None
        ):
            raise ValueError(
                "JWT_PRIVATE_KEY_PATH: AUTHGATE_ENV=production refuses development keys; "
                "create a key pair with 'authgate keys generate --out DIR' and set "
                "JWT_PRIVATE_KEY_PATH and JWT_PUBLIC_KEY_PATH"
            )
        if self.refresh_token_absolute_ttl_seconds < self.refresh_token_ttl_seconds:
            raise ValueError(
                "REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS must be at least REFRESH_TOKEN_TTL_SECONDS"
            )
        return self

    @property
    def audiences(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.jwt_audience.split(",") if a.strip())

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def is_production(self) -> bool:
        return self.authgate_env is Environment.PRODUCTION

    @property
    def effective_database_url(self) -> URL:
        """DATABASE_URL wins; else MYSQL_* (the TimeLapseMe seed's names); else SQLite."""
        from sqlalchemy.engine import URL, make_url

        if self.database_url:
            return make_url(self.database_url)
        if self.mysql_host:
            return URL.create(
                "mysql+asyncmy",
                username=self.mysql_user,
                password=self.mysql_password or None,
                host=self.mysql_host,
                port=self.mysql_port,
                database=self.mysql_database,
                query={"charset": "utf8mb4"},
            )
        return make_url(DEFAULT_SQLITE_URL)


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _parse_providers(value: str) -> dict[str, dict[str, Any]]:
    if not value.strip():
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ValueError("is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise ValueError("must be a JSON object of providers by name")
    for name, entry in parsed.items():
        if not isinstance(entry, dict):
            raise ValueError(f"provider {name!r} must be an object")
        missing = {"issuer", "jwks_url", "audiences"} - set(entry)
        if missing:
            raise ValueError(f"provider {name!r} lacks {', '.join(sorted(missing))}")
        if not isinstance(entry["audiences"], list) or not entry["audiences"]:
            raise ValueError(f"provider {name!r}: audiences must be a non-empty list")
    return parsed


class SettingsError(Exception):
    """A configuration problem, already phrased as one line that names the variable."""


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"] if part != "__root__"]
        name = location[0].upper() if location else ""
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{name}: {message}" if name else message)
    return "; ".join(lines)
