"""OAuth clients (issue 10 §2).

- ``clients``: registered clients; only SHA-256 of a secret is stored.
- ``sessions.client_id``: the client a session was issued to. Existing sessions
  keep NULL, which means the default client (DEFAULT_CLIENT_ID): the seed routes
  and /api/v1 go on refreshing them as before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from authgate.storage.types import UTCDateTime, exact_string

revision: str = "0008"
# Re-chained onto the key ring's 0007 at merge.
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("client_id", exact_string(64), nullable=False),
        sa.Column("secret_hash", exact_string(64), nullable=True),
        sa.Column("grant_types", sa.String(255), nullable=False),
        sa.Column("audiences", sa.String(1024), nullable=False),
        sa.Column("may_introspect", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name="pk_clients"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("client_id", exact_string(64), nullable=True))
    op.create_index("ix_sessions_client_id", "sessions", ["client_id"])


def downgrade() -> None:
    op.drop_index("ix_sessions_client_id", table_name="sessions")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("client_id")
    op.drop_table("clients")
