"""``authgate keys list | rotate | retire``: the signing-key ring from the command line.

The same service the server's scheduled step uses (services.signing_keys), wired
for one command against DATABASE_URL and the server secret. With
``JWT_PRIVATE_KEY_PATH`` set the ring is static: ``list`` shows its PEM keys, and
``rotate``/``retire`` refuse and say how a static ring is rotated (docs/keys.md).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from authgate.cli.operator import cli_services, iso, note, print_rows
from authgate.config import Settings
from authgate.domain.signing_keys import SigningKeyRecord
from authgate.services.signing_keys import KeyRingRefused, SigningKeyService

COLUMNS = ("kid", "state", "algorithm", "created", "activated", "deactivated", "retired")
STATIC_RING = (
    "the key ring is static (JWT_PRIVATE_KEY_PATH is set): rotate it by hand as docs/keys.md "
    "describes (a new pair from 'authgate keys generate', the old public key in "
    "JWT_PREVIOUS_PUBLIC_KEY_PATHS), or unset JWT_PRIVATE_KEY_PATH to use the database ring"
)


def add_ring_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    *,
    handler: Callable[[argparse.Namespace], int],
) -> None:
    listing = commands.add_parser(
        "list",
        help="print the signing keys and their states",
        description="Print each signing key's kid, state (next, current, previous, retired), "
        "algorithm and the dates of its transitions.",
    )
    listing.add_argument("--json", action="store_true", help="a JSON array")
    listing.set_defaults(handler=handler)
    rotate = commands.add_parser(
        "rotate",
        help="promote the next key to current (current becomes previous) and make a new next",
        description="Rotate the database ring: next -> current, current -> previous, and a new "
        "next key (JWT_ALGORITHM). Refused while the next key has been published for less "
        "than JWKS_MAX_AGE_SECONDS + KEY_RING_REFRESH_SECONDS, unless --force. Every instance "
        "signs with the new key within KEY_RING_REFRESH_SECONDS. On an empty database it "
        "creates the ring (current + next).",
    )
    rotate.add_argument(
        "--force",
        action="store_true",
        help="promote the next key even if resource servers may not have fetched it yet",
    )
    rotate.set_defaults(handler=handler)
    retire = commands.add_parser(
        "retire",
        help="remove a key from the JWKS: tokens it signed are refused",
        description="Retire a previous key (or, with --force, the next key, which is then "
        "replaced). Refused for the current key, and for a previous key whose tokens may "
        "still be live (ACCESS_TOKEN_TTL_SECONDS after it stopped signing) unless --force. "
        "Previous keys are also retired automatically once their tokens have expired.",
    )
    retire.add_argument("kid", help="the key's kid (see authgate keys list)")
    retire.add_argument(
        "--force", action="store_true", help="retire now: refuse its still-live tokens"
    )
    retire.set_defaults(handler=handler)


def kid_arguments_protected(argv: list[str]) -> list[str]:
    """``argv`` with ``--`` before a kid that starts with ``-``.

    A kid is base64url: one in 64 starts with ``-``, which argparse would take for
    an option (``authgate keys retire -rtw...``). After ``keys retire`` anything
    that is not one of its options is the kid."""
    if argv[:2] != ["keys", "retire"] or "--" in argv:
        return argv
    head, rest = argv[:2], argv[2:]
    options = [arg for arg in rest if arg in ("--force", "-h", "--help")]
    others = [arg for arg in rest if arg not in options]
    return [*head, *options, "--", *others] if others else argv


def _row(key: SigningKeyRecord) -> dict[str, Any]:
    return {
        "kid": key.kid,
        "state": key.state.value,
        "algorithm": key.algorithm,
        "created": iso(key.created_at),
        "activated": iso(key.activated_at),
        "deactivated": iso(key.deactivated_at),
        "retired": iso(key.retired_at),
    }


async def run_keys(settings: Settings, args: argparse.Namespace) -> int:
    from authgate.cli.main import CliError

    command: str = args.keys_command
    if settings.static_key_ring:
        if command != "list":
            raise CliError(STATIC_RING)
        _list_static(settings, as_json=args.json)
        return 0
    async with cli_services(settings) as services:
        return await _run_ring(services.signing_keys, settings, args)


async def _run_ring(
    service: SigningKeyService, settings: Settings, args: argparse.Namespace
) -> int:
    from authgate.cli.main import CliError

    command: str = args.keys_command
    try:
        if command == "list":
            keys = await service.list_keys()
            print_rows([_row(key) for key in keys], COLUMNS, as_json=args.json)
        elif command == "rotate":
            if await service.ensure_ring():
                print("created the signing-key ring (current and next keys); nothing to rotate")
                return 0
            rotation = await service.rotate(force=args.force)
            print(f"current  {rotation.current}")
            print(f"previous {rotation.previous or '-'}")
            print(f"next     {rotation.next}")
            note(
                "every instance signs with the new current key within "
                f"KEY_RING_REFRESH_SECONDS ({settings.key_ring_refresh_seconds:g} s)"
            )
        else:
            retired = await service.retire(args.kid, force=args.force)
            print(f"retired {retired.kid} (was {retired.state.value})")
            note(
                "instances stop publishing it and refuse its tokens within "
                f"KEY_RING_REFRESH_SECONDS ({settings.key_ring_refresh_seconds:g} s)"
            )
    except KeyRingRefused as exc:
        raise CliError(str(exc)) from None
    return 0


def _list_static(settings: Settings, *, as_json: bool) -> None:
    from authgate.bootstrap import static_key_set

    key_set = static_key_set(settings)
    if key_set is None:  # pragma: no cover - run_keys checked JWT_PRIVATE_KEY_PATH
        return
    rows = [
        {"kid": kid, "state": "current" if kid == key_set.signing.kid else "previous",
         "algorithm": key.algorithm}
        for kid, key in key_set.by_kid.items()
    ]  # fmt: skip
    print_rows(rows, ("kid", "state", "algorithm"), as_json=as_json)
