"""The account lifecycle: one-time tokens, the mail outbox, disabled and imported
users, and what a user sees of their sessions.

- ``users.disabled_at``: a disabled account signs in nowhere and refreshes nothing.
- ``users.imported_from`` / ``users.imported_provider``: where an imported account
  came from (a seed's name), and for a seed's Google/Apple user (keyed by email
  only, no subject) the provider whose first verified sign-in binds the subject.
- ``one_time_tokens``: email-verification, password-reset and email-change tokens,
  stored only as SHA-256, bound to a user and a purpose, single use.
- ``mail_outbox``: the intent to send (user, purpose, address), never a live link;
  the one-time token is made when the mail is actually sent.
- ``sessions.last_used_at`` / ``user_agent`` / ``ip_address``: the session list.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from authgate.storage.types import UTCDateTime, exact_string

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("disabled_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("imported_from", sa.String(32), nullable=True))
        batch.add_column(sa.Column("imported_provider", sa.String(64), nullable=True))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("last_used_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("user_agent", sa.String(256), nullable=True))
        batch.add_column(sa.Column("ip_address", sa.String(64), nullable=True))
    op.create_table(
        "one_time_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("token_hash", exact_string(64), nullable=False),
        # The address an email-change token moves the account to (else NULL).
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_one_time_tokens"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_one_time_tokens_user_id_users",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("token_hash", name="uq_one_time_tokens_token_hash"),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index("ix_one_time_tokens_user_id_purpose", "one_time_tokens", ["user_id", "purpose"])
    op.create_index("ix_one_time_tokens_expires_at", "one_time_tokens", ["expires_at"])
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("purpose", sa.String(32), nullable=False),
        # Where the mail goes when it is not the account's current address (the new
        # address of an email change, the old one for its notice).
        sa.Column("address", sa.String(254), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        # A sender's lease: another instance skips the row until it passes.
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mail_outbox"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_mail_outbox_user_id_users", ondelete="CASCADE"
        ),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
    )
    op.create_index(
        "ix_mail_outbox_sent_at_next_attempt_at", "mail_outbox", ["sent_at", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_table("mail_outbox")
    op.drop_table("one_time_tokens")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("ip_address")
        batch.drop_column("user_agent")
        batch.drop_column("last_used_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("imported_provider")
        batch.drop_column("imported_from")
        batch.drop_column("disabled_at")
