"""``authgate clients create|list|delete``: OAuth clients (issue 10 §2).

``create`` prints a confidential client's secret once: only its SHA-256 is kept.
``list`` shows the default client (DEFAULT_CLIENT_ID, from settings) first."""

from __future__ import annotations

import argparse
from typing import Any

from authgate.cli.operator import (
    OperatorError,
    cli_services,
    iso,
    note,
    print_object,
    print_rows,
)
from authgate.config import Settings
from authgate.domain.models import OAuthClient
from authgate.errors import AuthError
from authgate.oauth.clients import GRANT_TYPES, ClientRegistry

COLUMNS = ("client_id", "type", "grant_types", "audiences", "introspect", "created")


def _row(client: OAuthClient) -> dict[str, Any]:
    kind = "default" if client.is_default else "public" if client.is_public else "confidential"
    return {
        "client_id": client.client_id,
        "type": kind,
        "grant_types": list(client.grant_types),
        "audiences": list(client.audiences),
        "introspect": client.may_introspect,
        "created": iso(client.created_at),
    }


async def run_clients(settings: Settings, args: argparse.Namespace) -> int:
    async with cli_services(settings) as services:
        try:
            return await _run(services.operator_clients, args)
        except AuthError as exc:
            raise OperatorError(str(exc)) from None


async def _run(registry: ClientRegistry, args: argparse.Namespace) -> int:
    if args.clients_command == "list":
        rows = [_row(client) for client in await registry.list_all()]
        print_rows(rows, COLUMNS, as_json=args.json)
        return 0
    if args.clients_command == "create":
        client, secret = await registry.create(
            args.client_id,
            audiences=tuple(args.audience),
            grant_types=tuple(args.grant or ()),
            public=args.public,
            may_introspect=args.introspect,
        )
        print_object({**_row(client), "client_secret": secret}, as_json=args.json)
        if secret is not None:
            note("the client secret is shown only now: store it in the client's secret store")
        return 0
    revoked = await registry.delete(args.client_id)
    if revoked is None:
        raise OperatorError(f"no registered client {args.client_id!r}")
    note(f"client {args.client_id} deleted; {revoked} session(s) ended")
    return 0


def add_clients_parser(commands: Any) -> None:
    clients = commands.add_parser(
        "clients",
        help="register, list and delete OAuth clients",
        description="OAuth clients of /oauth/token, /oauth/revoke and /oauth/introspect. "
        "The default client (DEFAULT_CLIENT_ID) serves the seed routes and /api/v1 and "
        "is not a row.",
    )
    sub = clients.add_subparsers(dest="clients_command", required=True, metavar="COMMAND")
    listing = sub.add_parser("list", help="every client, the default one first")
    listing.add_argument("--json", action="store_true", help="a JSON array")
    create = sub.add_parser(
        "create",
        help="register a client; a confidential client's secret is printed once",
        description="Register CLIENT_ID. Confidential (the default) gets a 256-bit secret, "
        "printed once; --public has none. Grants default to client_credentials "
        "(confidential) or refresh_token (public).",
    )
    create.add_argument("client_id", metavar="CLIENT_ID")
    create.add_argument(
        "--audience",
        action="append",
        required=True,
        metavar="AUDIENCE",
        help="an audience of its access tokens (repeat for several)",
    )
    create.add_argument(
        "--grant", action="append", choices=GRANT_TYPES, help="an allowed grant (repeatable)"
    )
    create.add_argument("--public", action="store_true", help="no secret (mobile, browser apps)")
    create.add_argument(
        "--introspect",
        action="store_true",
        help="may call /oauth/introspect about tokens for its audiences (resource servers)",
    )
    create.add_argument("--json", action="store_true", help="a JSON object")
    delete = sub.add_parser("delete", help="delete a client and end its sessions")
    delete.add_argument("client_id", metavar="CLIENT_ID")
