"""Many instances on one database (issue 13 §1).

- ``instances``: one heartbeat row per live ``authgate serve`` process (each
  worker): who it is and which kind of rate-limit storage it counts in
  (``memory`` or ``redis``, never the URL). Refreshed periodically, deleted at a
  clean shutdown; rows not refreshed for a while are stale and pruned.
- ``schema_window``: one row, the oldest code revision the database still
  serves. Migrations are expand/contract: each revision declares
  ``OLDEST_CODE_SERVED`` and writes it here, so an instance running older code
  (which cannot know the newer revision) still learns whether it may serve.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from authgate.storage.types import UTCDateTime, exact_string

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Only new tables: the 0008 code neither reads nor minds them.
OLDEST_CODE_SERVED = "0008"


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("instance_id", exact_string(32), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("rate_limit_storage", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", name="pk_instances"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_instances_last_seen_at", "instances", ["last_seen_at"])
    window = op.create_table(
        "schema_window",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("oldest_code_revision", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_schema_window"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.bulk_insert(window, [{"id": 1, "oldest_code_revision": OLDEST_CODE_SERVED}])


def downgrade() -> None:
    op.drop_table("schema_window")
    op.drop_index("ix_instances_last_seen_at", table_name="instances")
    op.drop_table("instances")
