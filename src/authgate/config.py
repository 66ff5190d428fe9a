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

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
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
    # Prometheus metrics (GET /metrics) on their own listener, never the public one:
    # off unless METRICS_PORT is set; loopback unless METRICS_HOST says otherwise
    # (docs/operations.md: what a non-loopback address exposes).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"

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
    # On a Galera cluster: every connection waits for its node to apply what the
    # cluster has committed before each read (wsrep_sync_wait=1), so a token issued
    # through one node is found at once on another. Ignored on other databases.
    database_causal_reads: bool = False
    auto_migrate: bool = True
    # Where the app runs. "lambda" (or "auto" with AWS_LAMBDA_FUNCTION_NAME set, as the
    # Lambda runtime does): no background timers (nothing runs between invocations;
    # authgate.aws.tasks does that work), one database connection per container,
    # re-checked after a freeze, and no SQLite (docs/aws.md).
    runtime: Literal["auto", "server", "lambda"] = "auto"
    aws_lambda_function_name: str = ""

    authgate_data_dir: Path = Path(".authgate")
    # Set: a static ring from these PEM files (docs/keys.md). Unset: the database ring.
    jwt_private_key_path: Path | None = None
    jwt_public_key_path: Path | None = None
    # Static ring only: earlier public keys (comma-separated PEM paths), verify-only
    # and published, for a manual rotation.
    jwt_previous_public_key_paths: str = ""
    # The static ring's pair as PEM text instead of files, for a machine with no disk
    # to keep them on (AWS Lambda): a value or a path for each, never both.
    jwt_private_key: SecretStr | None = None
    jwt_public_key: str | None = None
    jwt_algorithm: str = "RS256"
    # Database ring: rotate every this many days (0 = only by `authgate keys rotate`),
    # and how often each instance re-reads the ring from the database.
    key_rotation_days: int = Field(default=0, ge=0, le=3650)
    key_ring_refresh_seconds: float = Field(default=60.0, gt=0, le=3600)
    # How often each serve process refreshes its heartbeat row (table instances); a
    # row not refreshed for 3 intervals is a dead process's (ignored, pruned).
    instance_heartbeat_seconds: float = Field(default=15.0, gt=0, le=3600)
    # The address clients use to reach this server (scheme, host, port, no path):
    # behind a TLS proxy, https://auth.example.com. Unset: http://HOST:PORT.
    public_url: str | None = None
    # The `iss` of issued tokens. Unset: PUBLIC_URL (see the ``issuer`` property).
    jwt_issuer: str | None = None
    jwt_audience: str = "authgate"
    jwks_max_age_seconds: PositiveInt = 300
    # The OAuth client_id of the seed routes and /api/v1 (a public client whose
    # tokens carry every JWT_AUDIENCE value); `authgate clients` registers others.
    default_client_id: str = "authgate"

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
    # /docs, /redoc and /openapi.json. Unset: on in development, off in production.
    docs_enabled: bool | None = None
    # Request line plus headers, per request; over it: 431 and the connection closed.
    # 32 KiB: twice Node.js's 16 KiB default and nginx's default total (4 x 8 KiB),
    # so whatever a default nginx forwards fits; an access token is at most 8 KiB.
    # Worst case held per worker: MAX_CONNECTIONS_PER_WORKER x this (32 MiB).
    max_header_bytes: int = Field(default=32_768, ge=1024, le=1_048_576)
    # Open connections per worker process before new requests get uvicorn's 503. Well
    # above 256 busy clients per worker; the open-file limit (ulimit -n) must exceed it.
    max_connections_per_worker: int = Field(default=1024, ge=1)

    # Abuse resistance. Limits are "N/period" strings ("100/minute", "10/15 minutes").
    rate_limit_enabled: bool = True
    # memory:// counts per process; redis://host:port/db shares counts between processes.
    rate_limit_storage_url: str = "memory://"
    rate_limit_auth_per_ip: str = "100/minute"
    rate_limit_signup_per_ip: str = "20/hour"
    rate_limit_refresh_per_ip: str = "300/minute"
    # /api/v1/revoke and /revokeToken: each one takes the database's write lock.
    rate_limit_revoke_per_ip: str = "60/minute"
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
    # JSON: {"name": {"issuer", "jwks_url", "audiences": [...], "algorithms": [...],
    # "trustEmail": false, "requireNonce": true}}
    oidc_providers: str = ""
    # Refuse Google / Apple ID tokens without a nonce. Off by default: the seed apps
    # send none. (Generic providers require one unless "requireNonce": false.)
    google_require_nonce: bool = False
    apple_require_nonce: bool = False
    provider_signup_on_signin: bool = False
    provider_clock_skew_seconds: int = Field(default=60, ge=0, le=600)
    provider_http_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Least time between two JWKS fetches caused by unknown kids: a stream of
    # bogus kids must not turn into a stream of requests to the provider.
    jwks_refetch_cooldown_seconds: float = Field(default=60.0, ge=0, le=3600)

    # The server secret (server_secret.py): HKDF-derived keys seal refresh-token
    # successors and key the throttle HMAC. A value (SECRET_KEY) or a file of at
    # least 32 random bytes (SECRET_KEY_PATH), never both; the previous one (value
    # or path) still opens what it sealed while a rotation is under way.
    secret_key: SecretStr | None = None
    secret_key_path: Path | None = None
    secret_key_previous: SecretStr | None = None
    secret_key_previous_path: Path | None = None

    # Pruning (services/pruning.py): revoked and expired sessions and their tokens
    # are deleted this many days after they ended (0 = as soon as they end), audit
    # events this many days after they happened.
    session_retention_days: int = Field(default=30, ge=0, le=36_500)
    audit_retention_days: int = Field(default=365, ge=0, le=36_500)

    @field_validator(
        "secret_key",
        "secret_key_path",
        "secret_key_previous",
        "secret_key_previous_path",
        "jwt_private_key",
        "jwt_public_key",
        mode="before",
    )
    @classmethod
    def _empty_secret_is_unset(cls, value: Any) -> Any:
        # "SECRET_KEY=" in a copied .env.example means unset, not an empty secret.
        return None if value == "" else value

    @field_validator("secret_key", "secret_key_previous")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        from authgate.server_secret import secret_strength_problem

        if value is not None:
            # The message never includes the value.
            problem = secret_strength_problem(value.get_secret_value().encode("utf-8"))
            if problem is not None:
                raise ValueError(problem)
        return value

    # --- Mail, email verification and password reset (issue 11) ---
    # off: no verification mail at sign-up; optional: mail sent, sign-in allowed;
    # required: password sign-up starts no session and unverified sign-in is 403.
    email_verification: Literal["off", "optional", "required"] = "optional"
    password_reset_enabled: bool = True
    # No SMTP_HOST: development writes each message to {AUTHGATE_DATA_DIR}/outbox/*.eml.
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    mail_from: str = "authgate <no-reply@localhost>"
    mail_templates_dir: Path | None = None
    # Links in the mail; {token} is replaced by the URL-encoded token. Any scheme
    # (myapp://reset?token={token} for a mobile deep link). Empty: pages under
    # PUBLIC_URL, for development only (production refuses them unset: authgate
    # serves no such page, the app does).
    email_verify_url: str = ""
    password_reset_url: str = ""
    email_change_url: str = ""  # empty: EMAIL_VERIFY_URL
    email_verify_token_ttl_seconds: PositiveInt = 86_400
    password_reset_token_ttl_seconds: PositiveInt = 1_800
    # The drainer also looks for mail queued by other instances this often.
    mail_poll_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    mail_max_attempts: PositiveInt = 8
    # Mail-sending requests (resend, forgot, email change) per address and per account.
    rate_limit_mail_per_ip: str = "20/hour"
    rate_limit_mail_per_account: str = "5/hour"

    @field_validator("email_verify_url", "password_reset_url", "email_change_url")
    @classmethod
    def _token_url_template(cls, value: str) -> str:
        if value and not _is_token_url(value):
            raise ValueError(
                "must be an absolute URL containing {token}, e.g. "
                "https://app.example/verify?token={token} or myapp://reset?token={token}"
            )
        return value

    @field_validator("rate_limit_mail_per_ip", "rate_limit_mail_per_account")
    @classmethod
    def _valid_mail_limit(cls, value: str) -> str:
        from authgate.throttling.rate import RateLimit

        RateLimit.parse(value)
        return value

    @property
    def mail_required(self) -> bool:
        return self.email_verification != "off" or self.password_reset_enabled

    @property
    def effective_email_verify_url(self) -> str:
        return self.email_verify_url or f"{self.effective_public_url}/verify-email?token={{token}}"

    @property
    def effective_password_reset_url(self) -> str:
        return (
            self.password_reset_url or f"{self.effective_public_url}/reset-password?token={{token}}"
        )

    @property
    def effective_email_change_url(self) -> str:
        return self.email_change_url or self.effective_email_verify_url

    # --- end of mail settings ---

    @field_validator("jwt_algorithm")
    @classmethod
    def _known_algorithm(cls, value: str) -> str:
        if value not in SUPPORTED_ALGORITHMS:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_ALGORITHMS)}")
        return value

    @field_validator("host")
    @classmethod
    def _valid_host(cls, value: str) -> str:
        if not _is_host(value):
            raise ValueError(
                f"{value!r} is neither an IP address nor a host name (e.g. 127.0.0.1, ::, "
                "0.0.0.0 or localhost)"
            )
        return value

    @field_validator("public_url")
    @classmethod
    def _valid_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL such as https://auth.example.com")
        if parts.query or parts.fragment or value.endswith("/"):
            raise ValueError(f"{value!r} must have no trailing slash, query or fragment")
        return value

    @field_validator("jwt_issuer")
    @classmethod
    def _issuer_not_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is empty; unset it to use PUBLIC_URL (default http://HOST:PORT)")
        return value

    @field_validator("default_client_id")
    @classmethod
    def _valid_client_id(cls, value: str) -> str:
        from authgate.oauth.clients import CLIENT_ID

        if CLIENT_ID.fullmatch(value) is None:
            raise ValueError("must be 1 to 64 of A-Z a-z 0-9 . _ ~ -")
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
        "rate_limit_revoke_per_ip",
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
    def _metrics_port_apart(self) -> Settings:
        # The metrics listener must never share the public one.
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError(
                f"METRICS_PORT ({self.metrics_port}) must differ from PORT: metrics are "
                "never served on the public listener"
            )
        return self

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
                configs.append(
                    google_config(
                        audiences, self.google_jwks_url, require_nonce=self.google_require_nonce
                    )
                )
        except ValueError as exc:
            raise ValueError(f"GOOGLE_JWKS_URL / JWT_AUDIENCE_GOOGLE: {exc}") from None
        try:
            if self.jwt_audience_apple.strip():
                audiences = _split(self.jwt_audience_apple)
                configs.append(
                    apple_config(
                        audiences, self.apple_jwks_url, require_nonce=self.apple_require_nonce
                    )
                )
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
                        trust_email=entry.get("trustEmail", False),
                        require_nonce=entry.get("requireNonce", True),
                    )
                )
            except ValueError as exc:
                raise ValueError(f"OIDC_PROVIDERS: provider {name!r}: {exc}") from None
        return configs

    @model_validator(mode="after")
    def _one_key_ring(self) -> Settings:
        # Without JWT_PRIVATE_KEY_PATH the database ring is used (in production too:
        # its private keys are sealed under SECRET_KEY, which production requires);
        # these files would be silently ignored.
        for variable in ("JWT_PRIVATE_KEY", "JWT_PUBLIC_KEY"):
            if getattr(self, variable.lower()) is not None and (
                getattr(self, f"{variable.lower()}_path") is not None
            ):
                raise ValueError(
                    f"{variable} and {variable}_PATH are both set; set one of them "
                    "(PEM text or a file), not both"
                )
        for variable, value in (
            ("JWT_PUBLIC_KEY_PATH", self.jwt_public_key_path),
            ("JWT_PUBLIC_KEY", self.jwt_public_key),
            ("JWT_PREVIOUS_PUBLIC_KEY_PATHS", self.previous_public_key_paths),
        ):
            if value and not self.static_key_ring:
                raise ValueError(
                    f"{variable} is set without JWT_PRIVATE_KEY_PATH or JWT_PRIVATE_KEY; set "
                    "one for a static key ring, or unset it for the database ring (docs/keys.md)"
                )
        if self.refresh_token_absolute_ttl_seconds < self.refresh_token_ttl_seconds:
            raise ValueError(
                "REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS must be at least REFRESH_TOKEN_TTL_SECONDS"
            )
        return self

    @model_validator(mode="after")
    def _production_refuses_unsafe_settings(self) -> Settings:
        # The rules live in config_checks; development logs them as warnings instead.
        if self.authgate_env is Environment.PRODUCTION:
            from authgate.config_checks import production_refusals, refusal_message

            findings = production_refusals(self)
            if findings:
                raise ValueError(refusal_message(findings))
        return self

    @model_validator(mode="after")
    def _lambda_needs_shared_state(self) -> Settings:
        # A Lambda container has no disk that outlives it and many run at once: a
        # SQLite file or a generated secret would be one container's alone.
        if not self.on_lambda:
            return self
        if self.effective_database_url.get_backend_name() == "sqlite":
            raise ValueError(
                "DATABASE_URL: SQLite is refused on AWS Lambda (no persistent disk); set "
                "DATABASE_URL=mysql+asyncmy://USER:PASSWORD@HOST:3306/DB (docs/aws.md)"
            )
        if self.secret_key is None and self.secret_key_path is None:
            raise ValueError(
                "SECRET_KEY: required on AWS Lambda (every container must share it); set it "
                "to 32 random bytes, e.g. the output of 'openssl rand -base64 32'"
            )
        return self

    @property
    def on_lambda(self) -> bool:
        """RUNTIME=lambda, or RUNTIME=auto inside the Lambda runtime."""
        if self.runtime == "auto":
            return bool(self.aws_lambda_function_name)
        return self.runtime == "lambda"

    @property
    def effective_public_url(self) -> str:
        """PUBLIC_URL, else http://HOST:PORT (an IPv6 host in brackets, RFC 3986)."""
        if self.public_url is not None:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def issuer(self) -> str:
        """The ``iss`` of issued tokens: JWT_ISSUER, else the public URL."""
        return self.jwt_issuer if self.jwt_issuer is not None else self.effective_public_url

    @property
    def docs_on(self) -> bool:
        """DOCS_ENABLED, else on in development and off in production."""
        return self.docs_enabled if self.docs_enabled is not None else not self.is_production

    @model_validator(mode="after")
    def _one_server_secret(self) -> Settings:
        for variable in ("SECRET_KEY", "SECRET_KEY_PREVIOUS"):
            name = variable.lower()
            if getattr(self, name) is not None and getattr(self, f"{name}_path") is not None:
                raise ValueError(
                    f"{variable} and {variable}_PATH are both set; set one of them "
                    "(a value or a file), not both"
                )
        return self

    @property
    def audiences(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.jwt_audience.split(",") if a.strip())

    @property
    def previous_public_key_paths(self) -> tuple[Path, ...]:
        return tuple(Path(p) for p in _split(self.jwt_previous_public_key_paths))

    @property
    def static_key_ring(self) -> bool:
        return self.jwt_private_key_path is not None or self.jwt_private_key is not None

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


def _is_host(value: str) -> bool:
    """An IP address, or a host name of RFC 1123 labels whose last label is not all
    digits (RFC 3696 §2), so that 999.1.1.1 is a bad address rather than a name."""
    import ipaddress
    import re

    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        return True
    labels = value.removesuffix(".").split(".")
    label = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
    return (
        0 < len(value) <= 253
        and all(label.fullmatch(part) for part in labels)
        and not labels[-1].isdigit()
    )


def _is_token_url(value: str) -> bool:
    from urllib.parse import urlsplit

    if "{token}" not in value or any(ch.isspace() for ch in value):
        return False
    parts = urlsplit(value.replace("{token}", "t"))
    return bool(parts.scheme) and bool(parts.netloc or parts.path)


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
        for flag in ("trustEmail", "requireNonce"):
            # A JSON boolean only: "false" (a string) must not read as true.
            if flag in entry and not isinstance(entry[flag], bool):
                raise ValueError(f"provider {name!r}: {flag} must be true or false")
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
