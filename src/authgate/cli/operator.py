"""What ``authgate users`` and ``authgate sessions`` share: the services the HTTP
routes use, wired for one command against DATABASE_URL, and the output helpers.

The operator is the actor of the audit events these commands write
(``services.account_admin.OPERATOR``: user agent ``authgate-cli``, no address,
reason ``operator``)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from authgate.bootstrap import Overrides, Services, open_services
from authgate.cli.audit import printable
from authgate.clock import SystemClock
from authgate.config import Settings
from authgate.errors import AuthError
from authgate.services.account_admin import AccountAdminService
from authgate.services.account_deletion import AccountDeletionService
from authgate.services.user_sessions import UserSessionService

# One connection and one hashing thread: a command does one thing at a time.
CLI_SIZES = Overrides(pool_size=1, hashing_workers=1)


class OperatorError(Exception):
    """A one-line reason to stop with exit status 2 (usage, not found, refused)."""


@asynccontextmanager
async def cli_services(
    settings: Settings, overrides: Overrides = CLI_SIZES
) -> AsyncIterator[Services]:
    """The composition root's services for one command. The CLI is an entry point:
    the system clock is its to choose."""
    async with open_services(settings, clock=SystemClock(), overrides=overrides) as services:
        yield services


@dataclass(frozen=True)
class Operator:
    admin: AccountAdminService
    deletion: AccountDeletionService
    sessions: UserSessionService


@asynccontextmanager
async def operator_services(settings: Settings) -> AsyncIterator[Operator]:
    async with cli_services(settings) as services:
        try:
            yield Operator(
                admin=services.admin,
                deletion=services.operator_deletion,
                sessions=services.operator_sessions,
            )
        except AuthError as exc:
            # Not found, weak password, address taken...: the service's own words.
            raise OperatorError(str(exc)) from None


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def print_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, as_json: bool) -> None:
    """A JSON array, or an aligned table whose cells are escaped for the terminal."""
    if as_json:
        print(json.dumps(list(rows)))
        return
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)
    ]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for line in cells:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


def print_object(value: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(value))
        return
    width = max(len(key) for key in value)
    for key, item in value.items():
        print(f"{key.ljust(width)}  {_cell(item)}")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(printable(str(item)) for item in value) or "-"
    return printable(str(value))


def note(message: str) -> None:
    """A line for the operator that is not the command's output (stderr)."""
    print(message, file=sys.stderr)
