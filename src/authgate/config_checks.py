"""What AUTHGATE_ENV=production refuses, and development only warns about.

Each check looks at validated :class:`~authgate.config.Settings` and yields
:class:`Finding` values: the variable to change and what is wrong with it.
Production turns the findings into a :class:`~authgate.config.SettingsError` (one
line naming each variable) before anything starts; development logs each one as a
single warning, once per start (``authgate serve`` before it forks its workers).

To add a rule, write a function ``(settings) -> Iterator[Finding]`` and append it
to :data:`CHECKS`; docs/security.md ("Production mode") lists every rule.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from authgate.config import Settings

# OWASP Password Storage Cheat Sheet, argon2id: any one row (memory in KiB, passes)
# is the floor; each trades memory for time. All rows use parallelism 1, which does
# not change the work an attacker does per guess, so it is not checked here.
ARGON2_FLOORS: Final = ((47_104, 1), (19_456, 2), (12_288, 3), (9_216, 4), (7_168, 5))
MIN_PASSWORD_LENGTH: Final = 8
MIN_PASSWORD_STRENGTH: Final = 2
MAX_REUSE_LEEWAY_SECONDS: Final = 60
MAX_PROVIDER_CLOCK_SKEW_SECONDS: Final = 300


@dataclass(frozen=True)
class Finding:
    """One unsafe setting: ``variable`` is the name to change, ``problem`` says why."""

    variable: str
    problem: str

    def refusal(self) -> str:
        return f"{self.variable}: {self.problem} (AUTHGATE_ENV=production refuses this)"

    def warning(self) -> str:
        return f"{self.variable}: {self.problem} (allowed in development only)"


Check = Callable[["Settings"], Iterator[Finding]]


def _key_file(settings: Settings) -> Iterator[Finding]:
    path = settings.jwt_private_key_path
    if path is None or os.name != "posix":
        return
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return  # loading the key reports a missing or unreadable file, naming the variable
    if mode & 0o077:
        yield Finding(
            "JWT_PRIVATE_KEY_PATH",
            f"{path} is open to group or others (mode {mode:04o}); run 'chmod 600 {path}'",
        )


def _rate_limits(settings: Settings) -> Iterator[Finding]:
    if not settings.rate_limit_enabled:
        yield Finding(
            "RATE_LIMIT_ENABLED",
            "is false: nothing limits password guessing or the account lock",
        )
    elif settings.workers > 1 and urlsplit(settings.rate_limit_storage_url).scheme == "memory":
        yield Finding(
            "RATE_LIMIT_STORAGE_URL",
            f"is memory:// with WORKERS={settings.workers}: each worker counts alone, so "
            "every limit and the account lock let WORKERS times as many attempts through; "
            "use redis://host:port/db",
        )
    elif settings.on_lambda and urlsplit(settings.rate_limit_storage_url).scheme == "memory":
        yield Finding(
            "RATE_LIMIT_STORAGE_URL",
            "is memory:// on AWS Lambda: each container counts alone, and there are as "
            "many as there are concurrent requests; use redis://host:port/db (ElastiCache)",
        )


def _argon2(settings: Settings) -> Iterator[Finding]:
    memory, time = settings.password_hash_memory_kib, settings.password_hash_time_cost
    if not any(memory >= m and time >= t for m, t in ARGON2_FLOORS):
        rows = ", ".join(f"m={m} t={t}" for m, t in ARGON2_FLOORS)
        yield Finding(
            "PASSWORD_HASH_MEMORY_KIB / PASSWORD_HASH_TIME_COST",
            f"m={memory} KiB t={time} is below every OWASP argon2id row ({rows})",
        )


def _passwords(settings: Settings) -> Iterator[Finding]:
    if settings.password_min_length < MIN_PASSWORD_LENGTH:
        yield Finding(
            "PASSWORD_MIN_LENGTH",
            f"is {settings.password_min_length}, under {MIN_PASSWORD_LENGTH}",
        )
    if settings.password_min_strength < MIN_PASSWORD_STRENGTH:
        yield Finding(
            "PASSWORD_MIN_STRENGTH",
            f"is {settings.password_min_strength}, under {MIN_PASSWORD_STRENGTH}",
        )


def _providers(settings: Settings) -> Iterator[Finding]:
    # Settings already refuse plain http except on a loopback host (a local stand-in
    # IdP); production takes keys over https only.
    variables = {"google": "GOOGLE_JWKS_URL", "apple": "APPLE_JWKS_URL"}
    for config in settings.provider_configs():
        if urlsplit(config.jwks_url).scheme != "https":
            yield Finding(
                variables.get(config.name, "OIDC_PROVIDERS"),
                f"provider {config.name!r} fetches its keys from {config.jwks_url!r}, "
                "which is not https",
            )
    if settings.refresh_reuse_leeway_seconds > MAX_REUSE_LEEWAY_SECONDS:
        yield Finding(
            "REFRESH_REUSE_LEEWAY_SECONDS",
            f"is {settings.refresh_reuse_leeway_seconds}, over {MAX_REUSE_LEEWAY_SECONDS}: "
            "a stolen token stays usable that long after its rotation",
        )
    if settings.provider_clock_skew_seconds > MAX_PROVIDER_CLOCK_SKEW_SECONDS:
        yield Finding(
            "PROVIDER_CLOCK_SKEW_SECONDS",
            f"is {settings.provider_clock_skew_seconds}, over {MAX_PROVIDER_CLOCK_SKEW_SECONDS}",
        )


def _issuer(settings: Settings) -> Iterator[Finding]:
    variable = "JWT_ISSUER" if settings.jwt_issuer is not None else "PUBLIC_URL"
    issuer = settings.issuer
    parts = urlsplit(issuer)
    if parts.scheme != "https" or not parts.hostname:
        yield Finding(
            variable,
            f"the token issuer {issuer!r} is not an https URL; set PUBLIC_URL (or JWT_ISSUER) "
            "to the https address clients reach",
        )
    if settings.port == 0 and settings.public_url is None and settings.jwt_issuer is None:
        # The system picks the port at bind time; the default issuer cannot know it.
        yield Finding(
            "PUBLIC_URL",
            f"is unset and PORT=0, so tokens name the issuer {issuer!r}, which no client "
            "reaches; set PUBLIC_URL (or a fixed PORT)",
        )


CHECKS: list[Check] = [_key_file, _rate_limits, _argon2, _passwords, _providers, _issuer]


def _server_secret(settings: Settings) -> Iterator[Finding]:
    # Development creates one in the data directory (server_secret.py) instead.
    if settings.secret_key is None and settings.secret_key_path is None:
        from authgate.server_secret import MISSING_IN_PRODUCTION

        variable = "SECRET_KEY / SECRET_KEY_PATH"
        yield Finding(variable, MISSING_IN_PRODUCTION.removeprefix(f"{variable}: "))


def _smtp(settings: Settings) -> Iterator[Finding]:
    # Development writes mail to {AUTHGATE_DATA_DIR}/outbox instead, links logged.
    if settings.mail_required and not settings.smtp_host.strip():
        yield Finding(
            "SMTP_HOST",
            "AUTHGATE_ENV=production sends verification and reset mail through SMTP; set "
            "SMTP_HOST (or EMAIL_VERIFICATION=off and PASSWORD_RESET_ENABLED=false)",
        )


def _mail_links(settings: Settings) -> Iterator[Finding]:
    # Development points links at pages under PUBLIC_URL that authgate does not
    # serve: the app that receives the token must be named.
    if settings.email_verification != "off" and not settings.email_verify_url:
        yield Finding(
            "EMAIL_VERIFY_URL",
            "is unset: set the app's page (or deep link) that posts the token, "
            "e.g. https://app.example/verify?token={token}",
        )
    if settings.password_reset_enabled and not settings.password_reset_url:
        yield Finding(
            "PASSWORD_RESET_URL",
            "is unset: set the app's page (or deep link) that posts the token and the "
            "new password, e.g. myapp://reset?token={token}",
        )


# Settings production needs that development supplies itself (no warning there).
PRODUCTION_ONLY_CHECKS: list[Check] = [_server_secret, _smtp, _mail_links]


def unsafe_settings(settings: Settings) -> list[Finding]:
    """Every finding of every check, in the order of :data:`CHECKS`."""
    return [finding for check in CHECKS for finding in check(settings)]


def production_refusals(settings: Settings) -> list[Finding]:
    """What production refuses: every unsafe setting, then what it lacks."""
    missing = [finding for check in PRODUCTION_ONLY_CHECKS for finding in check(settings)]
    return unsafe_settings(settings) + missing


def refusal_message(findings: list[Finding]) -> str:
    """One line naming each variable, for SettingsError."""
    return "; ".join(finding.refusal() for finding in findings)


def log_development_warnings(settings: Settings, logger: logging.Logger) -> None:
    """One warning per finding (production never gets here: its settings refuse)."""
    for finding in unsafe_settings(settings):
        logger.warning("%s", finding.warning())


# ``authgate serve`` prints the start-up warnings itself, then sets this to its own
# pid for uvicorn: the app factory in that process, or in the workers it spawns,
# stays quiet. A pid rather than a flag, so a value inherited by an unrelated
# process (an exported shell variable) silences nothing.
STARTUP_REPORTED_ENV: Final = "AUTHGATE_STARTUP_REPORTED_BY"


def mark_startup_reported() -> None:
    os.environ[STARTUP_REPORTED_ENV] = str(os.getpid())


def startup_already_reported() -> bool:
    reporter = os.environ.get(STARTUP_REPORTED_ENV, "")
    return reporter in (str(os.getpid()), str(os.getppid()))
