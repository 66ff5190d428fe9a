"""The /oauth/* use cases: the token grants (RFC 6749), revocation (RFC 7009) and
introspection (RFC 7662), for authenticated clients.

A refresh goes through :class:`SessionService` (the same rotation, leeway and reuse
rules as /api/v1/refresh). A client acts only on tokens issued to it; an introspecting
resource server learns only about tokens meant for its own audiences."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, Protocol

from authgate.clock import Clock
from authgate.crypto.refresh_secrets import MAX_TOKEN_LENGTH, hash_refresh_token
from authgate.domain.models import ClientInfo, OAuthClient
from authgate.domain.ports import AccessTokenIssuer, Throttles, UnitOfWork, UnitOfWorkFactory
from authgate.errors import (
    InvalidClient,
    OAuthInvalidRequest,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from authgate.oauth.clients import (
    CLIENT_CREDENTIALS,
    REFRESH_TOKEN,
    ClientRegistry,
    PresentedClient,
)
from authgate.services.audit import AuditTrail
from authgate.services.sessions import SessionService

TokenHint = Literal["access_token", "refresh_token"] | None
INACTIVE: dict[str, Any] = {"active": False}


class AccessTokenDecoder(Protocol):
    async def decode_any_audience(self, token: str, *, now: datetime) -> dict[str, Any] | None:
        """The claims of a live access token of ours, for any audience, or None."""
        ...


class OAuthService:
    def __init__(
        self,
        *,
        clients: ClientRegistry,
        sessions: SessionService,
        access_tokens: AccessTokenIssuer,
        decoder: AccessTokenDecoder,
        uow: UnitOfWorkFactory,
        clock: Clock,
        throttles: Throttles,
        audit: AuditTrail,
        issuer: str,
    ) -> None:
        self._clients = clients
        self._sessions = sessions
        self._access_tokens = access_tokens
        self._decoder = decoder
        self._uow = uow
        self._clock = clock
        self._throttles = throttles
        self._audit = audit
        self._issuer = issuer

    async def token(
        self, params: Mapping[str, str], presented: PresentedClient, client: ClientInfo
    ) -> dict[str, Any]:
        """RFC 6749 §5.1 answer for the ``grant_type`` in ``params``."""
        grant_type = params.get("grant_type")
        if grant_type is None:
            raise OAuthInvalidRequest("grant_type is required.")
        if grant_type not in (REFRESH_TOKEN, CLIENT_CREDENTIALS):
            # Including ``password``: RFC 9700 §2.4 says it MUST NOT be used.
            raise UnsupportedGrantType(detail_for_log=f"grant_type {grant_type[:32]!r}")
        if grant_type == CLIENT_CREDENTIALS:
            # Counted before the secret check: each one costs a database read.
            await self._throttles.check_ip("refresh", client.address or "")
        oauth_client = await self._clients.authenticate(presented, client)
        if grant_type not in oauth_client.grant_types:
            raise UnauthorizedClient(detail_for_log=f"{oauth_client.client_id}: {grant_type}")
        if grant_type == REFRESH_TOKEN:
            return await self._refresh(params, oauth_client, client)
        if oauth_client.is_public:
            raise UnauthorizedClient(detail_for_log="public client asked for client_credentials")
        access = self._access_tokens.issue_for_client(
            oauth_client.client_id, audiences=oauth_client.audiences, now=self._clock.now()
        )
        # RFC 6749 §4.4.3: no refresh token; the client simply asks again.
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self._access_tokens.ttl_seconds,
        }

    async def _refresh(
        self, params: Mapping[str, str], oauth_client: OAuthClient, client: ClientInfo
    ) -> dict[str, Any]:
        token = params.get("refresh_token")
        if token is None:
            raise OAuthInvalidRequest("refresh_token is required.")
        # InvalidRefreshToken (unknown, expired, reused, another client's) is
        # answered invalid_grant by the web layer.
        pair = await self._sessions.refresh(token, client, oauth_client=oauth_client)
        return {
            "access_token": pair.access_token,
            "token_type": "Bearer",
            "expires_in": pair.expires_in,
            "refresh_token": pair.refresh_token,
        }

    async def client_for_sign_in(
        self, presented: PresentedClient, client: ClientInfo
    ) -> OAuthClient:
        """The client a JSON sign-in names: authenticated, and allowed refresh tokens
        (a user session is a refresh-token family)."""
        oauth_client = await self._clients.authenticate(presented, client)
        if REFRESH_TOKEN not in oauth_client.grant_types:
            raise UnauthorizedClient(detail_for_log=f"{oauth_client.client_id}: no refresh_token")
        return oauth_client

    async def revoke(
        self, token: str | None, hint: str | None, presented: PresentedClient, client: ClientInfo
    ) -> None:
        """RFC 7009 §2.1: end the session of a token issued to this client. Unknown,
        malformed, expired and other clients' tokens change nothing and succeed alike."""
        await self._throttles.check_ip("revoke", client.address or "")
        oauth_client = await self._clients.authenticate(presented, client)
        if token is None:
            raise OAuthInvalidRequest("token is required.")
        now = self._clock.now()
        async with self._uow() as uow:
            for kind in _order(hint):
                session_id = await self._session_of(uow, kind, token, now)
                if session_id is None:
                    continue
                owner = await uow.sessions.find_session(session_id)
                if owner is None or owner.session.client_id != oauth_client.session_client_id:
                    return
                if owner.session.revoked_at is None:
                    await uow.sessions.revoke_session(session_id, at=now, reason="logout")
                    event = self._audit.event(
                        "revoke", client, user_id=owner.session.user_id, session_id=session_id
                    )
                    await self._audit.add(uow, event)
                return

    async def introspect(
        self, token: str | None, hint: str | None, presented: PresentedClient, client: ClientInfo
    ) -> dict[str, Any]:
        """RFC 7662 §2.2: the token's claims with ``active: true`` while it is live and
        meant for one of the caller's audiences; otherwise only ``active: false``."""
        caller = await self._clients.authenticate(presented, client)
        if caller.is_public or not caller.may_introspect:
            raise InvalidClient(
                "This client may not introspect tokens.",
                detail_for_log=f"{caller.client_id} may not introspect",
            )
        if token is None:
            raise OAuthInvalidRequest("token is required.")
        now = self._clock.now()
        async with self._uow() as uow:
            for kind in _order(hint):
                if kind == "access_token":
                    answer = await self._introspect_access(uow, token, caller, now)
                else:
                    answer = await self._introspect_refresh(uow, token, caller, now)
                if answer is not None:
                    return answer
        return INACTIVE

    async def _session_of(
        self, uow: UnitOfWork, kind: str, token: str, now: datetime
    ) -> uuid.UUID | None:
        if kind == "refresh_token":
            if not token or len(token) > MAX_TOKEN_LENGTH:
                return None
            found = await uow.sessions.find_token(hash_refresh_token(token))
            return found.session.id if found is not None else None
        claims = await self._decoder.decode_any_audience(token, now=now)
        return _uuid(claims.get("sid")) if claims is not None else None

    async def _introspect_access(
        self, uow: UnitOfWork, token: str, caller: OAuthClient, now: datetime
    ) -> dict[str, Any] | None:
        claims = await self._decoder.decode_any_audience(token, now=now)
        if claims is None:
            return None
        if not _shares_audience(claims.get("aud"), caller.audiences):
            return INACTIVE
        if "sid" in claims:
            session_id = _uuid(claims["sid"])
            owner = await uow.sessions.find_session(session_id) if session_id else None
            if (
                owner is None
                or owner.user is None
                or owner.user.disabled_at is not None
                or str(owner.user.id) != claims.get("sub")
                or owner.session.revoked_at is not None
                or now >= owner.session.absolute_expires_at
            ):
                return INACTIVE
        else:
            # A client_credentials token lives as long as its client is registered.
            subject = claims.get("sub")
            if not isinstance(subject, str) or await uow.clients.get(subject) is None:
                return INACTIVE
        return {"active": True, **claims, "token_type": "Bearer"}

    async def _introspect_refresh(
        self, uow: UnitOfWork, token: str, caller: OAuthClient, now: datetime
    ) -> dict[str, Any] | None:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        found = await uow.sessions.find_token(hash_refresh_token(token))
        if found is None:
            return None
        session, user, record = found.session, found.user, found.token
        if (
            found.successor is not None  # rotated: only its successor is live
            or now >= record.expires_at
            or session.revoked_at is not None
            or now >= session.absolute_expires_at
            or user.disabled_at is not None
        ):
            return INACTIVE
        issued_to = self._clients.default
        if session.client_id is not None:
            registered = await uow.clients.get(session.client_id)
            if registered is None:
                return INACTIVE
            issued_to = registered
        if not set(issued_to.audiences) & set(caller.audiences):
            return INACTIVE
        return {
            "active": True,
            "token_type": "refresh_token",
            "client_id": issued_to.client_id,
            "iss": self._issuer,
            "sub": str(user.id),
            "sid": str(session.id),
            "aud": list(issued_to.audiences),
            "iat": int(record.issued_at.timestamp()),
            "exp": int(record.expires_at.timestamp()),
        }


def _order(hint: str | None) -> tuple[str, str]:
    # RFC 7009 §2.1 / RFC 7662 §2.1: a hint only decides which lookup goes first.
    if hint == "access_token":
        return ("access_token", "refresh_token")
    return ("refresh_token", "access_token")


def _shares_audience(aud: object, audiences: tuple[str, ...]) -> bool:
    values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    return any(value in audiences for value in values if isinstance(value, str))


def _uuid(value: object) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
