"""``build_throttle``: a ``CounterThrottle`` from a storage URL (RATE_LIMIT_STORAGE_URL).

``memory://`` keeps counters in this process: fine for one worker, but each of
several workers (or servers) would count separately and allow N times the limit.
``redis://host:port/db`` (or ``rediss://``) shares them through Redis, using the
redis-py asyncio client (``limits``' default async client, coredis, is not a
dependency of authgate).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import SplitResult, urlsplit

from authgate.clock import Clock
from authgate.throttling.counter import CounterThrottle
from authgate.throttling.memory_store import MemoryCounterStore

_SETTING = "RATE_LIMIT_STORAGE_URL"
_EXPECTED = "'memory://' or 'redis://host:port/db' (or 'rediss://' for TLS)"
_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_DB_PATH = re.compile(r"/?(\d+)?")


def build_throttle(
    url: str,
    *,
    clock: Clock,
    hmac_key: bytes,
    prefix: str = "authgate",
    timeout_seconds: float = 1.0,
) -> CounterThrottle:
    """Build the throttle for ``url``; no connection is made until the first check.

    ``hmac_key`` (the server secret's throttle key) turns each counted email or
    address into its store key; instances sharing counters must share it.

    ``prefix`` starts every Redis key, so several deployments can share a server.
    ``timeout_seconds`` bounds each Redis connect and command: a hung Redis must
    turn into a quick, documented failure rather than a hung sign-in.
    """
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"throttle key prefix {prefix!r} must match {_PREFIX.pattern}")
    parts = urlsplit(url)
    if parts.scheme == "memory" and not (parts.netloc or parts.path.strip("/") or parts.query):
        return _memory_throttle(clock, hmac_key)
    if parts.scheme in ("redis", "rediss"):
        return _redis_throttle(
            url, parts, clock=clock, hmac_key=hmac_key, prefix=prefix, timeout=timeout_seconds
        )
    raise ValueError(f"{_SETTING} must be {_EXPECTED}, got {_redacted(parts)!r}")


def _memory_throttle(clock: Clock, hmac_key: bytes) -> CounterThrottle:
    # Not limits' MemoryStorage: it scans every key on each hit (see memory_store).
    return CounterThrottle(MemoryCounterStore(), clock=clock, hmac_key=hmac_key)


def _redis_throttle(
    url: str, parts: SplitResult, *, clock: Clock, hmac_key: bytes, prefix: str, timeout: float
) -> CounterThrottle:
    # Imported here: redis-py and limits' storage cost ~0.2 s of a cold start
    # (authgate.aws.handler), which memory:// does not need.
    from limits.aio.storage import RedisStorage
    from redis.asyncio import ConnectionPool

    problem = _redis_url_problem(parts)
    if problem is not None:
        raise ValueError(f"{_SETTING} {problem}: expected {_EXPECTED}, got {_redacted(parts)!r}")
    try:
        # Our own pool (rather than letting limits build the client) so close() can
        # disconnect it: redis-py warns about connections left open at exit.
        pool = ConnectionPool.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    except ValueError as exc:
        raise ValueError(f"{_SETTING} is not usable ({exc}): got {_redacted(parts)!r}") from None
    # limits types its pass-through options as scalars; the pool is documented as
    # accepted ("connection_pool") and handed to redis.asyncio.Redis unchanged.
    pool_option: dict[str, Any] = {"connection_pool": pool}
    storage = RedisStorage(
        f"async+{url}",
        implementation="redispy",
        key_prefix=prefix,
        wrap_exceptions=True,
        **pool_option,
    )
    return CounterThrottle(storage, clock=clock, hmac_key=hmac_key, close=pool.aclose)


def _redis_url_problem(parts: SplitResult) -> str | None:
    if not parts.hostname:
        return "has no host"
    try:
        _ = parts.port  # urlsplit checks the port only when it is read
    except ValueError:
        return "has an invalid port"
    if not _DB_PATH.fullmatch(parts.path):
        return "must name the database as a number (/0, /1...)"
    return None


def _redacted(parts: SplitResult) -> str:
    """The URL without its password: error messages end up in logs."""
    if parts.password is None:
        return parts.geturl()
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
