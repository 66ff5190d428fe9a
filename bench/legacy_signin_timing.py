"""What does an imported (wrapped) password cost at sign-in? Measure it.

Runs the app in process with the production argon2 parameters on a temporary SQLite
database, with a plain account (signed up) and two imported ones whose hashes are
wrapped as ``authgate import`` wraps them: bcrypt cost 10 (TimeLapseMe seed) and
SHA3-512 (serverless seed). Times, interleaved, sign-ins with a wrong password for
each (what a guesser sees while the account is not yet upgraded) and with the right
password (the first, upgrading sign-in of an imported account: the hash is put back
before each attempt). Prints the medians; writes them to bench/results/.

    python -m bench.legacy_signin_timing [--attempts 30]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import bcrypt
import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from authgate.config import load_settings
from authgate.crypto.keys import write_key_pair
from authgate.crypto.legacy_hashes import bcrypt_legacy, sha3_legacy
from authgate.crypto.passwords import Argon2Parameters, Argon2PasswordHasher
from authgate.storage.migrate import upgrade_url
from authgate.storage.tables import users
from authgate.web.app import create_app

PRODUCTION = Argon2Parameters()
PASSWORD = "Moo00!_*&xQ"  # noqa: S105 (a benchmark account)
ACCOUNTS = {"plain": "plain@cow.jp", "bcrypt": "bcrypt@cow.jp", "sha3": "sha3@cow.jp"}


async def wrapped_hashes() -> dict[str, str]:
    hasher = Argon2PasswordHasher(PRODUCTION, workers=1)
    try:
        node_bcrypt = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()
        sha3 = hashlib.sha3_512(PASSWORD.encode()).hexdigest()
        return {
            "bcrypt": await hasher.wrap_legacy(bcrypt_legacy(node_bcrypt)),
            "sha3": await hasher.wrap_legacy(sha3_legacy(sha3)),
        }
    finally:
        hasher.close()


async def measure(attempts: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        private, public = write_key_pair(root / "keys", "ES256")
        settings = load_settings(
            database_url=f"sqlite+aiosqlite:///{root / 'timing.db'}",
            jwt_private_key_path=private,
            jwt_public_key_path=public,
            jwt_algorithm="ES256",
            rate_limit_enabled=False,
            password_hash_time_cost=PRODUCTION.time_cost,
            password_hash_memory_kib=PRODUCTION.memory_kib,
            password_hash_parallelism=PRODUCTION.parallelism,
        )
        url = settings.effective_database_url
        await upgrade_url(url)
        wrapped = await wrapped_hashes()
        engine = create_async_engine(url)

        async def put_back(kind: str) -> None:
            async with engine.begin() as connection:
                await connection.execute(
                    update(users)
                    .where(users.c.email == ACCOUNTS[kind])
                    .values(password_hash=wrapped[kind])
                )

        app = create_app(settings)
        timings: dict[str, list[float]] = {}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                for email in ACCOUNTS.values():
                    body = {"email": email, "password": PASSWORD, "passwordConfirm": PASSWORD}
                    (await http.post("/api/v1/signup/credentials", json=body)).raise_for_status()
                for i in range(attempts + 2):
                    for kind in ACCOUNTS:
                        for outcome, password in (("wrong", "not-it"), ("right", PASSWORD)):
                            if kind != "plain":
                                await put_back(kind)
                            started = time.perf_counter()
                            response = await http.post(
                                "/api/v1/auth/credentials",
                                json={"email": ACCOUNTS[kind], "password": password},
                            )
                            elapsed = time.perf_counter() - started
                            expected = 200 if outcome == "right" else 401
                            assert response.status_code == expected, response.text
                            if i >= 2:  # warm-up
                                timings.setdefault(f"{kind}_{outcome}", []).append(elapsed)
        await engine.dispose()
    return {
        "measured_at": datetime.now(UTC).isoformat(),
        "attempts_each": attempts,
        "argon2": f"m={PRODUCTION.memory_kib} KiB, t={PRODUCTION.time_cost}, "
        f"p={PRODUCTION.parallelism}",
        "median_ms": {k: round(statistics.median(v) * 1000, 1) for k, v in timings.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--attempts", type=int, default=30, help="per account and outcome")
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.attempts))
    out = Path(__file__).parent / "results" / f"{datetime.now(UTC):%Y-%m-%d}-legacy-signin.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["median_ms"]), "->", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
