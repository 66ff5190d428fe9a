"""Sign-up and sign-in with an identity provider's ID token (Google, Apple, any OIDC).

An identity is (provider, ``sub``); the email is an attribute, never the key.
Linking to an existing account by email happens only when the provider vouches
for the email (``email_trusted``: verified, and an address that provider is an
authority for), the addresses are exactly equal (``email_key``: ß is not ss), and
the account has no identity of that provider yet. When that account's own email
was never verified and it holds a password, the password is removed and its
sessions are revoked: whoever pre-registered the address must not keep access to
the account its real owner now signs in to (the "pre-account takeover" attack).

An ID token starts at most one session: its use is recorded in the transaction
that starts the session, so a request that ends in 404 or 409 rolls the record
back with everything else and the token stays usable (sign-in, 404, sign-up).

An imported seed user of Google or Apple (the seed kept an email, no subject) is bound
once: the first token of that same provider whose verified address equals the
imported one (``email_key``) creates the identity, whatever that provider's general
email-trust rule, because the seed had already tied that address to that provider.
Never for an account that holds a password.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from authgate.clock import Clock
from authgate.domain.emails import parse_email
from authgate.domain.identity import IdTokenVerifier, VerifiedIdentity
from authgate.domain.models import ClientInfo, IdentityRecord, IdTokenUse, TokenPair, User
from authgate.domain.ports import Throttles, UnitOfWork, UnitOfWorkFactory
from authgate.errors import (
    AccountDisabled,
    AccountNotFound,
    IdentityTaken,
    InvalidIdToken,
    InvalidInput,
    ProviderAlreadyLinked,
    ProviderNotEnabled,
)
from authgate.services.accounts import clean_name
from authgate.services.audit import AuditTrail
from authgate.services.sessions import SessionService


@dataclass(frozen=True)
class ProviderNames:
    """Names sent by the app (Apple gives them to the app only on the first sign-in)."""

    first_name: str = ""
    last_name: str = ""


class ProviderAccountService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        verifiers: Mapping[str, IdTokenVerifier],
        sessions: SessionService,
        audit: AuditTrail,
        clock: Clock,
        signup_on_signin: bool,
        throttles: Throttles,
    ) -> None:
        self._throttles = throttles
        self._uow = uow
        self._verifiers = verifiers
        self._sessions = sessions
        self._audit = audit
        self._clock = clock
        self._signup_on_signin = signup_on_signin

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(sorted(self._verifiers))

    async def sign_up(
        self,
        provider: str,
        token: str,
        *,
        nonce: str | None,
        names: ProviderNames,
        client: ClientInfo,
    ) -> TokenPair:
        await self._throttles.check_ip("auth", client.address or "")
        await self._throttles.check_ip("signup", client.address or "")
        first, last = clean_name(names.first_name), clean_name(names.last_name)
        identity = await self._verify(provider, token, nonce)
        refused = _Refused()
        try:
            async with self._uow() as uow:
                await self._use_once(uow, identity)
                if await uow.identities.get(identity.provider, identity.subject) is not None:
                    raise IdentityTaken()
                user = await self._account_by_address(uow, identity, client)
                if user is None:
                    user = await self._create(uow, identity, ProviderNames(first, last), client)
                refused.check(user)
                started = await self._sessions.start(
                    uow, user, client, event="provider_signup", provider=identity.provider
                )
        except AccountDisabled:
            await self._audit_disabled(refused, identity, client)
            raise
        return self._sessions.tokens_for(started)

    async def sign_in(
        self, provider: str, token: str, *, nonce: str | None, client: ClientInfo
    ) -> TokenPair:
        await self._throttles.check_ip("auth", client.address or "")
        identity = await self._verify(provider, token, nonce)
        refused = _Refused()
        try:
            async with self._uow() as uow:
                await self._use_once(uow, identity)
                user = await self._known_user(uow, identity)
                if user is None:
                    user = await self._account_by_address(uow, identity, client)
                if user is None:
                    if not self._signup_on_signin:
                        raise AccountNotFound(detail_for_log=f"{provider} identity without account")
                    user = await self._create(uow, identity, ProviderNames(), client)
                refused.check(user)
                started = await self._sessions.start(
                    uow, user, client, event="provider_signin", provider=identity.provider
                )
        except AccountDisabled:
            await self._audit_disabled(refused, identity, client)
            raise
        return self._sessions.tokens_for(started)

    async def _audit_disabled(
        self, refused: _Refused, identity: VerifiedIdentity, client: ClientInfo
    ) -> None:
        # The transaction (and the ID token's use, and any link) rolled back; the
        # refusal is recorded on its own, like a refused password sign-in.
        await self._audit.record(
            self._audit.event(
                "signin_failed",
                client,
                user_id=refused.user_id,
                reason="account_disabled",
                provider=identity.provider,
            )
        )

    async def _verify(self, provider: str, token: str, nonce: str | None) -> VerifiedIdentity:
        verifier = self._verifiers.get(provider)
        if verifier is None:
            raise ProviderNotEnabled(detail_for_log=f"provider {provider[:64]!r} not configured")
        return await verifier.verify(token, nonce=nonce)

    async def verify_linked(
        self,
        token: str,
        *,
        nonce: str | None,
        provider: str | None,
        linked: Sequence[IdentityRecord],
    ) -> VerifiedIdentity:
        """Verify ``token`` as sign-in does and require that it is one of ``linked``
        (a confirmation for account deletion). ``provider`` names the verifier; by
        default each linked provider's is tried."""
        names = [provider] if provider else sorted({record.provider for record in linked})
        for name in names:
            verifier = self._verifiers.get(name)
            if verifier is None:
                continue
            try:
                identity = await verifier.verify(token, nonce=nonce)
            except InvalidIdToken:
                continue
            if any(
                (record.provider, record.subject) == (identity.provider, identity.subject)
                for record in linked
            ):
                return identity
            raise InvalidIdToken(detail_for_log="id token of an identity not linked to this user")
        raise InvalidIdToken(detail_for_log="no linked provider verified the id token")

    async def use_once(self, uow: UnitOfWork, identity: VerifiedIdentity) -> None:
        """Use up ``identity``'s ID token inside ``uow`` (refused if it was used)."""
        await self._use_once(uow, identity)

    async def _use_once(self, uow: UnitOfWork, identity: VerifiedIdentity) -> None:
        """Record that this token starts a session; refuse a token that already did.

        First in the transaction: a concurrent use of the same token waits on this
        row before touching anything else, and learns the outcome of the first."""
        recorded = await uow.id_token_uses.add(
            IdTokenUse(
                token_hash=identity.token_hash,
                provider=identity.provider,
                used_at=self._clock.now(),
                expires_at=identity.token_expires_at,
            )
        )
        if not recorded:
            raise InvalidIdToken(detail_for_log=f"{identity.provider} id token used before")

    async def _known_user(self, uow: UnitOfWork, identity: VerifiedIdentity) -> User | None:
        record = await uow.identities.get(identity.provider, identity.subject)
        if record is None:
            return None
        await uow.identities.touch(
            record.id,
            at=self._clock.now(),
            email=identity.email,
            email_verified=identity.email_verified,
        )
        return await uow.users.get(record.user_id)

    async def _account_by_address(
        self, uow: UnitOfWork, identity: VerifiedIdentity, client: ClientInfo
    ) -> User | None:
        """The existing account the provider's verified address leads to, bound or
        linked now; None when there is none or the provider may not claim it.

        One lookup serves both ways in (see the module docstring): the one-time bind
        of an imported user of this provider, and linking by a vouched-for address.
        """
        if identity.email is None or not identity.email_verified:
            return None
        key = _email_key(identity.email)
        if key is None:
            return None
        # The exact key: the same mailbox, not a look-alike (straße@ is not strasse@).
        user = await uow.users.get_by_email_key(key)
        if user is None:
            return None
        if user.imported_provider == identity.provider and user.password_hash is None:
            return await self._bind_imported(uow, user, identity, client)
        if not identity.email_trusted:
            return None
        return await self._link(uow, user, identity, client, email=identity.email, key=key)

    async def _bind_imported(
        self, uow: UnitOfWork, user: User, identity: VerifiedIdentity, client: ClientInfo
    ) -> User | None:
        """The one-time bind of an imported provider user (see the module docstring)."""
        await uow.identities.add(self._identity_record(user.id, identity))
        await uow.users.clear_imported_provider(user.id)
        await self._audit.add(
            uow,
            self._audit.event(
                "provider_link",
                client,
                user_id=user.id,
                provider=identity.provider,
                reason="imported_bind",
            ),
        )
        return await uow.users.get(user.id)

    async def _link(
        self,
        uow: UnitOfWork,
        user: User,
        identity: VerifiedIdentity,
        client: ClientInfo,
        *,
        email: str,
        key: str,
    ) -> User | None:
        linked = await uow.identities.list_for_user(user.id)
        if any(record.provider == identity.provider for record in linked):
            # Another identity of this provider owns the account; a second one with the
            # same address is someone else, or the same person's address after the
            # provider reassigned it: never linked, and no second account claims it.
            raise ProviderAlreadyLinked(
                detail_for_log=f"{identity.provider} identity for an account linked to another"
            )
        now = self._clock.now()
        # Pre-account takeover: a password on an address nobody verified was set by
        # whoever registered it first, and the provider now vouches for its owner.
        takeover_risk = not user.email_verified and user.password_hash is not None
        if takeover_risk:
            await uow.users.set_password_hash(user.id, None)
            await uow.sessions.revoke_user_sessions(user.id, at=now, reason="unverified_link")
            # And whatever the squatter set in motion: a pending email-change (or
            # any other) link would move the account to the squatter's address.
            await uow.one_time_tokens.invalidate_user(user.id, at=now)
            await uow.mail_outbox.delete_unsent_for_user(user.id)
        if not user.email_verified:
            await uow.users.mark_email_verified(user.id, email=email, email_key=key)
        await uow.identities.add(self._identity_record(user.id, identity))
        await self._audit.add(
            uow,
            self._audit.event(
                "provider_link",
                client,
                user_id=user.id,
                provider=identity.provider,
                reason="password_removed" if takeover_risk else None,
            ),
        )
        return await uow.users.get(user.id)

    async def _create(
        self,
        uow: UnitOfWork,
        identity: VerifiedIdentity,
        names: ProviderNames,
        client: ClientInfo,
    ) -> User:
        now = self._clock.now()
        # Only an address the provider vouches for claims the unique email key.
        key = _email_key(identity.email) if identity.email and identity.email_trusted else None
        user = User(
            id=uuid.uuid4(),
            email=identity.email,
            email_key=key,
            email_verified=key is not None,
            given_name=names.first_name or _bounded(identity.given_name),
            family_name=names.last_name or _bounded(identity.family_name),
            display_name="",
            password_hash=None,
            created_at=now,
        )
        await uow.users.add(user)
        await uow.identities.add(self._identity_record(user.id, identity))
        return user

    def _identity_record(self, user_id: uuid.UUID, identity: VerifiedIdentity) -> IdentityRecord:
        now = self._clock.now()
        return IdentityRecord(
            id=uuid.uuid4(),
            user_id=user_id,
            provider=identity.provider,
            subject=identity.subject,
            email=identity.email,
            email_verified=identity.email_verified,
            created_at=now,
            last_used_at=now,
        )


class _Refused:
    """Which disabled account a provider sign-in reached, for the audit row."""

    user_id: uuid.UUID | None = None

    def check(self, user: User) -> None:
        if user.disabled_at is not None:
            self.user_id = user.id
            raise AccountDisabled()


def _email_key(address: str) -> str | None:
    try:
        return parse_email(address).key
    except InvalidInput:
        return None


def _bounded(name: str | None) -> str:
    # Provider names are not ours to refuse; keep them printable and bounded.
    if not name:
        return ""
    cleaned = "".join(ch for ch in name if ord(ch) >= 32 and ord(ch) != 127).strip()
    return cleaned[:100]
