"""``authgate users list|show|disable|enable|delete|verify-email|set-password``.

A user is named by id or email address. Each command goes through the services the
HTTP routes use, and writes its audit event with the operator as actor."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from authgate.cli.operator import (
    Operator,
    OperatorError,
    iso,
    note,
    operator_services,
    print_object,
    print_rows,
)
from authgate.config import Settings
from authgate.domain.models import User
from authgate.services.password_policy import MAX_PASSWORD_LENGTH

COLUMNS = ("id", "email", "verified", "password", "disabled", "created")


def _row(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "verified": user.email_verified,
        "password": user.password_hash is not None,
        "disabled": user.disabled_at is not None,
        "created": iso(user.created_at),
    }


async def run_users(settings: Settings, args: argparse.Namespace) -> int:
    async with operator_services(settings) as operator:
        command: str = args.users_command
        if command == "list":
            return await _list(operator, limit=args.limit, as_json=args.json)
        if command == "set-password":
            # Read before touching the account: a refused prompt changes nothing.
            password = read_password()
        user = await operator.admin.find(args.user)
        if command == "show":
            await _show(operator, user, as_json=args.json)
        elif command == "disable":
            changed = await operator.admin.disable(user)
            note(f"{user.id} disabled, its sessions ended" if changed else "already disabled")
        elif command == "enable":
            changed = await operator.admin.enable(user)
            note(f"{user.id} enabled" if changed else "not disabled")
        elif command == "verify-email":
            changed = await operator.admin.verify_email(user)
            note(f"{user.id}: {user.email} verified" if changed else "already verified")
        elif command == "set-password":
            await operator.admin.set_password(user, password)
            note(f"{user.id}: password set, every session ended")
        elif command == "delete":
            if not args.yes:
                raise OperatorError(f"deleting {user.id} cannot be undone: add --yes")
            await operator.deletion.delete_by_operator(user)
            note(f"{user.id} deleted")
        return 0


async def _list(operator: Operator, *, limit: int, as_json: bool) -> int:
    users, legacy = await operator.admin.list_users(limit=limit)
    print_rows([_row(user) for user in users], COLUMNS, as_json=as_json)
    # stderr, so --json stays one JSON array.
    note(f"{legacy} account(s) not yet upgraded from a seed's legacy password hash")
    return 0


async def _show(operator: Operator, user: User, *, as_json: bool) -> None:
    sessions = await operator.sessions.list(user.id)
    value = {
        **_row(user),
        "firstName": user.given_name,
        "lastName": user.family_name,
        "displayName": user.display_name,
        "providers": await operator.admin.providers_of(user),
        "disabledAt": iso(user.disabled_at),
        "importedFrom": user.imported_from,
        "liveSessions": len(sessions),
    }
    print_object(value, as_json=as_json)


def read_password() -> str:
    """The new password from a prompt (a terminal) or the first line of stdin; never
    from argv, which every user of the machine sees in ``ps``."""
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != first:
            raise OperatorError("the passwords do not match")
        password = first
    else:
        password = sys.stdin.readline(MAX_PASSWORD_LENGTH * 4 + 2).rstrip("\r\n")
    if not password:
        raise OperatorError("no password given (type it at the prompt, or pipe it on stdin)")
    return password


def add_users_parser(commands: Any) -> None:
    users = commands.add_parser(
        "users",
        help="list, show, disable, enable, delete users; verify an address, set a password",
        description="Operator commands on accounts, through the same services as the HTTP "
        "API; each writes an audit event with reason 'operator' and user agent "
        "'authgate-cli'. USER is an account id or email address.",
    )
    sub = users.add_subparsers(dest="users_command", required=True, metavar="COMMAND")
    listing = sub.add_parser("list", help="list accounts (oldest first)")
    listing.add_argument("--limit", type=int, default=1000, help="at most this many (1000)")
    listing.add_argument("--json", action="store_true", help="a JSON array")
    show = sub.add_parser("show", help="one account, with its providers and live sessions")
    show.add_argument("user", metavar="USER")
    show.add_argument("--json", action="store_true", help="a JSON object")
    for name, text in (
        ("disable", "refuse its sign-ins and refreshes; end every session"),
        ("enable", "let a disabled account sign in again"),
        ("verify-email", "mark the account's address verified"),
        ("set-password", "set a password, read from a prompt or stdin; every session ends"),
        ("delete", "delete the account, its identities and sessions (audit rows keep the id)"),
    ):
        command = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        command.add_argument("user", metavar="USER")
        if name == "delete":
            command.add_argument("--yes", action="store_true", help="confirm the deletion")
