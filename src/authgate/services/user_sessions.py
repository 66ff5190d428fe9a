"""The sessions a user can see and end: list them, end one, end all but the current.

Shared by the HTTP routes (the user, by access token) and the operator CLI.

A session's last use is when its newest refresh token was issued (the moment of its
last rotation; at sign-in, its start). That row is written by the rotation anyway, so
the refresh path gains no statement: no UPDATE of the session per refresh, and no
write amplification under bursts of refreshes. ``sessions.last_used_at`` holds the
start, for sessions whose tokens were pruned.
"""

from __future__ import annotations

import uuid
from uuid import UUID

from authgate.clock import Clock
from authgate.domain.models import ClientInfo, SessionView
from authgate.domain.ports import Throttles, UnitOfWorkFactory
from authgate.errors import SessionNotFound
from authgate.services.audit import AuditTrail


def parse_id(value: str) -> UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class UserSessionService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        audit: AuditTrail,
        throttles: Throttles | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._audit = audit
        self._throttles = throttles

    async def list(self, user_id: UUID) -> list[SessionView]:
        """The user's live sessions (not revoked, not expired), newest first."""
        async with self._uow() as uow:
            return await uow.sessions.list_live(user_id, now=self._clock.now())

    async def end(
        self, user_id: UUID, session_id: str, client: ClientInfo, *, reason: str = "user_ended"
    ) -> None:
        """End one of the user's sessions. Another user's session, an unknown id and an
        already-ended session are one answer (SessionNotFound), and change nothing."""
        await self._throttle(client)
        parsed = parse_id(session_id)
        if parsed is None:
            raise SessionNotFound(detail_for_log="session id is not a UUID")
        async with self._uow() as uow:
            now = self._clock.now()
            ended = await uow.sessions.revoke_user_session(user_id, parsed, at=now, reason=reason)
            if not ended:
                raise SessionNotFound(detail_for_log="no live session of this user")
            await self._audit.add(
                uow,
                self._audit.event(
                    "session_ended", client, user_id=user_id, session_id=parsed, reason=reason
                ),
            )

    async def end_others(
        self,
        user_id: UUID,
        client: ClientInfo,
        *,
        keep: UUID | None,
        reason: str = "user_ended_others",
    ) -> int:
        """End every live session of the user but ``keep`` (None: all of them)."""
        await self._throttle(client)
        async with self._uow() as uow:
            now = self._clock.now()
            if keep is None:
                count = await uow.sessions.revoke_user_sessions(user_id, at=now, reason=reason)
            else:
                count = await uow.sessions.revoke_other_sessions(
                    user_id, keep=keep, at=now, reason=reason
                )
            await self._audit.add(
                uow,
                self._audit.event(
                    "sessions_ended", client, user_id=user_id, session_id=keep, reason=reason
                ),
            )
        return count

    async def owner_of(self, session_id: str) -> UUID:
        """The user of a session (operator use); SessionNotFound if there is none."""
        parsed = parse_id(session_id)
        owner = None
        if parsed is not None:
            async with self._uow() as uow:
                owner = await uow.sessions.owner_of(parsed)
        if owner is None:
            raise SessionNotFound(f"No session {session_id[:64]!r}.")
        return owner

    async def _throttle(self, client: ClientInfo) -> None:
        # The operator CLI has no throttles: it is not reachable from the network.
        if self._throttles is not None:
            await self._throttles.check_ip("revoke", client.address or "")
