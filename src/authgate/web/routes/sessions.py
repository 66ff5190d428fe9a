"""The caller's sessions under /api/v1: list them, end one, end all but the current.

"current" is the session of the Bearer token's ``sid`` claim."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from fastapi import APIRouter, Response

from authgate.errors import InvalidAccessToken
from authgate.resource import Claims
from authgate.services.user_sessions import parse_id
from authgate.web.deps import Client, UserSessions
from authgate.web.guard import CurrentClaims, session_of
from authgate.web.responses import private_json
from authgate.web.schemas import EmptyResponse, SessionListResponse, SessionsEndedResponse

router = APIRouter(prefix="/api/v1", tags=["sessions"])


def _user_id(claims: Claims) -> UUID:
    user_id = parse_id(claims.sub)
    if user_id is None:
        raise InvalidAccessToken(detail_for_log="sub is not a UUID")
    return user_id


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@router.get("/sessions", response_model=SessionListResponse)
async def list_sessions(claims: CurrentClaims, sessions: UserSessions) -> Response:
    """The caller's live sessions, newest first."""
    views = await sessions.list(_user_id(claims))
    return private_json(
        {
            "sessions": [
                {
                    "id": str(view.id),
                    "createdAt": iso(view.created_at),
                    "lastUsedAt": iso(view.last_used_at),
                    "userAgent": view.user_agent,
                    "ipAddress": view.ip_address,
                    "current": str(view.id) == claims.sid,
                }
                for view in views
            ]
        }
    )


@router.delete("/sessions", response_model=SessionsEndedResponse)
async def end_other_sessions(
    claims: CurrentClaims, sessions: UserSessions, client: Client
) -> Response:
    """Log out everywhere else: every session but the caller's ends."""
    keep = parse_id(session_of(claims))
    if keep is None:
        raise InvalidAccessToken(detail_for_log="sid is not a UUID")
    ended = await sessions.end_others(_user_id(claims), client, keep=keep)
    return private_json({"ended": ended})


@router.delete("/sessions/{session_id}", response_model=EmptyResponse)
async def end_session(
    session_id: str, claims: CurrentClaims, sessions: UserSessions, client: Client
) -> Response:
    """End one of the caller's sessions (404 for an unknown or another user's id)."""
    await sessions.end(_user_id(claims), session_id, client)
    return private_json({})
