"""An argon2 hasher whose thread jobs a test can see and hold, injected through
``authgate.bootstrap.Overrides(hasher=...)`` instead of patching the hasher."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from authgate.config import Settings
from authgate.crypto.passwords import Argon2Parameters, Argon2PasswordHasher

_T = TypeVar("_T")


class WatchedExecutor(ThreadPoolExecutor):
    """Records the arguments of every job (a verification's first one is the stored
    hash) and, inside :meth:`held`, makes each job wait at a gate before it runs."""

    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="argon2-watched")
        self.jobs: list[tuple[Any, ...]] = []
        self._holding = False
        self._gate = threading.Event()

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        self.jobs.append(args)
        if not self._holding:
            return super().submit(fn, *args, **kwargs)
        gate = self._gate

        def held() -> _T:
            gate.wait(timeout=30)
            return fn(*args, **kwargs)

        return super().submit(held)

    @property
    def verified(self) -> list[str]:
        """The stored hashes verified against so far (argon2 ``$argon2id$...`` strings)."""
        return [args[0] for args in self.jobs if args and str(args[0]).startswith("$argon2")]

    @contextmanager
    def held(self) -> Iterator[None]:
        """Jobs submitted in the block wait until it ends."""
        self._holding = True
        self._gate.clear()
        try:
            yield
        finally:
            self._holding = False
            self._gate.set()


@contextmanager
def watched_hasher(
    parameters: Argon2Parameters, *, workers: int = 2, max_pending: int = 128
) -> Iterator[tuple[Argon2PasswordHasher, WatchedExecutor]]:
    executor = WatchedExecutor(workers)
    hasher = Argon2PasswordHasher(parameters, max_pending=max_pending, executor=executor)
    try:
        yield hasher, executor
    finally:
        hasher.close()
        executor.shutdown(wait=False, cancel_futures=True)


def parameters_of(settings: Settings) -> Argon2Parameters:
    """The argon2 parameters ``settings`` ask for (the tests' cheap ones)."""
    return Argon2Parameters(
        time_cost=settings.password_hash_time_cost,
        memory_kib=settings.password_hash_memory_kib,
        parallelism=settings.password_hash_parallelism,
    )
