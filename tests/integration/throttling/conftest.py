"""Throttling against a real Redis.

Each test gets its own key prefix and deletes its keys afterwards. An unreachable
Redis skips these tests locally but FAILS them when CI=true (or
AUTHGATE_TEST_REQUIRE_REDIS=1): CI must never pass on a silent skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_required() -> bool:
    return (
        os.environ.get("CI", "").lower() == "true"
        or os.environ.get("AUTHGATE_TEST_REQUIRE_REDIS") == "1"
    )


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("AUTHGATE_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"Redis at {url} is unreachable: {type(exc).__name__}: {exc}"
        if redis_required():
            pytest.fail(f"{message} (CI=true: Redis tests are required)", pytrace=False)
        pytest.skip(message)
    finally:
        client.close()
    return url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    prefix = f"authgate-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    keys = list(redis_client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        redis_client.delete(*keys)
