"""OAuth clients: registering them, and authenticating a client at /oauth/*.

A secret has 256 random bits, is shown once, and only its SHA-256 is stored: a
high-entropy secret needs no slow hash (nothing to brute-force), and a constant-time
comparison of the digests leaks nothing usable. The default client (the seed routes
and /api/v1) is public and comes from settings, never from a row."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from authgate.clock import Clock
from authgate.domain.models import ClientInfo, OAuthClient
from authgate.domain.ports import Throttles, UnitOfWorkFactory
from authgate.errors import InvalidClient, InvalidInput

REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a grant type name, not a secret
CLIENT_CREDENTIALS = "client_credentials"
GRANT_TYPES = (REFRESH_TOKEN, CLIENT_CREDENTIALS)
# RFC 3986 unreserved characters: safe in a URL, a Basic header and a log line.
CLIENT_ID = re.compile(r"[A-Za-z0-9._~-]{1,64}")
# An audience is any printable token without spaces (stored space-separated).
AUDIENCE = re.compile(r"[\x21-\x7e]{1,255}")
SECRET_BYTES = 32  # 256 bits
MAX_SECRET_LENGTH = 256
_DUMMY_HASH = "0" * 64

AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]


@dataclass(frozen=True)
class PresentedClient:
    """What a request said about its client (RFC 6749 §2.3): an id, and a secret
    sent one way or none."""

    client_id: str
    secret: str | None
    method: AuthMethod


def new_client_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def hash_client_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def default_client(client_id: str, audiences: tuple[str, ...]) -> OAuthClient:
    """The settings-defined public client of the seed routes and /api/v1."""
    return OAuthClient(
        client_id=client_id,
        secret_hash=None,
        grant_types=(REFRESH_TOKEN,),
        audiences=audiences,
        may_introspect=False,
        is_default=True,
    )


class ClientRegistry:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        default: OAuthClient,
        throttles: Throttles | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._default = default
        self._throttles = throttles

    @property
    def default(self) -> OAuthClient:
        return self._default

    async def create(
        self,
        client_id: str,
        *,
        audiences: tuple[str, ...],
        grant_types: tuple[str, ...] = (),
        public: bool = False,
        may_introspect: bool = False,
    ) -> tuple[OAuthClient, str | None]:
        """Register a client; return it with its secret (None for a public client),
        the only time the secret exists outside the caller's hands."""
        if CLIENT_ID.fullmatch(client_id) is None:
            raise InvalidInput("A client id is 1 to 64 of A-Z a-z 0-9 . _ ~ -.")
        if client_id == self._default.client_id:
            raise InvalidInput(f"{client_id!r} is the default client (DEFAULT_CLIENT_ID).")
        if not audiences or any(AUDIENCE.fullmatch(a) is None for a in audiences):
            raise InvalidInput("Name at least one audience, each without spaces.")
        grants = tuple(
            dict.fromkeys(grant_types or ((REFRESH_TOKEN,) if public else (CLIENT_CREDENTIALS,)))
        )
        if any(grant not in GRANT_TYPES for grant in grants):
            raise InvalidInput(f"Grant types are {', '.join(GRANT_TYPES)}.")
        if public and CLIENT_CREDENTIALS in grants:
            # RFC 6749 §4.4: only confidential clients use client_credentials.
            raise InvalidInput("A public client cannot use client_credentials.")
        if public and may_introspect:
            # RFC 7662 §2.1: the caller of introspection authenticates.
            raise InvalidInput("A public client cannot introspect.")
        secret = None if public else new_client_secret()
        client = OAuthClient(
            client_id=client_id,
            secret_hash=None if secret is None else hash_client_secret(secret),
            grant_types=grants,
            audiences=tuple(dict.fromkeys(audiences)),
            may_introspect=may_introspect,
            created_at=self._clock.now(),
        )
        async with self._uow() as uow:
            await uow.clients.add(client)
        return client, secret

    async def list_all(self) -> list[OAuthClient]:
        async with self._uow() as uow:
            registered = await uow.clients.list_all()
        return [self._default, *registered]

    async def delete(self, client_id: str) -> int | None:
        """Delete the client and revoke its sessions; how many, or None if unknown."""
        async with self._uow() as uow:
            if not await uow.clients.delete(client_id):
                return None
            return await uow.clients.revoke_sessions(
                client_id, at=self._clock.now(), reason="client_deleted"
            )

    async def authenticate(self, presented: PresentedClient, client: ClientInfo) -> OAuthClient:
        """The client if ``presented`` proves it (a confidential client's secret, a
        public client's id alone), else :class:`InvalidClient`."""
        found = await self._find(presented.client_id)
        expected = found.secret_hash if found is not None else None
        if found is not None and found.is_public and presented.secret is None:
            return found
        # Compared even for an unknown client, so timing does not tell ids apart.
        given = hash_client_secret(presented.secret or "")
        matches = hmac.compare_digest(given, expected or _DUMMY_HASH)
        if found is None or expected is None or presented.secret is None or not matches:
            if self._throttles is not None:
                # Failures count against the address like failed sign-ins.
                await self._throttles.check_ip("auth", client.address or "")
            reason = "unknown client" if found is None else "client authentication failed"
            raise InvalidClient(detail_for_log=f"{reason} ({presented.method})")
        return found

    async def _find(self, client_id: str) -> OAuthClient | None:
        if client_id == self._default.client_id:
            return self._default
        if CLIENT_ID.fullmatch(client_id) is None:
            return None
        async with self._uow() as uow:
            return await uow.clients.get(client_id)
