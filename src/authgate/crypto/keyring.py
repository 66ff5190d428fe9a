"""The ring the server signs and verifies with, as one replaceable snapshot.

:class:`KeyRing` is what the issuer, the verifiers and the JWKS route read on every
call: a :class:`~authgate.crypto.keys.KeySet` (the current key that signs, the next
and previous keys that only verify, the JWKS body), swapped whole by one assignment,
so a reader sees either the old ring or the new one, never a mix.

Two sources:

* static: ``JWT_PRIVATE_KEY_PATH`` (+ ``JWT_PUBLIC_KEY_PATH``) is the current key and
  ``JWT_PREVIOUS_PUBLIC_KEY_PATHS`` the previous ones; it never changes while we run;
* database: the ``signing_keys`` rows, private keys sealed under the server secret
  (crypto.key_encryption), re-read every ``KEY_RING_REFRESH_SECONDS`` by
  :class:`KeyRingRefresher` so every instance sees a rotation without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import jwt

from authgate.crypto.key_encryption import PrivateKeySealer
from authgate.crypto.keys import (
    KeyError_,
    KeySet,
    SigningKey,
    VerificationKey,
    make_verification_key,
)
from authgate.domain.signing_keys import (
    PUBLISHED_STATES,
    KeyRingUnitOfWork,
    KeyState,
    SigningKeyRecord,
)
from authgate.errors import Unavailable
from authgate.resource.keys import TrustedKey

logger = logging.getLogger(__name__)


_NO_KEYS = b'{"keys":[]}'


class KeyRing:
    """The current snapshot of the ring; ``replace`` swaps it.

    Empty only when a server starts while its database cannot be read: then nothing
    is signed (503) or verified (401) until the refresher loads the ring."""

    def __init__(self, key_set: KeySet | None, *, static: bool = False) -> None:
        self._key_set = key_set
        self.static = static

    @property
    def key_set(self) -> KeySet | None:
        return self._key_set

    def replace(self, key_set: KeySet) -> None:
        self._key_set = key_set

    def signing(self) -> SigningKey:
        """The current key; :class:`Unavailable` while the ring is not loaded."""
        key_set = self._key_set
        if key_set is None:
            raise Unavailable(detail_for_log="the signing-key ring is not loaded yet")
        return key_set.signing

    def verification_key(self, kid: str) -> VerificationKey | None:
        key_set = self._key_set
        return key_set.by_kid.get(kid) if key_set is not None else None

    @property
    def jwks_body(self) -> bytes:
        key_set = self._key_set
        return key_set.jwks_body if key_set is not None else _NO_KEYS

    def trusted_keys(self, kid: str) -> tuple[TrustedKey, ...]:
        """The published key named ``kid`` (for ``authgate.resource.KeyLookup``), or ()."""
        key_set = self._key_set
        return key_set.trusted.get(kid, ()) if key_set is not None else ()


class EmptyRing(KeyError_):
    """The database holds no current key (run ``authgate keys rotate``, or start once)."""


def _verification_key(record: SigningKeyRecord) -> VerificationKey:
    public_key: Any = jwt.PyJWK(dict(record.public_jwk), algorithm=record.algorithm).key
    key = make_verification_key(public_key, record.algorithm)
    # The kid is the thumbprint: a row whose JWK was edited no longer matches its kid.
    if key.kid != record.kid:
        raise KeyError_(f"signing key {record.kid}: its public JWK is another key")
    return key


class RingLoader:
    """Builds the ring from the database, parsing and decrypting each key only once."""

    def __init__(self, uow: Callable[[], KeyRingUnitOfWork], sealer: PrivateKeySealer) -> None:
        self._uow = uow
        self._sealer = sealer
        self._signing: dict[str, SigningKey] = {}
        self._verification: dict[str, VerificationKey] = {}
        self._last: tuple[tuple[str, str], ...] | None = None
        self._last_set: KeySet | None = None

    async def load(self) -> KeySet:
        async with self._uow() as uow:
            records = await uow.signing_keys.list_keys(PUBLISHED_STATES)
        shape = tuple(sorted((record.kid, record.state.value) for record in records))
        if shape == self._last and self._last_set is not None:
            return self._last_set
        # Off the event loop: opening an RSA private key checks it (~40 ms), which
        # would stall every request of this worker once per rotation.
        key_set = await asyncio.to_thread(self._build, records)
        self._last, self._last_set = shape, key_set
        return key_set

    def _build(self, records: list[SigningKeyRecord]) -> KeySet:
        current = [record for record in records if record.state is KeyState.CURRENT]
        if not current:
            raise EmptyRing("the signing-key ring has no current key")
        # Two current keys cannot happen under the ring lock; if a hand edit made
        # them, the newest signs and the other still verifies.
        signer_record = max(current, key=lambda r: (r.activated_at or r.created_at, r.kid))
        signing = self._signing.get(signer_record.kid)
        if signing is None:
            if signer_record.sealed_private_key is None:
                raise KeyError_(f"signing key {signer_record.kid}: no private key stored")
            signing = self._sealer.open(
                signer_record.sealed_private_key,
                kid=signer_record.kid,
                algorithm=signer_record.algorithm,
            )
            self._signing = {signer_record.kid: signing}
        extra: list[VerificationKey] = []
        # Current first in the JWKS, then next, then previous (newest first).
        order = {KeyState.NEXT: 0, KeyState.CURRENT: 1, KeyState.PREVIOUS: 2}
        for record in sorted(records, key=lambda r: (order[r.state], -r.created_at.timestamp())):
            if record.kid == signing.kid:
                continue
            key = self._verification.get(record.kid)
            if key is None:
                key = _verification_key(record)
            extra.append(key)
        self._verification = {key.kid: key for key in extra}
        return KeySet(signing=signing, extra_verification=tuple(extra))


class KeyRingRefresher:
    """Re-reads the ring every ``interval_seconds`` and runs the scheduled step.

    A failure (database away, a key that does not decrypt) keeps the last good ring
    and is logged; it never ends the task, which would leave the ring frozen."""

    def __init__(
        self,
        ring: KeyRing,
        loader: RingLoader,
        *,
        interval_seconds: float,
        scheduled: Callable[[], Awaitable[object]] | None = None,
        ensure: Callable[[], Awaitable[object]] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._ring = ring
        self._loader = loader
        self._interval = interval_seconds
        self._scheduled = scheduled
        self._ensure = ensure
        self._sleep = sleep

    async def run_forever(self) -> None:
        while True:
            await self._sleep(self._interval)
            await self.run_once()

    async def run_once(self) -> bool:
        """One scheduled step and one refresh; True if the ring was refreshed."""
        if self._ring.key_set is None and self._ensure is not None:
            # Started while the database was away: the ring may not even exist yet.
            try:
                await self._ensure()
            except Exception as exc:
                self._log("creating the signing-key ring failed; retrying", exc)
                return False
        if self._scheduled is not None:
            try:
                await self._scheduled()
            except Exception as exc:
                self._log("scheduled key rotation failed", exc)
        try:
            key_set = await self._loader.load()
        except Exception as exc:
            self._log("refreshing the signing-key ring failed; keeping the last one", exc)
            return False
        if key_set is not self._ring.key_set:
            before = self._ring.key_set
            self._ring.replace(key_set)
            if before is None or key_set.signing.kid != before.signing.kid:
                logger.info(
                    "signing with %s key kid=%s (was %s)",
                    key_set.signing.algorithm,
                    key_set.signing.kid,
                    before.signing.kid if before is not None else "none",
                )
        return True

    @staticmethod
    def _log(message: str, exc: Exception) -> None:
        if isinstance(exc, Unavailable):
            logger.error("%s: %s", message, exc.detail_for_log or exc.message)
        elif isinstance(exc, KeyError_):
            logger.error("%s: %s", message, exc)
        else:
            logger.exception(message)
