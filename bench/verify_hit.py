"""What does a protected request pay to verify a token it has seen before? Measure it.

A client presents the same access token on every request for its lifetime, so the
verified-token cache hit is the guard's hot path. This times, in one process and
interleaved (so machine noise hits every path alike):

- ``seed``: the hit path of the former ``JwtAccessTokens.verify`` (reproduced below as
  it was before the guard switched to ``authgate.resource``): the reference;
- ``server``: ``authgate.resource.TokenVerifier`` as the server builds it
  (``access_token_verifier`` over ``KeyLookup``, the injected clock), awaited;
- ``kit``: ``TokenVerifier`` over ``StaticKeys`` with ``time.time``, as another service
  would use it;
- ``miss``: a full verification (signature and claims) by the server's verifier, for
  scale.

Prints the medians in microseconds and the ratios to ``seed``; writes them to
bench/results/.

    python -m bench.verify_hit [--rounds 15] [--calls 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

from authgate.bootstrap import trusted_keys_by_kid
from authgate.clock import FrozenClock
from authgate.crypto.access_token_verifier import access_token_verifier
from authgate.crypto.jwt_tokens import JwtAccessTokens
from authgate.crypto.keys import KeySet, generate_private_key, make_signing_key
from authgate.domain.models import User
from authgate.resource import StaticKeys, TokenVerifier, TrustedKey

ISSUER = "https://auth.example.test"
AUDIENCES = ("authgate",)
_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class SeedHitPath:
    """The cache-hit branch of the former ``JwtAccessTokens.verify``, line for line:
    length cap, shape regex, SHA-256, dict look-up, exp and nbf against a datetime."""

    def __init__(self, token: str, expires_at: datetime) -> None:
        self._leeway = timedelta(0)
        self._verified = {hashlib.sha256(token.encode()).digest(): (object(), None, expires_at)}

    def verify(self, token: str, *, now: datetime) -> object:
        if len(token) > 8192:
            raise ValueError("token too long")
        if _COMPACT.fullmatch(token) is None:
            raise ValueError("not a compact JWS")
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._verified.get(digest)
        if cached is None:
            raise ValueError("the reference only has a hit path")
        claims, not_before, expires_at = cached
        if now >= expires_at + self._leeway:
            raise ValueError("expired")
        if not_before is not None and now + self._leeway < not_before:
            raise ValueError("not yet valid (nbf)")
        return claims


def _user(now: datetime) -> User:
    return User(
        id=uuid4(),
        email="cow@cow.jp",
        email_key="cow@cow.jp",
        email_verified=True,
        given_name="Melvin",
        family_name="Friedman",
        display_name="",
        password_hash=None,
        created_at=now,
    )


async def _per_call_us(call: Callable[[], Awaitable[object]], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - started) / calls * 1e6


async def measure(algorithm: str, *, rounds: int, calls: int) -> dict[str, float]:
    key_set = KeySet(signing=make_signing_key(generate_private_key(algorithm), algorithm))
    now = datetime.now(UTC)
    clock = FrozenClock(now)
    issuer = JwtAccessTokens(key_set, issuer=ISSUER, audiences=AUDIENCES, ttl_seconds=900)
    token = issuer.issue(_user(now), session_id=uuid4(), now=now)

    seed = SeedHitPath(token, now + timedelta(seconds=900))
    server = access_token_verifier(
        trusted_keys_by_kid(key_set), issuer=ISSUER, audiences=AUDIENCES, clock=clock
    )
    signing = key_set.signing
    public = TrustedKey(kid=signing.kid, algorithm=algorithm, key=signing.verification.public_key)
    kit = TokenVerifier(StaticKeys([public]), issuer=ISSUER, audience=AUDIENCES)
    cold = access_token_verifier(
        trusted_keys_by_kid(key_set), issuer=ISSUER, audiences=AUDIENCES, clock=clock, cache_size=0
    )
    await server.verify(token)
    await kit.verify(token)

    async def seed_call() -> object:
        return seed.verify(token, now=clock.now())

    paths: dict[str, tuple[Callable[[], Awaitable[object]], int]] = {
        "seed": (seed_call, calls),
        "server": (lambda: server.verify(token), calls),
        "kit": (lambda: kit.verify(token), calls),
        "miss": (lambda: cold.verify(token), max(1, calls // 200)),
    }
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, (call, count) in paths.items():
            samples[name].append(await _per_call_us(call, count))
    medians = {f"{name}_us": round(statistics.median(v), 3) for name, v in samples.items()}
    medians["server_vs_seed"] = round(medians["server_us"] / medians["seed_us"], 2)
    medians["kit_vs_seed"] = round(medians["kit_us"] / medians["seed_us"], 2)
    medians["token_chars"] = len(token)
    return medians


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.verify_hit", description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--algorithm", default="RS256,ES256,EdDSA")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    figures = {
        algorithm: asyncio.run(measure(algorithm, rounds=args.rounds, calls=args.calls))
        for algorithm in args.algorithm.split(",")
    }
    result = {
        "measured_at": datetime.now(UTC).isoformat(),
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "median_us": figures,
    }
    print(json.dumps(figures, indent=2))
    if not args.no_write:
        out = Path(__file__).parent / "results" / f"{datetime.now(UTC):%Y-%m-%d}-verify-hit.json"
        history = json.loads(out.read_text()) if out.exists() else []
        out.write_text(json.dumps([*history, result], indent=2) + "\n")
        print("->", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
