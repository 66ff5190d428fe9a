"""ID-token replay records, the pruning marker, and indexes pruning reads by.

- ``id_token_uses``: each provider ID token that started a session, keyed by the
  SHA-256 of its ``header.payload``, kept until the token's ``exp`` plus the clock
  skew, so a captured token cannot open a second session on any instance.
- ``maintenance_runs``: when a periodic task (pruning) last ran, so one instance's
  run makes the others' a no-op.
- Indexes on the expiry and revocation times that pruning deletes by.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from authgate.storage.types import UTCDateTime, exact_string

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "id_token_uses",
        sa.Column("token_hash", exact_string(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_id_token_uses"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_id_token_uses_expires_at", "id_token_uses", ["expires_at"])
    op.create_table(
        "maintenance_runs",
        sa.Column("task", exact_string(64), nullable=False),
        sa.Column("last_run_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("task", name="pk_maintenance_runs"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_sessions_absolute_expires_at", "sessions", ["absolute_expires_at"])
    op.create_index("ix_sessions_revoked_at", "sessions", ["revoked_at"])
    op.create_index("ix_refresh_tokens_expires_at", "refresh_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_refresh_tokens_expires_at", table_name="refresh_tokens")
    op.drop_index("ix_sessions_revoked_at", table_name="sessions")
    op.drop_index("ix_sessions_absolute_expires_at", table_name="sessions")
    op.drop_table("maintenance_runs")
    op.drop_table("id_token_uses")
