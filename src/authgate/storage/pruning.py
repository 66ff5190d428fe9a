"""The pruning repository: deletes what has outlived its retention, a bounded batch
per call, and the marker that tells instances when pruning last ran.

Each method reads at most ``limit`` primary keys, then deletes (or updates) those
rows by key: MariaDB cannot DELETE from a table it reads in a subquery, SQLite has
no DELETE ... LIMIT, and a bounded batch keeps each transaction's locks short.
Like every repository it never commits; the service runs one batch per unit of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from authgate.storage.tables import (
    audit_events,
    id_token_uses,
    mail_outbox,
    maintenance_runs,
    one_time_tokens,
    refresh_tokens,
    sessions,
)

_child = refresh_tokens.alias("child")
_has_successor = exists().where(_child.c.parent_id == refresh_tokens.c.id)
_parent = refresh_tokens.alias("parent")
_has_parent_row = exists().where(_parent.c.id == refresh_tokens.c.parent_id)

# A session has ended when it was revoked, reached its absolute lifetime, or its
# current token (the one no row names as parent) idle-expired. Three reads, each
# on its own index, rather than one OR that none could use.
_REVOKED_SESSIONS = (
    select(sessions.c.id)
    .where(sessions.c.revoked_at <= bindparam("before"))
    .limit(bindparam("limit"))
)
_ABSOLUTELY_EXPIRED_SESSIONS = (
    select(sessions.c.id)
    .where(sessions.c.absolute_expires_at <= bindparam("before"))
    .limit(bindparam("limit"))
)
_IDLE_EXPIRED_SESSIONS = (
    select(refresh_tokens.c.session_id)
    .where(refresh_tokens.c.expires_at <= bindparam("before"), ~_has_successor)
    .limit(bindparam("limit"))
)
_DELETE_SESSION_TOKENS = delete(refresh_tokens).where(
    refresh_tokens.c.session_id.in_(bindparam("ids", expanding=True))
)
_DELETE_SESSIONS = delete(sessions).where(sessions.c.id.in_(bindparam("ids", expanding=True)))

# Rotated tokens stay while presenting them can still be detected as reuse; once
# expired past the retention they are deleted from live sessions too, but only from
# the old end of each chain (a token whose parent row is already gone). A token is
# "rotated" because a row names it as parent: deleting a child while its parent
# stays would make the parent look current again, so the next run would take its
# live session for idle-expired and delete it, and a parent not yet expired could
# be refreshed a second time, forking the session.
_ROTATED_EXPIRED_TOKENS = (
    select(refresh_tokens.c.id)
    .where(
        refresh_tokens.c.expires_at <= bindparam("before"),
        _has_successor,
        ~_has_parent_row,
    )
    .limit(bindparam("limit"))
)
_DELETE_TOKENS = delete(refresh_tokens).where(
    refresh_tokens.c.id.in_(bindparam("ids", expanding=True))
)

_STALE_SEALED_COPIES = (
    select(refresh_tokens.c.id)
    .where(
        refresh_tokens.c.sealed_for_parent.is_not(None),
        refresh_tokens.c.issued_at <= bindparam("before"),
    )
    .limit(bindparam("limit"))
)
_CLEAR_SEALED = (
    update(refresh_tokens)
    .where(refresh_tokens.c.id.in_(bindparam("b_ids", expanding=True)))
    .values(sealed_for_parent=None)
)

_EXPIRED_ID_TOKEN_USES = (
    select(id_token_uses.c.token_hash)
    .where(id_token_uses.c.expires_at <= bindparam("before"))
    .limit(bindparam("limit"))
)
_DELETE_ID_TOKEN_USES = delete(id_token_uses).where(
    id_token_uses.c.token_hash.in_(bindparam("ids", expanding=True))
)

# A one-time token past its expiry opens nothing: used or not, it can go.
_EXPIRED_ONE_TIME_TOKENS = (
    select(one_time_tokens.c.id)
    .where(one_time_tokens.c.expires_at <= bindparam("before"))
    .limit(bindparam("limit"))
)
_DELETE_ONE_TIME_TOKENS = delete(one_time_tokens).where(
    one_time_tokens.c.id.in_(bindparam("ids", expanding=True))
)

# Mail sent before the retention, and mail the drainer gave up on (queued before
# ``abandoned_before``, far beyond its retry schedule) without sending it.
_FINISHED_MAIL = (
    select(mail_outbox.c.id)
    .where(mail_outbox.c.sent_at <= bindparam("before"))
    .limit(bindparam("limit"))
)
_ABANDONED_MAIL = (
    select(mail_outbox.c.id)
    .where(mail_outbox.c.sent_at.is_(None), mail_outbox.c.created_at <= bindparam("before"))
    .limit(bindparam("limit"))
)
_DELETE_MAIL = delete(mail_outbox).where(mail_outbox.c.id.in_(bindparam("ids", expanding=True)))

_OLD_AUDIT_EVENTS = (
    select(audit_events.c.id)
    .where(audit_events.c.occurred_at < bindparam("before"))
    .limit(bindparam("limit"))
)
_DELETE_AUDIT_EVENTS = delete(audit_events).where(
    audit_events.c.id.in_(bindparam("ids", expanding=True))
)

_CLAIM_RUN = (
    update(maintenance_runs)
    .where(
        maintenance_runs.c.task == bindparam("b_task"),
        maintenance_runs.c.last_run_at
        <= bindparam("b_due", type_=maintenance_runs.c.last_run_at.type),
    )
    .values(last_run_at=bindparam("b_now", type_=maintenance_runs.c.last_run_at.type))
)
_INSERT_RUN = insert(maintenance_runs)


class SqlPruningRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def delete_ended_sessions(self, *, ended_before: datetime, limit: int) -> tuple[int, int]:
        """Delete up to ``limit`` sessions that ended before ``ended_before``, with
        their tokens. Returns (sessions, tokens) deleted."""
        ids: set[UUID] = set()
        for query in (_REVOKED_SESSIONS, _ABSOLUTELY_EXPIRED_SESSIONS, _IDLE_EXPIRED_SESSIONS):
            if len(ids) >= limit:
                break
            ids |= set(await self._ids(query, ended_before, limit - len(ids)))
        if not ids:
            return 0, 0
        parameters = {"ids": sorted(ids)}
        # Tokens first: the foreign key (SQLite enforces it per connection, InnoDB always).
        tokens = await self._conn.execute(_DELETE_SESSION_TOKENS, parameters)
        deleted = await self._conn.execute(_DELETE_SESSIONS, parameters)
        return deleted.rowcount, tokens.rowcount

    async def delete_rotated_tokens(self, *, expired_before: datetime, limit: int) -> int:
        """Delete up to ``limit`` rotated tokens that expired before ``expired_before``."""
        ids = await self._ids(_ROTATED_EXPIRED_TOKENS, expired_before, limit)
        return await self._delete(_DELETE_TOKENS, ids)

    async def clear_sealed_copies(self, *, issued_before: datetime, limit: int) -> int:
        """Clear up to ``limit`` sealed successors issued before ``issued_before``
        (that is, whose leeway has passed)."""
        ids = await self._ids(_STALE_SEALED_COPIES, issued_before, limit)
        if not ids:
            return 0
        return (await self._conn.execute(_CLEAR_SEALED, {"b_ids": ids})).rowcount

    async def delete_expired_id_token_uses(self, *, expired_before: datetime, limit: int) -> int:
        ids = await self._ids(_EXPIRED_ID_TOKEN_USES, expired_before, limit)
        return await self._delete(_DELETE_ID_TOKEN_USES, ids)

    async def delete_expired_one_time_tokens(self, *, expired_before: datetime, limit: int) -> int:
        ids = await self._ids(_EXPIRED_ONE_TIME_TOKENS, expired_before, limit)
        return await self._delete(_DELETE_ONE_TIME_TOKENS, ids)

    async def delete_finished_mail(
        self, *, sent_before: datetime, abandoned_before: datetime, limit: int
    ) -> int:
        ids = await self._ids(_FINISHED_MAIL, sent_before, limit)
        if len(ids) < limit:
            ids += await self._ids(_ABANDONED_MAIL, abandoned_before, limit - len(ids))
        return await self._delete(_DELETE_MAIL, ids)

    async def delete_audit_events(self, *, occurred_before: datetime, limit: int) -> int:
        ids = await self._ids(_OLD_AUDIT_EVENTS, occurred_before, limit)
        return await self._delete(_DELETE_AUDIT_EVENTS, ids)

    async def claim_run(self, task: str, *, now: datetime, last_run_before: datetime) -> bool:
        """Record that ``task`` runs now, unless it last ran after ``last_run_before``.

        Atomic across instances: the conditional UPDATE matches for only one of
        two concurrent claims (MariaDB re-reads the committed row before updating
        it; SQLite serializes writers), and for a task that never ran the primary
        key lets only one INSERT through."""
        claimed = await self._conn.execute(
            _CLAIM_RUN, {"b_task": task, "b_due": last_run_before, "b_now": now}
        )
        if claimed.rowcount == 1:
            return True
        try:
            await self._conn.execute(_INSERT_RUN, {"task": task, "last_run_at": now})
        except IntegrityError:
            # The row exists: it ran recently (or another instance just claimed it).
            return False
        return True

    async def _ids(self, query: Any, before: datetime, limit: int) -> list[Any]:
        rows = await self._conn.execute(query, {"before": before, "limit": limit})
        return [row[0] for row in rows]

    async def _delete(self, statement: Any, ids: Sequence[Any]) -> int:
        if not ids:
            return 0
        return (await self._conn.execute(statement, {"ids": list(ids)})).rowcount
