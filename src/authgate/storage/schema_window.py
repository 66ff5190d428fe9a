"""Rolling upgrades: which database revisions this code may serve.

Migrations are expand/contract. An *expand* revision only adds (tables, nullable
columns, indexes) and leaves the previous code working; a *contract* revision
removes what older code still reads, and only ships once no instance runs that
code. Each revision from 0009 on declares ``OLDEST_CODE_SERVED`` and writes it to
the ``schema_window`` row, because older code cannot know a newer revision: it
learns from the database whether it may still serve.

This code serves a database that is at its own revision, or ahead of it when the
database's window still includes it. A database behind the code is not ready (the
code may read what is not there yet); one ahead beyond the window is not ready
with a message that says to upgrade this instance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from authgate.storage.tables import schema_window


@dataclass(frozen=True)
class SchemaVerdict:
    ready: bool
    # For the operator (log, CLI): the revisions; the HTTP answer gives only the action.
    reason: str
    action: str = ""


def verdict(
    *,
    database_revision: str | None,
    oldest_code_served: str | None,
    code_revision: str,
    known_revisions: Sequence[str],
) -> SchemaVerdict:
    """Whether code at ``code_revision`` serves the database.

    ``known_revisions`` are the revisions this code ships, oldest first (its
    chain, ending at ``code_revision``). ``oldest_code_served`` is the database's
    window row (None before 0009: exactly its own revision is served).
    """
    if database_revision == code_revision:
        return SchemaVerdict(True, f"database at {code_revision}, as the code")
    if database_revision is None:
        return SchemaVerdict(
            False, "the database is not migrated; run authgate migrate", "run authgate migrate"
        )
    if database_revision in known_revisions:
        return SchemaVerdict(
            False,
            f"database at {database_revision} is behind the code ({code_revision}); "
            "run authgate migrate",
            "run authgate migrate",
        )
    # Ahead: a revision this code does not ship. Its window says how old a code it serves.
    if oldest_code_served is not None and oldest_code_served in known_revisions:
        return SchemaVerdict(
            True,
            f"database at {database_revision} is ahead of the code ({code_revision}) "
            f"and still serves code from {oldest_code_served} on",
        )
    return SchemaVerdict(
        False,
        f"database at {database_revision} no longer serves code at {code_revision} "
        f"(it serves code from {oldest_code_served or database_revision} on); "
        "upgrade this instance",
        "upgrade this instance to the release that migrated it",
    )


@cache
def known_revisions() -> tuple[str, ...]:
    """The revisions this code ships, oldest first."""
    from alembic.script import ScriptDirectory

    from authgate.storage.migrate import _config

    script = ScriptDirectory.from_config(_config())
    return tuple(reversed([rev.revision for rev in script.walk_revisions()]))


def declared_window(revision: str) -> str | None:
    """A shipped revision's ``OLDEST_CODE_SERVED`` (None before 0009)."""
    from alembic.script import ScriptDirectory

    from authgate.storage.migrate import _config

    module: Any = ScriptDirectory.from_config(_config()).get_revision(revision).module
    value = getattr(module, "OLDEST_CODE_SERVED", None)
    return value if isinstance(value, str) else None


async def check(connection: AsyncConnection, code_revision: str) -> SchemaVerdict:
    """The verdict for the database behind ``connection`` (two small reads)."""
    revision = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    if revision == code_revision:
        # The common case, decided without Alembic's script machinery (slow to import).
        return SchemaVerdict(True, f"database at {code_revision}, as the code")
    oldest = None
    if revision is not None and revision not in known_revisions():
        # Ahead of this code, so at 0009 or later: the window row exists.
        oldest = (
            await connection.execute(
                select(schema_window.c.oldest_code_revision).where(schema_window.c.id == 1)
            )
        ).scalar()
    return verdict(
        database_revision=revision,
        oldest_code_served=oldest,
        code_revision=code_revision,
        known_revisions=known_revisions(),
    )
