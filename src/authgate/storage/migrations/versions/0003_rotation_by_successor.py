"""Rotation is recorded by the successor's row, not by updating the parent.

A refresh used to UPDATE the presented token (``rotated_at``, ``successor_sealed``)
and then INSERT its successor: two writes. Now a token is "rotated" exactly when a
row names it as ``parent_id``, and a unique index on ``parent_id`` is what lets only
one of two concurrent refreshes insert that row: one write, one round trip fewer.
The successor, sealed for the leeway under a key derived from the parent token,
moves onto the successor's own row (``sealed_for_parent``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from authgate.storage.types import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _is_mysql() -> bool:
    # context.dialect works online and for `authgate migrate --sql` alike.
    return context.get_context().dialect.name in ("mysql", "mariadb")


def upgrade() -> None:
    op.add_column("refresh_tokens", sa.Column("sealed_for_parent", sa.LargeBinary(), nullable=True))
    # Carry over the sealed successors of tokens rotated before this migration, so a
    # retry inside the leeway across the upgrade still gets its successor. MariaDB
    # refuses a subquery on the table being updated; SQLite has no UPDATE ... JOIN.
    if _is_mysql():
        op.execute(
            "UPDATE refresh_tokens AS child JOIN refresh_tokens AS parent "
            "ON parent.id = child.parent_id "
            "SET child.sealed_for_parent = parent.successor_sealed"
        )
    else:
        op.execute(
            "UPDATE refresh_tokens SET sealed_for_parent = ("
            "SELECT parent.successor_sealed FROM refresh_tokens AS parent "
            "WHERE parent.id = refresh_tokens.parent_id) "
            "WHERE parent_id IS NOT NULL"
        )
    # Each parent already has at most one child: only the request that won the old
    # conditional UPDATE inserted one.
    op.create_index("uq_refresh_tokens_parent_id", "refresh_tokens", ["parent_id"], unique=True)
    # Neither column is indexed, so SQLite (>= 3.35) drops them in place.
    op.drop_column("refresh_tokens", "successor_sealed")
    op.drop_column("refresh_tokens", "rotated_at")


def downgrade() -> None:
    op.add_column("refresh_tokens", sa.Column("rotated_at", UTCDateTime(), nullable=True))
    op.add_column("refresh_tokens", sa.Column("successor_sealed", sa.LargeBinary(), nullable=True))
    if _is_mysql():
        op.execute(
            "UPDATE refresh_tokens AS parent JOIN refresh_tokens AS child "
            "ON child.parent_id = parent.id "
            "SET parent.rotated_at = child.issued_at, "
            "parent.successor_sealed = child.sealed_for_parent"
        )
    else:
        op.execute(
            "UPDATE refresh_tokens SET "
            "rotated_at = (SELECT child.issued_at FROM refresh_tokens AS child "
            "WHERE child.parent_id = refresh_tokens.id), "
            "successor_sealed = (SELECT child.sealed_for_parent FROM refresh_tokens AS child "
            "WHERE child.parent_id = refresh_tokens.id)"
        )
    op.drop_index("uq_refresh_tokens_parent_id", table_name="refresh_tokens")
    op.drop_column("refresh_tokens", "sealed_for_parent")
