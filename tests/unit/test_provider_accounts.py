"""Provider sign-in/sign-up rules on in-memory fakes: linking, single use."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import pytest

from authgate.domain.identity import VerifiedIdentity
from authgate.domain.models import OneTimeToken, OutboxMail
from authgate.errors import AccountNotFound, InvalidIdToken, ProviderAlreadyLinked
from authgate.services.accounts import SignUp
from authgate.services.audit import AuditTrail
from authgate.services.provider_accounts import ProviderAccountService, ProviderNames
from tests.unit.fakes import FakeUnitOfWork
from tests.unit.test_services import CLIENT, build


class StaticVerifier:
    """Answers every token with the identity registered for it."""

    name = "google"

    def __init__(self) -> None:
        self.identities: dict[str, VerifiedIdentity] = {}

    async def verify(self, token: str, *, nonce: str | None) -> VerifiedIdentity:
        return self.identities[token]


def wiring() -> dict[str, Any]:
    w = build()
    verifier = StaticVerifier()
    w["verifier"] = verifier
    w["providers"] = ProviderAccountService(
        uow=lambda: FakeUnitOfWork(w["store"]),
        verifiers={"google": verifier},
        sessions=w["sessions"],
        audit=AuditTrail(uow=lambda: FakeUnitOfWork(w["store"]), clock=w["clock"]),
        clock=w["clock"],
        signup_on_signin=False,
        throttles=w["throttles"],
    )
    return w


def token(w: dict[str, Any], name: str, **fields: Any) -> str:
    identity = VerifiedIdentity(
        provider="google",
        subject="sub-1",
        email="alice@gmail.com",
        email_verified=True,
        is_private_email=False,
        given_name=None,
        family_name=None,
        email_trusted=True,
        token_hash=f"hash-of-{name}",
        token_expires_at=w["clock"].now() + timedelta(hours=1),
    )
    w["verifier"].identities[name] = dataclasses.replace(identity, **fields)
    return name


async def sign_up(w: dict[str, Any], name: str) -> Any:
    return await w["providers"].sign_up(
        "google", name, nonce=None, names=ProviderNames(), client=CLIENT
    )


async def test_a_token_starts_one_session_and_its_use_is_kept_until_it_expires() -> None:
    w = wiring()
    t = token(w, "t1")
    await sign_up(w, t)
    use = w["store"].id_token_uses["hash-of-t1"]
    assert (use.provider, use.expires_at) == ("google", w["clock"].now() + timedelta(hours=1))
    sessions = len(w["store"].sessions)
    with pytest.raises(InvalidIdToken):
        await w["providers"].sign_in("google", t, nonce=None, client=CLIENT)
    assert len(w["store"].sessions) == sessions


async def test_a_refused_request_leaves_the_token_usable() -> None:
    w = wiring()
    t = token(w, "t1")
    with pytest.raises(AccountNotFound):
        await w["providers"].sign_in("google", t, nonce=None, client=CLIENT)
    assert w["store"].id_token_uses == {}
    await sign_up(w, t)
    assert set(w["store"].id_token_uses) == {"hash-of-t1"}


async def test_untrusted_and_second_identities_of_a_provider_do_not_link() -> None:
    w = wiring()
    await w["accounts"].sign_up(SignUp("bob@example.com", "bob-password"), CLIENT)
    # Verified but not vouched for: a separate account, no key.
    await sign_up(w, token(w, "u", subject="u", email="bob@example.com", email_trusted=False))
    users = sorted(w["store"].users.values(), key=lambda u: u.password_hash is None)
    assert [(u.email_key, u.email_verified) for u in users] == [
        ("bob@example.com", False),
        (None, False),
    ]
    await sign_up(w, token(w, "first"))
    with pytest.raises(ProviderAlreadyLinked):
        await sign_up(w, token(w, "second", subject="sub-2"))
    assert "hash-of-second" not in w["store"].id_token_uses


async def test_taking_an_unverified_account_back_voids_its_links_and_queued_mail() -> None:
    w = wiring()
    await w["accounts"].sign_up(SignUp("alice@gmail.com", "squatter-password"), CLIENT)
    [squatter] = w["store"].users.values()
    now = w["clock"].now()
    async with FakeUnitOfWork(w["store"]) as uow:
        for purpose in ("email_change", "verify", "reset"):
            await uow.one_time_tokens.add(
                OneTimeToken(
                    id=uuid.uuid4(),
                    user_id=squatter.id,
                    purpose=purpose,
                    token_hash=f"{purpose}-hash",
                    created_at=now,
                    expires_at=now + timedelta(hours=1),
                    email="mallory@attacker.example",
                )
            )
    w["store"].mail_outbox.clear()
    queued = OutboxMail(
        id=uuid.uuid4(),
        user_id=squatter.id,
        purpose="email_change",
        address="mallory@attacker.example",
        created_at=now,
    )
    w["store"].mail_outbox[queued.id] = queued
    await sign_up(w, token(w, "owner"))
    assert all(t.used_at is not None for t in w["store"].one_time_tokens.values())
    assert w["store"].mail_outbox == {}
