"""argon2id password hashing, run off the event loop.

argon2-cffi releases the GIL while hashing, so a small dedicated thread pool (one
thread per core by default) uses every core while the event loop keeps serving
token verification, refreshes and JWKS.

Imported seed hashes are stored wrapped in argon2id (:mod:`.legacy_hashes`);
:meth:`Argon2PasswordHasher.verify` checks them the same way, off the event loop.
"""

from __future__ import annotations

import asyncio
import os
import unicodedata
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from authgate.crypto.legacy_hashes import LegacyHash, WrappedHash, is_wrapped, parse_wrapped
from authgate.domain.observations import NO_OBSERVER, Observer
from authgate.errors import Unavailable

_R = TypeVar("_R")


@dataclass(frozen=True)
class Argon2Parameters:
    # OWASP Password Storage Cheat Sheet, argon2id option 2: m=19 MiB, t=2, p=1.
    time_cost: int = 2
    memory_kib: int = 19_456
    parallelism: int = 1


def normalize_password(password: str) -> str:
    """NFKC, so the same passphrase typed on two keyboards (composed or decomposed
    accents, full-width digits) is one password. Never trimmed, never truncated."""
    return unicodedata.normalize("NFKC", password)


class Argon2PasswordHasher:
    def __init__(
        self,
        parameters: Argon2Parameters,
        *,
        workers: int = 0,
        max_pending: int = 128,
        executor: Executor | None = None,
        observer: Observer = NO_OBSERVER,
    ) -> None:
        """``executor`` runs the hashing jobs (default: ``workers`` threads of our
        own); a given one is the caller's to shut down."""
        self.parameters = parameters
        self._observer = observer
        # Hashing is the one CPU-bound step a stranger can trigger. Past this many
        # queued or running jobs a request is refused at once (503) instead of
        # waiting seconds: latency stays bounded and the event loop keeps serving
        # refreshes, token checks and JWKS.
        self._max_pending = max_pending
        self._pending = 0
        self._hasher = _Argon2(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_kib,
            parallelism=parameters.parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=workers or os.cpu_count() or 1, thread_name_prefix="argon2"
        )
        # Hashed once, so an unknown email costs exactly one verification too.
        self._dummy_hash = self._hasher.hash("authgate dummy password, never matches")

    @property
    def pending(self) -> int:
        return self._pending

    async def _run(self, function: Callable[..., _R], *args: Any) -> _R:
        # One event loop per process: the counter needs no lock.
        if self._pending >= self._max_pending:
            raise Unavailable(
                "The server is busy; try again shortly.",
                detail_for_log=f"password hashing queue full ({self._max_pending})",
            )
        self._pending += 1
        self._observer.hashing_pending(self._pending)
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, function, *args)
        finally:
            self._pending -= 1
            self._observer.hashing_pending(self._pending)

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, normalize_password(password))

    async def verify(self, password_hash: str, password: str) -> bool:
        if is_wrapped(password_hash):
            return await self._verify_wrapped(password_hash, password)
        return await self._run(self._verify_sync, password_hash, normalize_password(password))

    async def wrap_legacy(self, legacy: LegacyHash) -> str:
        """An imported hash's stored form: argon2id over the legacy value (see
        :mod:`authgate.crypto.legacy_hashes`). The legacy value itself is never stored."""
        encoded = await self._run(self._hasher.hash, legacy.secret)
        return legacy.wrapped(encoded)

    async def _verify_wrapped(self, password_hash: str, password: str) -> bool:
        wrapped = parse_wrapped(password_hash)
        if wrapped is None:
            # A damaged wrapper: refused after the same argon2 work as any account.
            await self.verify_dummy(password)
            return False
        return await self._run(self._verify_wrapped_sync, wrapped, password)

    async def verify_dummy(self, password: str) -> None:
        await self._run(self._verify_sync, self._dummy_hash, normalize_password(password))

    def needs_rehash(self, password_hash: str) -> bool:
        if is_wrapped(password_hash):
            return True  # an imported hash: upgraded to plain argon2id at its first sign-in
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return True

    def _verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _verify_wrapped_sync(self, wrapped: WrappedHash, password: str) -> bool:
        # One thread job: the legacy step (SHA3, or bcrypt at the seed's cost) on the
        # password as typed, then the same argon2id verification every account costs.
        try:
            secret = wrapped.legacy_secret(password)
        except ValueError:
            secret = ""  # bcrypt refused the input: still spend the argon2 work
        return self._verify_sync(wrapped.argon2_encoded, secret) and secret != ""

    def close(self) -> None:
        if self._owns_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)
