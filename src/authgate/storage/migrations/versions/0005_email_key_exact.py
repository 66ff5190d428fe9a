"""The email key becomes exact: NFC, local part ``lower()``ed, domain IDNA-lowercased.

It used to be NFKC + casefold of the whole address, which made ``straße@…`` and
``strasse@…`` (different mailboxes) one key: a provider vouching for the first then
linked into the account of the second. Every stored key is recomputed from the
stored ``email`` with the new rule (:func:`authgate.domain.emails.email_key`).

The rule is copied here, frozen, instead of imported: a later change to the
application's rule must not change what this revision did.

Collisions: two accounts whose new keys would be equal are never merged and never
silently renamed. The migration refuses with :class:`MigrationRefused`, naming the
user ids, and changes nothing; the operator decides which account keeps the address
(see docs/providers.md, "Migration 0005"). Rows written through authgate cannot
collide this way: the new key separates strictly more addresses than the old one.
The downgrade refuses the same way when the old, looser key would merge two
accounts created after the upgrade (``straße@…`` and ``strasse@…``).

``authgate migrate --sql`` cannot run Python over the rows: it prints a comment
saying so, and keys must then be recomputed by an online ``authgate migrate``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import logging
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import context, op
from email_validator import EmailNotValidError, validate_email

from authgate.storage.migrations import MigrationRefused

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("authgate.migrations")

MAX_KEY_LENGTH = 254

_users = sa.table(
    "users",
    sa.column("id", sa.Uuid()),
    sa.column("email", sa.String(254)),
    sa.column("email_key", sa.String(254)),
)


def _normalized(email: str) -> tuple[str, str] | None:
    """(local part, domain) as sign-up normalizes them, or None if it does not parse."""
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return result.local_part, result.domain


def exact_key(email: str) -> str:
    """The 0005 rule: NFC, local part ``lower()``ed, domain IDNA-mapped and lowercased."""
    parts = _normalized(email)
    if parts is None:
        # Stored before validation was what it is now; keep it findable by itself.
        local, _, domain = email.strip().rpartition("@")
    else:
        local, domain = parts
    local = unicodedata.normalize("NFC", local).lower()
    return f"{local}@{unicodedata.normalize('NFC', domain).lower()}"


def folded_key(email: str) -> str:
    """The 0001-0004 rule: NFKC + casefold of the whole normalized address."""
    parts = _normalized(email)
    address = email.strip() if parts is None else f"{parts[0]}@{parts[1]}"
    return unicodedata.normalize("NFKC", address).casefold()


def _recompute(rule: Callable[[str], str], direction: str) -> None:
    if context.is_offline_mode():
        op.execute(
            f"-- 0005 ({direction}): users.email_key must be recomputed from users.email "
            "in Python; run 'authgate migrate' against the database to do it"
        )
        return
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_users.c.id, _users.c.email, _users.c.email_key).where(
            _users.c.email_key.is_not(None), _users.c.email.is_not(None)
        )
    ).all()
    # The key every keyed row will have afterwards, and who would share one.
    final = {row.id: rule(row.email) for row in rows}
    by_key: dict[str, list[str]] = defaultdict(list)
    for user_id, key in final.items():
        by_key[key].append(str(user_id))
    # Rows without an email keep their key; a new key must not take it either.
    kept = connection.execute(
        sa.select(_users.c.id, _users.c.email_key).where(
            _users.c.email_key.is_not(None), _users.c.email.is_(None)
        )
    ).all()
    for row in kept:
        by_key[row.email_key].append(str(row.id))
    problems = [
        "users " + ", ".join(sorted(ids)) + " would share one email key"
        for ids in by_key.values()
        if len(ids) > 1
    ]
    problems += [
        f"user {user_id}'s email key would be longer than {MAX_KEY_LENGTH} characters"
        for user_id, key in final.items()
        if len(key) > MAX_KEY_LENGTH
    ]
    if problems:
        message = (
            f"migration 0005 ({direction}) changed nothing: "
            + "; ".join(sorted(problems))
            + ". Decide which account keeps each address (change the other's email and "
            "email_key, or delete it), then run 'authgate migrate' again; "
            "see docs/providers.md, 'Migration 0005'"
        )
        raise MigrationRefused(message)
    changed = [(row.id, final[row.id]) for row in rows if final[row.id] != row.email_key]
    if not changed:
        return
    # Two passes: a new key may equal another row's old key until that row moves
    # too, and the unique index checks each UPDATE. NULLs never collide.
    clear = sa.update(_users).where(_users.c.id == sa.bindparam("b_id")).values(email_key=None)
    connection.execute(clear, [{"b_id": user_id} for user_id, _ in changed])
    assign = (
        sa.update(_users)
        .where(_users.c.id == sa.bindparam("b_id"))
        .values(email_key=sa.bindparam("b_key"))
    )
    connection.execute(assign, [{"b_id": user_id, "b_key": key} for user_id, key in changed])
    logger.info("migration 0005 (%s): recomputed %d email keys", direction, len(changed))


def upgrade() -> None:
    _recompute(exact_key, "upgrade")


def downgrade() -> None:
    _recompute(folded_key, "downgrade")
