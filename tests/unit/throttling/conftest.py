"""A memory-backed throttle on the shared frozen clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from authgate.clock import FrozenClock
from authgate.throttling import CounterThrottle, build_throttle
from tests.support.server_secrets import THROTTLE_KEY


@pytest.fixture
async def throttle(clock: FrozenClock) -> AsyncIterator[CounterThrottle]:
    throttle = build_throttle("memory://", clock=clock, hmac_key=THROTTLE_KEY)
    yield throttle
    await throttle.close()
