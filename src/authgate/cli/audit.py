"""``authgate audit``: read the audit log."""

from __future__ import annotations

import json
import re
import sys
import uuid
from datetime import UTC, datetime, timedelta

from authgate.config import Settings
from authgate.domain.models import AuditEvent

_AGE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class AuditArgumentError(ValueError):
    pass


def parse_since(value: str | None, *, now: datetime) -> datetime | None:
    if value is None:
        return None
    match = _AGE.match(value.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise AuditArgumentError(
            f"--since: {value!r} is neither an ISO 8601 time nor an age like 12h"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_user(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise AuditArgumentError(f"--user: {value!r} is not a user id (UUID)") from None


def render(event: AuditEvent, *, as_json: bool) -> str:
    fields = {
        "occurred_at": event.occurred_at.isoformat(),
        "event": event.name,
        "user_id": str(event.user_id) if event.user_id else None,
        "session_id": str(event.session_id) if event.session_id else None,
        "reason": event.reason,
        "provider": event.provider,
        "client_address": event.client_address,
        "user_agent": event.user_agent,
    }
    if as_json:
        # json.dumps escapes every control character; the text form must do it itself.
        return json.dumps(fields)
    shown = " ".join(
        f"{k}={printable(v)}" for k, v in fields.items() if v is not None and k != "event"
    )
    return f"{fields['occurred_at']} {printable(event.name):<24} {shown}"


def printable(value: str) -> str:
    """``value`` with everything a terminal would act on escaped, Python-style.

    The User-Agent (and a provider name or reason) is whatever a client sent. Raw,
    an ESC sequence could rewrite the operator's screen or title bar, a carriage
    return or newline could forge a whole audit line, and a bidi override (U+202E)
    could make one address read as another. Everything ``str.isprintable`` refuses
    (controls, format characters such as bidi overrides and zero-width joiners,
    line and paragraph separators, unassigned and private-use code points) becomes
    ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN``, and a backslash is doubled so the
    escapes cannot be faked."""
    if value.isprintable() and "\\" not in value:
        return value
    return "".join(_escape(char) for char in value)


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if char.isprintable():
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


async def print_audit(
    settings: Settings, *, user: str | None, since: str | None, limit: int, as_json: bool
) -> int:
    # Imported here: cli.operator imports printable from this module.
    from authgate.cli.operator import cli_services

    async with cli_services(settings) as services:
        try:
            user_id = parse_user(user)
            since_at = parse_since(since, now=services.clock.now())
        except AuditArgumentError as exc:
            print(f"authgate: error: {exc}", file=sys.stderr)
            return 2
        async with services.uow() as uow:
            events = await uow.audit.list(user_id=user_id, since=since_at, limit=limit)
    for event in events:
        print(render(event, as_json=as_json))
    return 0
