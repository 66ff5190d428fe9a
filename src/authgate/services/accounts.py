"""Accounts: sign-up and sign-in with email and password."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from typing import NoReturn
from uuid import UUID

from authgate.clock import Clock
from authgate.domain.emails import lookup_key, parse_email
from authgate.domain.models import ClientInfo, OAuthClient, TokenPair, User
from authgate.domain.observations import NO_OBSERVER, Observer, SignInOutcome
from authgate.domain.ports import PasswordHasher, PasswordRule, Throttles, UnitOfWorkFactory
from authgate.errors import (
    AccountDisabled,
    AccountLocked,
    EmailNotVerified,
    InvalidCredentials,
    InvalidInput,
    TooManyRequests,
)
from authgate.services.audit import AuditTrail
from authgate.services.mail_delivery import MailOutbox
from authgate.services.one_time_tokens import VERIFY
from authgate.services.password_policy import MAX_PASSWORD_LENGTH, PasswordPolicy
from authgate.services.sessions import SessionService, StartedSession
from authgate.services.transactions import ConflictRetry

MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class SignUp:
    email: str
    password: str
    given_name: str = ""
    family_name: str = ""
    display_name: str = ""


@dataclass(frozen=True)
class VerificationRequired:
    """Sign-up under ``EMAIL_VERIFICATION=required``: the account exists and its link
    is on the way; no session starts until the address is verified."""


class AccountService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        sessions: SessionService,
        policy: PasswordPolicy,
        clock: Clock,
        audit: AuditTrail,
        throttles: Throttles,
        strength: PasswordRule,
        outbox: MailOutbox | None = None,
        email_verification: str = "off",
        observer: Observer = NO_OBSERVER,
        conflicts: ConflictRetry | None = None,
    ) -> None:
        self._observer = observer
        self._conflicts = conflicts or ConflictRetry()
        # Email verification (issue 11): off | optional | required; the outbox
        # carries the sign-up mail when it is not off.
        self._outbox = outbox
        self._verification = email_verification if outbox is not None else "off"
        self._uow = uow
        self._hasher = hasher
        self._sessions = sessions
        self._policy = policy
        self._clock = clock
        self._audit = audit
        self._throttles = throttles
        self._strength = strength

    async def sign_up(
        self, request: SignUp, client: ClientInfo
    ) -> TokenPair | VerificationRequired:
        await self._throttles.check_ip("auth", client.address or "")
        await self._throttles.check_ip("signup", client.address or "")
        email = parse_email(request.email)
        self._policy.check(request.password)
        names = [clean_name(n) for n in (request.given_name, request.family_name)]
        display_name = clean_name(request.display_name, limit=200)
        # After the cheap checks: refuse common passwords and ones built from the
        # user's own address or name, before spending a hash on them.
        self._strength.check(request.password, email=email.display, names=[*names, display_name])
        # Hash before opening the transaction: the database must not hold a write
        # lock for the ~20 ms argon2 takes.
        password_hash = await self._hasher.hash(request.password)
        now = self._clock.now()
        user = User(
            id=uuid.uuid4(),
            email=email.display,
            email_key=email.key,
            email_verified=False,
            given_name=names[0],
            family_name=names[1],
            display_name=display_name,
            password_hash=password_hash,
            created_at=now,
        )

        async def create() -> StartedSession | VerificationRequired:
            async with self._uow() as uow:
                await uow.users.add(user)  # the unique index decides races: EmailTaken
                if self._outbox is not None and self._verification != "off":
                    await self._outbox.enqueue(
                        uow, user_id=user.id, purpose=VERIFY, address=user.email
                    )
                if self._verification == "required":
                    await self._audit.add(uow, self._audit.event("signup", client, user_id=user.id))
                    return VerificationRequired()
                return await self._sessions.start(uow, user, client, event="signup")

        # On Galera two nodes may both insert the address and one then fails
        # certification (a conflict, not a duplicate key): run again, the unique
        # index sees the winner's row and the loser gets 409 EmailTaken.
        started = await self._conflicts.run(create, name="sign-up")
        if isinstance(started, VerificationRequired):
            return started
        return self._sessions.tokens_for(started)

    async def sign_in(
        self,
        email: str,
        password: str,
        client: ClientInfo,
        *,
        oauth_client: OAuthClient | None = None,
    ) -> TokenPair:
        """Start a session; ``oauth_client`` (authenticated by the caller) owns it,
        None: the default client."""
        try:
            pair = await self._sign_in(email, password, client, oauth_client=oauth_client)
        except Exception as exc:
            self._observer.sign_in(_sign_in_outcome(exc))
            raise
        self._observer.sign_in(SignInOutcome.OK)
        return pair

    async def _sign_in(
        self,
        email: str,
        password: str,
        client: ClientInfo,
        *,
        oauth_client: OAuthClient | None,
    ) -> TokenPair:
        await self._throttles.check_ip("auth", client.address or "")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise InvalidCredentials(detail_for_log="password over the maximum length")
        key = lookup_key(email)
        try:
            # Counted before the password is verified: a locked account answers the
            # same whether the password was right or not, and concurrent guesses
            # cannot all slip in before the first failure is counted.
            await self._throttles.begin_attempt(key)
        except AccountLocked as locked:
            await self._audit_lock(key, client, started=locked.lock_started)
            raise
        async with self._uow() as uow:
            user = await uow.users.get_by_email_key(key)
        if user is None or user.password_hash is None:
            # Same work as a real verification, so timing does not tell whether
            # the account exists; unknown emails count towards a lock for the same reason.
            await self._hasher.verify_dummy(password)
            reason = "unknown_email" if user is None else "no_password"
            await self._refuse(client, reason, user.id if user else None)
        if not await self._hasher.verify(user.password_hash, password):
            await self._refuse(client, "wrong_password", user.id)
        await self._throttles.record_success(key)
        if user.disabled_at is not None:
            # After the password check, like the verification refusal below.
            await self._audit.record(
                self._audit.event(
                    "signin_failed", client, user_id=user.id, reason="account_disabled"
                )
            )
            raise AccountDisabled()
        if self._verification == "required" and not user.email_verified:
            # After the password check: only the account's owner learns this.
            await self._audit.record(
                self._audit.event(
                    "signin_failed", client, user_id=user.id, reason="email_not_verified"
                )
            )
            raise EmailNotVerified()
        new_hash = None
        # Older argon2 parameters, or an imported seed hash in its argon2id wrapper:
        # re-hashed to plain argon2id in the transaction that starts the session.
        if self._hasher.needs_rehash(user.password_hash):
            new_hash = await self._hasher.hash(password)

        async def start_session() -> StartedSession:
            async with self._uow() as uow:
                if new_hash is not None:
                    await uow.users.set_password_hash(user.id, new_hash)
                return await self._sessions.start(
                    uow,
                    user,
                    client,
                    event="signin",
                    reason="password_rehashed" if new_hash is not None else None,
                    oauth_client=oauth_client,
                )

        started = await self._conflicts.run(start_session, name="sign-in")
        return self._sessions.tokens_for(started)

    async def _audit_lock(self, key: str, client: ClientInfo, *, started: bool) -> None:
        """One ``lockout`` row when the lock starts, naming the account; the refused
        attempts after it go to the log only, so hammering a locked account does not
        turn into one database write per request."""
        if not started:
            self._audit.emit(self._audit.event("signin_failed", client, reason="locked"))
            return
        async with self._uow() as uow:
            user = await uow.users.get_by_email_key(key)
            event = self._audit.event("lockout", client, user_id=user.id if user else None)
            await self._audit.add(uow, event)

    async def _refuse(self, client: ClientInfo, reason: str, user_id: UUID | None) -> NoReturn:
        await self._audit.record(
            self._audit.event("signin_failed", client, user_id=user_id, reason=reason)
        )
        raise InvalidCredentials(detail_for_log=reason)

    async def get_user_with_providers(self, user_id: str) -> tuple[User, list[str]] | None:
        """The user and how it can sign in: "credentials" and provider names."""
        try:
            parsed = uuid.UUID(user_id)
        except ValueError:
            return None
        async with self._uow() as uow:
            user = await uow.users.get(parsed)
            if user is None:
                return None
            identities = await uow.identities.list_for_user(parsed)
        providers = ["credentials"] if user.password_hash is not None else []
        providers += sorted({identity.provider for identity in identities})
        return user, providers


# Bidirectional embeddings, overrides and isolates: "\u202eeciffO" renders as
# "Office" reversed in an admin console or an email greeting (Trojan Source,
# CVE-2021-42574). Marks (U+200E/U+200F) and joiners stay: RTL names and scripts
# such as Persian need them.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_name(value: str, *, limit: int = MAX_NAME_LENGTH) -> str:
    # Checked before trimming: a tab or newline at either end is refused, not
    # silently dropped. C0, DEL and C1 (U+0080-U+009F) are category Cc.
    if any(unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS for ch in value):
        raise InvalidInput("Names must not contain control characters.")
    cleaned = value.strip()
    if len(cleaned) > limit:
        raise InvalidInput(f"Names must be at most {limit} characters.")
    return cleaned


# The refusal reasons ``_refuse`` gives (and audits) that are sign-in outcomes too.
_REFUSAL_OUTCOMES = {
    outcome.value: outcome
    for outcome in (
        SignInOutcome.WRONG_PASSWORD,
        SignInOutcome.UNKNOWN_EMAIL,
        SignInOutcome.NO_PASSWORD,
    )
}


def _sign_in_outcome(exc: Exception) -> SignInOutcome:
    """How a refused sign-in is counted (the most specific class first)."""
    if isinstance(exc, AccountLocked):
        return SignInOutcome.LOCKED
    if isinstance(exc, TooManyRequests):
        return SignInOutcome.THROTTLED
    if isinstance(exc, InvalidCredentials):
        return _REFUSAL_OUTCOMES.get(exc.detail_for_log or "", SignInOutcome.INVALID)
    if isinstance(exc, AccountDisabled):
        return SignInOutcome.DISABLED
    if isinstance(exc, EmailNotVerified):
        return SignInOutcome.UNVERIFIED
    return SignInOutcome.ERROR
