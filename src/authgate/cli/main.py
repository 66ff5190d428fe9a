"""The ``authgate`` command line. The CLI's composition root: it reads settings,
prepares keys and the database, then hands over to uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from authgate import __version__
from authgate.config import SUPPORTED_ALGORITHMS, Settings, SettingsError, load_settings
from authgate.crypto.keys import KeyError_, load_private_key, make_signing_key, write_key_pair

if TYPE_CHECKING:
    from authgate.metrics_listener import MetricsListener

logger = logging.getLogger("authgate")


class CliError(Exception):
    """A one-line, user-facing reason to stop."""


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        name: value
        for name in ("host", "port", "workers")
        if (value := getattr(args, name, None)) is not None
    }
    return load_settings(**overrides)


def _configure_logging(settings: Settings) -> None:
    from authgate.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format, access_log=settings.access_log)


def cmd_serve(args: argparse.Namespace) -> int:
    # Imported before logging is configured, as they always were: alembic logs its
    # plugin set-up at import, which would add lines to a one-line start-up error.
    # (Neither imports prometheus_client.)
    import authgate.storage.migrate
    import authgate.web.app  # noqa: F401

    settings = _settings(args)
    _configure_logging(settings)
    # First, before anything imports prometheus_client (authgate.metrics_listener).
    metrics_listener = _metrics_listener(settings)
    try:
        return _serve(settings, metrics_listener)
    finally:
        if metrics_listener is not None:
            metrics_listener.close()


def _metrics_listener(settings: Settings) -> MetricsListener | None:
    if settings.metrics_port is None:
        return None
    from authgate.metrics_listener import MetricsListener

    listener = MetricsListener.prepare(host=settings.metrics_host, port=settings.metrics_port)
    listener.close_on_sigterm()
    return listener


def _serve(settings: Settings, metrics_listener: MetricsListener | None) -> int:
    import uvicorn

    from authgate.bootstrap import static_key_set
    from authgate.config_checks import log_development_warnings, mark_startup_reported
    from authgate.server_secret import load_server_secret, warn_if_development
    from authgate.storage.engine import is_sqlite
    from authgate.storage.migrate import upgrade_url
    from authgate.web.http_protocol import BoundedHttpToolsProtocol
    from authgate.web.instance_setup import check_counting_alone

    # Before forking workers: create the development secret once, and fail fast on
    # a missing, weak or exposed secret and on bad static keys. (The database ring
    # is created, on first start, by the first worker's lifespan.)
    secret = load_server_secret(settings)
    key_set = static_key_set(settings)
    warn_if_development(secret)
    if key_set is not None:
        logger.info(
            "static key ring: signing with %s key kid=%s",
            key_set.signing.algorithm,
            key_set.signing.kid,
        )
    log_development_warnings(settings, logger)
    url = settings.effective_database_url
    if settings.auto_migrate:
        asyncio.run(upgrade_url(url, connect_timeout=settings.db_connect_timeout_seconds))
        logger.info("database %s is at the latest migration", url.render_as_string())
    elif is_sqlite(url):
        logger.info("AUTO_MIGRATE=false: not migrating %s", url.render_as_string())
    # memory:// counters beside another live instance count alone: refused in
    # production, a warning in development.
    asyncio.run(check_counting_alone(settings))
    trusted = settings.trusted_proxy_list
    # The warnings above are printed once per start, not again by each worker.
    mark_startup_reported()
    if metrics_listener is not None:
        try:
            metrics_listener.start()
        except OSError as exc:
            raise CliError(
                f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} "
                f"(METRICS_HOST, METRICS_PORT): {exc.strerror or exc}"
            ) from None
        logger.info(
            "metrics on http://%s:%d/metrics (workers' files in %s)",
            settings.metrics_host,
            settings.metrics_port,
            metrics_listener.directory,
        )
    uvicorn.run(
        "authgate.web.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        # httptools with a bound on request heads (431 past MAX_HEADER_BYTES); the
        # bound travels in uvicorn's h11 setting of the same meaning.
        http=BoundedHttpToolsProtocol,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        # Per worker; beyond it uvicorn answers 503. Unset, it is unlimited.
        limit_concurrency=settings.max_connections_per_worker,
        # Only our own TRUSTED_PROXIES may set the client address; uvicorn would
        # otherwise believe X-Forwarded-For from 127.0.0.1.
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted,
        log_level=settings.log_level,
        # None: keep the logging configured above (and in each worker's factory).
        log_config=None,
        access_log=settings.access_log,
        server_header=False,
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from authgate.storage.migrate import offline_sql, upgrade_url

    settings = load_settings()
    url = settings.effective_database_url
    if args.sql:
        sys.stdout.write(offline_sql(url))
        return 0
    _configure_logging(settings)
    asyncio.run(upgrade_url(url, connect_timeout=settings.db_connect_timeout_seconds))
    logger.info("database %s is at the latest migration", url.render_as_string())
    return 0


def cmd_keys_generate(args: argparse.Namespace) -> int:
    private_path, public_path = write_key_pair(Path(args.out), args.algorithm)
    kid = make_signing_key(load_private_key(private_path), args.algorithm).kid
    print(f"JWT_PRIVATE_KEY_PATH={private_path}")
    print(f"JWT_PUBLIC_KEY_PATH={public_path}")
    print(f"JWT_ALGORITHM={args.algorithm}")
    print(f"# kid {kid}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from authgate.cli.keys import run_keys

    return asyncio.run(run_keys(load_settings(), args))


def cmd_audit(args: argparse.Namespace) -> int:
    from authgate.cli.audit import print_audit

    settings = load_settings()
    return asyncio.run(
        print_audit(
            settings,
            user=args.user,
            since=args.since,
            limit=args.limit,
            as_json=args.json,
        )
    )


def cmd_prune(_args: argparse.Namespace) -> int:
    from authgate.cli.prune import prune

    settings = load_settings()
    report = asyncio.run(prune(settings))
    for line in report.lines():
        print(line)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from authgate.cli.imports import run_import
    from authgate.importers.source import SourceError

    settings = load_settings()
    try:
        return asyncio.run(
            run_import(settings, seed=args.seed, source=args.source, dry_run=args.dry_run)
        )
    except SourceError as exc:
        raise CliError(str(exc)) from None


def cmd_users(args: argparse.Namespace) -> int:
    from authgate.cli.operator import OperatorError
    from authgate.cli.users import run_users

    settings = load_settings()
    try:
        return asyncio.run(run_users(settings, args))
    except OperatorError as exc:
        raise CliError(str(exc)) from None


def cmd_sessions(args: argparse.Namespace) -> int:
    from authgate.cli.operator import OperatorError
    from authgate.cli.sessions import run_sessions

    settings = load_settings()
    try:
        return asyncio.run(run_sessions(settings, args))
    except OperatorError as exc:
        raise CliError(str(exc)) from None


def cmd_clients(args: argparse.Namespace) -> int:
    from authgate.cli.clients import run_clients
    from authgate.cli.operator import OperatorError

    settings = load_settings()
    try:
        return asyncio.run(run_clients(settings, args))
    except OperatorError as exc:
        raise CliError(str(exc)) from None


def cmd_version(_args: argparse.Namespace) -> int:
    print(f"authgate {__version__}")
    return 0


def _reader_went_away() -> int:
    """Stdout's reader closed the pipe: stop quietly, as a killed-by-SIGPIPE tool would.

    Python's own flush of stdout at exit would raise again, so stdout is pointed at
    /dev/null first (https://docs.python.org/3/library/signal.html#note-on-sigpipe).
    """
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + 13  # 141: the shell's status for a process ended by SIGPIPE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="authgate",
        description="Authentication server. Settings come from the environment and .env "
        "(see .env.example).",
    )
    parser.add_argument("--version", action="version", version=f"authgate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="apply migrations and serve HTTP",
        description="Apply pending migrations (unless AUTO_MIGRATE=false), create the signing-key "
        "ring in the database on first start when JWT_PRIVATE_KEY_PATH is unset, and serve.",
    )
    serve.add_argument("--host", help="listen address (HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (PORT, default 3000)")
    serve.add_argument("--workers", type=int, help="worker processes (WORKERS, default 1)")
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser(
        "migrate",
        help="apply database migrations",
        description="Bring the database named by DATABASE_URL (or MYSQL_*) to the latest schema.",
    )
    migrate.add_argument(
        "--sql", action="store_true", help="print the DDL for the database's dialect instead"
    )
    migrate.set_defaults(handler=cmd_migrate)

    keys = commands.add_parser(
        "keys",
        help="manage signing keys",
        description="The signing-key ring of access tokens: in the database (next, current, "
        "previous, retired keys; see docs/keys.md), or static PEM files when "
        "JWT_PRIVATE_KEY_PATH is set.",
    )
    keys_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    from authgate.cli.keys import add_ring_commands

    add_ring_commands(keys_commands, handler=cmd_keys)
    generate = keys_commands.add_parser(
        "generate",
        help="write a new PEM key pair",
        description="Write jwt-private.pem (mode 0600) and jwt-public.pem into --out, for "
        "JWT_PRIVATE_KEY_PATH and JWT_PUBLIC_KEY_PATH (a static ring instead of the database "
        "ring). Never overwrites.",
    )
    generate.add_argument("--out", required=True, help="directory to write the pair into")
    generate.add_argument(
        "--algorithm",
        choices=SUPPORTED_ALGORITHMS,
        default="RS256",
        help="key type to create: RSA-2048 (RS256, default), P-256 (ES256) or Ed25519 (EdDSA); "
        "must match JWT_ALGORITHM",
    )
    generate.set_defaults(handler=cmd_keys_generate)

    audit = commands.add_parser(
        "audit",
        help="print security events from the audit log",
        description="Print audit events (sign-ups, sign-ins and failures, refreshes, reuse "
        "detections, revocations, provider links, lockouts): the newest --limit matching "
        "events, printed oldest first.",
    )
    audit.add_argument("--user", help="only events of this user id")
    audit.add_argument(
        "--since",
        help="only events at or after this time: ISO 8601 (2026-11-22T10:00:00Z) or an age "
        "such as 30m, 12h, 7d",
    )
    audit.add_argument("--limit", type=int, default=100, help="the newest this many (default 100)")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    audit.set_defaults(handler=cmd_audit)

    prune = commands.add_parser(
        "prune",
        help="delete expired and revoked sessions, old tokens and old audit events",
        description="Delete sessions (with their refresh tokens) revoked or expired more than "
        "SESSION_RETENTION_DAYS ago, rotated refresh tokens expired that long ago, sealed "
        "refresh-token copies past REFRESH_REUSE_LEEWAY_SECONDS, expired ID-token replay "
        "records, and audit events older than AUDIT_RETENTION_DAYS; print the counts. "
        "Each server process also does this about once an hour.",
    )
    prune.set_defaults(handler=cmd_prune)

    imports = commands.add_parser(
        "import",
        help="bring a seed's users over",
        description="Read a seed's user table (USER_LIST of the serverless seed, Users of the "
        "TimeLapseMe seed) and add each user whose address is new to the database named by "
        "DATABASE_URL. Password hashes are stored wrapped in argon2id and upgraded at each "
        "user's first sign-in; nothing is overwritten, so running it twice adds nothing. "
        "See docs/import.md.",
    )
    imports.add_argument("seed", choices=("serverless-seed", "timelapseme-seed"))
    imports.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="URL",
        help="the seed's database: mysql://user:password@host:3306/db (or mysql+asyncmy://)",
    )
    imports.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be imported, duplicates and invalid rows; write nothing",
    )
    imports.set_defaults(handler=cmd_import)

    # Operator commands (issue 11): users and sessions.
    from authgate.cli.sessions import add_sessions_parser
    from authgate.cli.users import add_users_parser

    add_users_parser(commands)
    commands.choices["users"].set_defaults(handler=cmd_users)
    add_sessions_parser(commands)
    commands.choices["sessions"].set_defaults(handler=cmd_sessions)
    # OAuth clients (issue 10 §2).
    from authgate.cli.clients import add_clients_parser

    add_clients_parser(commands)
    commands.choices["clients"].set_defaults(handler=cmd_clients)

    version = commands.add_parser(
        "version", help="print the version", description="Print authgate's version and exit."
    )
    version.set_defaults(handler=cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from authgate.cli.keys import kid_arguments_protected

    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(kid_arguments_protected(arguments))
    try:
        result: int = args.handler(args)
        # Inside the try: a reader that went away (`authgate migrate --sql | head`)
        # shows up here rather than as a traceback at interpreter exit.
        sys.stdout.flush()
    except BrokenPipeError:
        return _reader_went_away()
    except (SettingsError, KeyError_, CliError) as exc:
        print(f"authgate: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"authgate: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from sqlalchemy.exc import DBAPIError

        from authgate.errors import Unavailable
        from authgate.storage.migrations import MigrationRefused

        if isinstance(exc, MigrationRefused):
            # A data migration stopped for the operator; its message says what to do.
            print(f"authgate: error: {exc}", file=sys.stderr)
            return 1
        if isinstance(exc, DBAPIError | Unavailable):
            # One line that names the settings to check; the driver's own words
            # (first line only: SQLAlchemy appends a "Background on this error" URL).
            reason = str(exc.orig if isinstance(exc, DBAPIError) else exc).splitlines()[0]
            print(
                f"authgate: error: DATABASE_URL / MYSQL_*: cannot use the database: {reason}",
                file=sys.stderr,
            )
            return 1
        raise
    return result
