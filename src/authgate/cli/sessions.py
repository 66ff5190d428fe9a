"""``authgate sessions list|revoke``: a user's live sessions, and ending them
(one by session id, or every one of a user), through the services of the HTTP routes."""

from __future__ import annotations

import argparse
from typing import Any

from authgate.cli.operator import OperatorError, iso, note, operator_services, print_rows
from authgate.config import Settings
from authgate.services.account_admin import OPERATOR, OPERATOR_REASON

COLUMNS = ("id", "created", "last_used", "ip_address", "user_agent")


async def run_sessions(settings: Settings, args: argparse.Namespace) -> int:
    async with operator_services(settings) as operator:
        if args.sessions_command == "list":
            user = await operator.admin.find(args.user)
            views = await operator.sessions.list(user.id)
            rows = [
                {
                    "id": str(view.id),
                    "created": iso(view.created_at),
                    "last_used": iso(view.last_used_at),
                    "ip_address": view.ip_address,
                    "user_agent": view.user_agent,
                }
                for view in views
            ]
            print_rows(rows, COLUMNS, as_json=args.json)
            return 0
        if (args.session is None) == (args.user is None):
            raise OperatorError("name a SESSION id or --user USER (all of their sessions)")
        if args.session is not None:
            owner = await operator.sessions.owner_of(args.session)
            await operator.sessions.end(owner, args.session, OPERATOR, reason=OPERATOR_REASON)
            note(f"session {args.session} ended")
            return 0
        user = await operator.admin.find(args.user)
        count = await operator.sessions.end_others(
            user.id, OPERATOR, keep=None, reason=OPERATOR_REASON
        )
        note(f"{count} session(s) of {user.id} ended")
        return 0


def add_sessions_parser(commands: Any) -> None:
    sessions = commands.add_parser(
        "sessions",
        help="list and revoke a user's sessions",
        description="A user's live sessions, and ending them. USER is an account id or "
        "email address. Access tokens already issued stay valid until they expire.",
    )
    sub = sessions.add_subparsers(dest="sessions_command", required=True, metavar="COMMAND")
    listing = sub.add_parser("list", help="a user's live sessions, newest first")
    listing.add_argument("--user", required=True, metavar="USER")
    listing.add_argument("--json", action="store_true", help="a JSON array")
    revoke = sub.add_parser("revoke", help="end one session, or every session of --user")
    revoke.add_argument("session", nargs="?", metavar="SESSION", help="the session id")
    revoke.add_argument("--user", metavar="USER", help="end every session of this user")
