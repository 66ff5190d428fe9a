"""Counters in Redis: shared by throttles and by processes, keys that reveal nothing."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable

import pytest
import redis

from authgate.clock import FrozenClock
from authgate.errors import TooManyRequests
from authgate.server_secret import ServerSecret
from authgate.throttling import AuthThrottles, CounterThrottle, RateLimit, build_throttle
from tests.support.server_secrets import THROTTLE_KEY

LIMIT = RateLimit(amount=25, window_seconds=60)
EMAIL = "melvin.friedman@example.com"

MakeThrottle = Callable[[], CounterThrottle]


@pytest.fixture
async def make_throttle(
    redis_url: str, prefix: str, clock: FrozenClock
) -> AsyncIterator[MakeThrottle]:
    made: list[CounterThrottle] = []

    def make() -> CounterThrottle:
        made.append(build_throttle(redis_url, clock=clock, hmac_key=THROTTLE_KEY, prefix=prefix))
        return made[-1]

    yield make
    for throttle in made:
        await throttle.close()


async def test_two_throttles_share_one_count(make_throttle: MakeThrottle) -> None:
    first, second = make_throttle(), make_throttle()
    decisions = []
    for _ in range(15):
        decisions.append(await first.hit("test", "k", LIMIT))
        decisions.append(await second.hit("test", "k", LIMIT))

    assert sum(d.allowed for d in decisions) == LIMIT.amount
    assert not (await first.hit("test", "k", LIMIT)).allowed


async def test_concurrent_hits_never_overshoot(make_throttle: MakeThrottle) -> None:
    throttles = [make_throttle() for _ in range(4)]
    decisions = await asyncio.gather(
        *(t.hit("test", "k", LIMIT) for t in throttles for _ in range(20))
    )
    assert sum(d.allowed for d in decisions) == LIMIT.amount


# Run in a fresh interpreter: waits for "go" on stdin so both processes start
# hitting together, then prints how many of its hits were allowed.
_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import datetime
    from authgate.clock import FrozenClock
    from authgate.throttling import RateLimit, build_throttle

    async def main(url, prefix, start, hits, key):
        clock = FrozenClock(datetime.fromisoformat(start))
        throttle = build_throttle(url, clock=clock, hmac_key=bytes.fromhex(key), prefix=prefix)
        limit = RateLimit(amount=25, window_seconds=60)
        try:
            await throttle.reset("warm-up", "k", limit)  # connect before the start signal
            print("ready", flush=True)
            sys.stdin.readline()
            allowed = 0
            for _ in range(int(hits)):
                allowed += (await throttle.hit("test", "k", limit)).allowed
            print(allowed, flush=True)
        finally:
            await throttle.close()

    asyncio.run(main(*sys.argv[1:]))
    """
)


def test_two_processes_share_one_count(redis_url: str, prefix: str, clock: FrozenClock) -> None:
    args = [sys.executable, "-c", _WORKER, redis_url, prefix, clock.now().isoformat(), "40"]
    args.append(THROTTLE_KEY.hex())
    workers = [
        subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=30)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert [w.returncode for w in workers] == [0, 0]
    allowed = [int(out.strip()) for out in outputs]
    assert sum(allowed) == LIMIT.amount, allowed


async def test_keys_are_prefixed_hashed_and_expire(
    make_throttle: MakeThrottle, redis_client: redis.Redis, prefix: str
) -> None:
    throttles = AuthThrottles(throttle=make_throttle())
    await throttles.begin_attempt(EMAIL)
    await throttles.check_ip("auth", "192.0.2.1")

    keys = sorted(redis_client.scan_iter(match=f"{prefix}:*"))
    assert len(keys) == 2
    for key in keys:
        assert "melvin" not in key
        assert "192.0.2" not in key
        assert len(key) < 100
        ttl = int(redis_client.ttl(key))  # type: ignore[arg-type]  # sync client
        assert 0 < ttl <= 2 * 900


async def test_account_lock_releases_after_the_window(
    make_throttle: MakeThrottle, clock: FrozenClock
) -> None:
    throttles = AuthThrottles(
        throttle=make_throttle(), failures_per_account=RateLimit(amount=2, window_seconds=900)
    )
    for _ in range(2):
        await throttles.begin_attempt(EMAIL)
    with pytest.raises(TooManyRequests) as caught:
        await throttles.begin_attempt(EMAIL)
    assert caught.value.retry_after_seconds == 900

    clock.advance(900)
    await throttles.begin_attempt(EMAIL)


async def test_keys_are_an_hmac_under_the_server_secret(
    redis_url: str, redis_client: redis.Redis, prefix: str, clock: FrozenClock
) -> None:
    """A stolen Redis key reveals nothing: not sha256(email), and only instances
    sharing the server secret derive the same key."""
    other_secret = ServerSecret(secrets.token_urlsafe(32).encode())

    async def account_key(hmac_key: bytes) -> str:
        throttle = build_throttle(redis_url, clock=clock, hmac_key=hmac_key, prefix=prefix)
        try:
            await AuthThrottles(throttle=throttle).begin_attempt(EMAIL)
        finally:
            await throttle.close()
        keys = sorted(redis_client.scan_iter(match=f"{prefix}:*"))
        redis_client.delete(*keys)
        (key,) = keys
        return str(key)

    first, again = await account_key(THROTTLE_KEY), await account_key(THROTTLE_KEY)
    other = await account_key(other_secret.throttle_key())
    plain = hashlib.sha256(EMAIL.encode()).hexdigest()
    digest = first.split("account-failures:")[1].split(":")[0]
    assert len(digest) == 32
    assert digest not in plain
    assert first == again  # stable for one secret: instances share their counts
    assert other != first
