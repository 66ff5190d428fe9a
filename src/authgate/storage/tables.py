"""The schema. Alembic migrations under ``migrations/`` create exactly this."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
)

from authgate.storage.types import UTCDateTime, exact_string

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("email", String(254), nullable=True),
    Column("email_key", exact_string(254), nullable=True, unique=True),
    Column("email_verified", Boolean(), nullable=False, default=False),
    Column("given_name", String(100), nullable=False, default=""),
    Column("family_name", String(100), nullable=False, default=""),
    Column("display_name", String(200), nullable=False, default=""),
    Column("password_hash", String(255), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # Migration 0006: disabled accounts, and where an imported account came from.
    Column("disabled_at", UTCDateTime(), nullable=True),
    Column("imported_from", String(32), nullable=True),
    Column("imported_provider", String(64), nullable=True),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# External identities (Google, Apple, any OIDC provider): keyed on provider + subject,
# never on email. A user may have a password and any number of these.
identities = Table(
    "identities",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("user_id", Uuid(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("provider", exact_string(64), nullable=False),
    Column("subject", exact_string(255), nullable=False),
    Column("email", String(254), nullable=True),
    Column("email_verified", Boolean(), nullable=False, default=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=False),
    Index("uq_identities_provider_subject", "provider", "subject", unique=True),
    Index("ix_identities_user_id", "user_id"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# A session is one refresh-token family: everything descended from one sign-in.
sessions = Table(
    "sessions",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("user_id", Uuid(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("absolute_expires_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("revoked_reason", String(64), nullable=True),
    # Migration 0006: what the session list shows.
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("user_agent", String(256), nullable=True),
    Column("ip_address", String(64), nullable=True),
    # Migration 0008: the OAuth client the session was issued to; NULL is the
    # default client (DEFAULT_CLIENT_ID), so renaming that setting strands nothing.
    Column("client_id", exact_string(64), nullable=True),
    Index("ix_sessions_user_id", "user_id"),
    Index("ix_sessions_client_id", "client_id"),
    # Pruning deletes by these (migration 0004).
    Index("ix_sessions_absolute_expires_at", "absolute_expires_at"),
    Index("ix_sessions_revoked_at", "revoked_at"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("session_id", Uuid(), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("parent_id", Uuid(), nullable=True),
    Column("token_hash", exact_string(64), nullable=False, unique=True),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    # This token sealed under a key derived from the server secret and its parent
    # token (see crypto.refresh_secrets): the leeway's answer to a retried parent.
    # NULL once it can no longer be used (services.sessions, pruning).
    Column("sealed_for_parent", LargeBinary(), nullable=True),
    Index("ix_refresh_tokens_session_id", "session_id"),
    # A token is rotated exactly when a row names it as parent; this index lets only
    # one of two concurrent refreshes insert that row (migration 0003).
    Index("uq_refresh_tokens_parent_id", "parent_id", unique=True),
    Index("ix_refresh_tokens_expires_at", "expires_at"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# Append-only security log (sign-ups, sign-ins, refreshes, reuse, revocations...).
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("name", String(40), nullable=False),
    Column("user_id", Uuid(), nullable=True),
    Column("session_id", Uuid(), nullable=True),
    Column("reason", String(64), nullable=True),
    Column("provider", String(64), nullable=True),
    Column("client_address", String(64), nullable=True),
    Column("user_agent", String(256), nullable=True),
    Index("ix_audit_events_occurred_at", "occurred_at"),
    Index("ix_audit_events_user_id_occurred_at", "user_id", "occurred_at"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# Provider ID tokens that started a session, by SHA-256 of ``header.payload`` (a
# signature twin has the same key), kept until ``exp`` + clock skew: a captured ID
# token cannot start a second session on any instance.
id_token_uses = Table(
    "id_token_uses",
    metadata,
    Column("token_hash", exact_string(64), primary_key=True),
    Column("provider", String(64), nullable=False),
    Column("used_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index("ix_id_token_uses_expires_at", "expires_at"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# When a periodic task last ran anywhere: one instance's run makes the others' a no-op.
maintenance_runs = Table(
    "maintenance_runs",
    metadata,
    Column("task", exact_string(64), primary_key=True),
    Column("last_run_at", UTCDateTime(), nullable=False),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# Email-verification, password-reset and email-change tokens (migration 0006):
# only SHA-256 of the token is stored; single use, bound to a user and a purpose.
one_time_tokens = Table(
    "one_time_tokens",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("user_id", Uuid(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("token_hash", exact_string(64), nullable=False, unique=True),
    Column("email", String(254), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    Index("ix_one_time_tokens_user_id_purpose", "user_id", "purpose"),
    Index("ix_one_time_tokens_expires_at", "expires_at"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# Mail to send (migration 0006): the intent (user, purpose, address), never a live
# link; the one-time token is made when the mail is actually sent.
mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("user_id", Uuid(), ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("purpose", String(32), nullable=False),
    Column("address", String(254), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("locked_until", UTCDateTime(), nullable=True),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("last_error", String(255), nullable=True),
    Index("ix_mail_outbox_sent_at_next_attempt_at", "sent_at", "next_attempt_at"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# The signing-key ring (migration 0007): next -> current -> previous -> retired.
# The private key is sealed with AES-GCM under a key derived from the server secret
# (crypto.key_encryption), bound to the row's kid and algorithm; NULL once retired.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", exact_string(64), primary_key=True),
    Column("algorithm", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("public_jwk", Text(), nullable=False),
    Column("private_key_sealed", LargeBinary(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("activated_at", UTCDateTime(), nullable=True),
    Column("deactivated_at", UTCDateTime(), nullable=True),
    Column("retired_at", UTCDateTime(), nullable=True),
    Index("ix_signing_keys_state", "state"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# Registered OAuth clients (migration 0008). The default client is not a row: it
# comes from settings (DEFAULT_CLIENT_ID, JWT_AUDIENCE). Only SHA-256 of a secret
# is stored; grant types and audiences are space-separated (RFC 6749 §3.3 style).
clients = Table(
    "clients",
    metadata,
    Column("client_id", exact_string(64), primary_key=True),
    Column("secret_hash", exact_string(64), nullable=True),
    Column("grant_types", String(255), nullable=False),
    Column("audiences", String(1024), nullable=False),
    Column("may_introspect", Boolean(), nullable=False, default=False),
    Column("created_at", UTCDateTime(), nullable=False),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# One heartbeat row per live `authgate serve` process (migration 0009): each
# worker refreshes its row, deletes it at a clean shutdown; stale rows are pruned.
# rate_limit_storage is the kind ("memory" or "redis"), never the URL (a password).
instances = Table(
    "instances",
    metadata,
    Column("instance_id", exact_string(32), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer(), nullable=False),
    Column("rate_limit_storage", String(16), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Index("ix_instances_last_seen_at", "last_seen_at"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# One row (id 1): the oldest code revision the database still serves, written by
# every migration from 0009 on (its OLDEST_CODE_SERVED). See storage.schema_window.
schema_window = Table(
    "schema_window",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=False),
    Column("oldest_code_revision", String(32), nullable=False),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)
