"""The signing-key ring: ``signing_keys``.

One row per key: its ``kid`` (RFC 7638 thumbprint), algorithm, state (next, current,
previous, retired), public JWK, the private key sealed under the server secret
(AES-GCM; NULL once retired), and the date of each transition. Changes to the ring
serialize on the ``maintenance_runs`` row ``signing-key-ring``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from authgate.storage.types import UTCDateTime, exact_string

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("kid", exact_string(64), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("private_key_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("activated_at", UTCDateTime(), nullable=True),
        sa.Column("deactivated_at", UTCDateTime(), nullable=True),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("kid", name="pk_signing_keys"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_signing_keys_state", "signing_keys", ["state"])


def downgrade() -> None:
    op.drop_index("ix_signing_keys_state", table_name="signing_keys")
    op.drop_table("signing_keys")
