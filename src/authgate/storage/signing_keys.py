"""The signing-key ring's rows (``signing_keys``) and its lock.

Changes to the ring serialize on one row of ``maintenance_runs`` (task
``signing-key-ring``): ``lock_ring`` UPDATEs it, which holds its row lock on MariaDB
until the transaction ends (and SQLite serializes every writer with BEGIN IMMEDIATE),
so a second instance's rotation waits, then reads the first one's committed ring
(READ COMMITTED reads afresh per statement) and finds nothing left to do.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from authgate.domain.signing_keys import KeyState, NewSigningKey, SigningKeyRecord
from authgate.storage.tables import maintenance_runs, signing_keys

RING_LOCK_TASK = "signing-key-ring"

_TOUCH_LOCK = (
    update(maintenance_runs)
    .where(maintenance_runs.c.task == RING_LOCK_TASK)
    .values(last_run_at=bindparam("b_now", type_=maintenance_runs.c.last_run_at.type))
)
_INSERT_LOCK = insert(maintenance_runs)
_SELECT = select(signing_keys).order_by(signing_keys.c.created_at, signing_keys.c.kid)
_INSERT = insert(signing_keys)
# The date column each target state stamps.
_STAMP = {
    KeyState.CURRENT: "activated_at",
    KeyState.PREVIOUS: "deactivated_at",
    KeyState.RETIRED: "retired_at",
}


def _record(row: Any) -> SigningKeyRecord:
    return SigningKeyRecord(
        kid=row.kid,
        algorithm=row.algorithm,
        state=KeyState(row.state),
        public_jwk=json.loads(row.public_jwk),
        sealed_private_key=row.private_key_sealed,
        created_at=row.created_at,
        activated_at=row.activated_at,
        deactivated_at=row.deactivated_at,
        retired_at=row.retired_at,
    )


class SqlSigningKeyRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection

    async def create_lock(self, *, now: datetime) -> None:
        # Its own transaction, before any lock_ring: on MariaDB, two transactions
        # that both failed a duplicate INSERT hold shared locks on the row, and
        # both then UPDATEing it is a deadlock. Here a duplicate just ends the
        # transaction. (It exists: the usual case after the first start.)
        with contextlib.suppress(IntegrityError):
            await self._conn.execute(_INSERT_LOCK, {"task": RING_LOCK_TASK, "last_run_at": now})

    async def lock_ring(self, *, now: datetime) -> None:
        if (await self._conn.execute(_TOUCH_LOCK, {"b_now": now})).rowcount == 1:
            return
        try:
            await self._conn.execute(_INSERT_LOCK, {"task": RING_LOCK_TASK, "last_run_at": now})
        except IntegrityError:
            # Inserted by another transaction since (it has committed, or the
            # insert would still be waiting): take its lock like everybody else.
            await self._conn.execute(_TOUCH_LOCK, {"b_now": now})

    async def list_keys(self, states: Sequence[KeyState] | None = None) -> list[SigningKeyRecord]:
        query = _SELECT
        if states is not None:
            query = query.where(signing_keys.c.state.in_([state.value for state in states]))
        rows = await self._conn.execute(query)
        return [_record(row) for row in rows]

    async def add(self, key: NewSigningKey, *, state: KeyState, now: datetime) -> None:
        await self._conn.execute(
            _INSERT,
            {
                "kid": key.kid,
                "algorithm": key.algorithm,
                "state": state.value,
                "public_jwk": json.dumps(key.public_jwk, separators=(",", ":"), sort_keys=True),
                "private_key_sealed": key.sealed_private_key,
                "created_at": now,
                "activated_at": now if state is KeyState.CURRENT else None,
                "deactivated_at": None,
                "retired_at": None,
            },
        )

    async def move(
        self, kid: str, *, from_state: KeyState, to_state: KeyState, now: datetime
    ) -> bool:
        values: dict[str, Any] = {"state": to_state.value}
        stamp = _STAMP.get(to_state)
        if stamp is not None:
            values[stamp] = now
        if to_state is KeyState.RETIRED:
            # A retired key never signs again: nothing needs its private half.
            values["private_key_sealed"] = None
        result = await self._conn.execute(
            update(signing_keys)
            .where(signing_keys.c.kid == kid, signing_keys.c.state == from_state.value)
            .values(**values)
        )
        return result.rowcount == 1
