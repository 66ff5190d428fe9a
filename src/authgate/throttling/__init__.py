"""Throttling of the auth routes: per client address and per target account.

``build_throttle(url, clock=..., hmac_key=...)`` makes the counter store (memory or
Redis);
``AuthThrottles`` applies the policy and raises ``TooManyRequests``.
"""

from authgate.throttling.auth import (
    DEFAULT_AUTH_PER_IP,
    DEFAULT_FAILURES_PER_ACCOUNT,
    DEFAULT_REFRESH_PER_IP,
    DEFAULT_SIGNUP_PER_IP,
    AuthThrottles,
    IpScope,
    client_key,
)
from authgate.throttling.counter import CounterThrottle
from authgate.throttling.ports import Throttle, ThrottleStoreUnavailable
from authgate.throttling.rate import Decision, RateLimit
from authgate.throttling.storage import build_throttle

__all__ = [
    "DEFAULT_AUTH_PER_IP",
    "DEFAULT_FAILURES_PER_ACCOUNT",
    "DEFAULT_REFRESH_PER_IP",
    "DEFAULT_SIGNUP_PER_IP",
    "AuthThrottles",
    "CounterThrottle",
    "Decision",
    "IpScope",
    "RateLimit",
    "Throttle",
    "ThrottleStoreUnavailable",
    "build_throttle",
    "client_key",
]
