"""Does a failed sign-in reveal whether the account exists? Measure it.

Runs the app in process with the production argon2 parameters on a temporary
SQLite database and times, interleaved, N sign-ins with a wrong password for a real
account and N sign-ins for an unknown email. Reports both medians and their
relative difference; exits 1 if it is 10 % or more.

    python -m bench.signin_timing [--attempts 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from authgate.config import load_settings
from authgate.crypto.keys import write_key_pair
from authgate.crypto.passwords import Argon2Parameters
from authgate.storage.migrate import upgrade_url
from authgate.web.app import create_app

THRESHOLD = 0.10
PRODUCTION = Argon2Parameters()


async def measure(attempts: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        private, public = write_key_pair(root / "keys", "ES256")
        settings = load_settings(
            database_url=f"sqlite+aiosqlite:///{root / 'timing.db'}",
            jwt_private_key_path=private,
            jwt_public_key_path=public,
            jwt_algorithm="ES256",
            rate_limit_enabled=False,  # we are the attacker here, on purpose
            # The production parameters, whatever a .env in the working directory says.
            password_hash_time_cost=PRODUCTION.time_cost,
            password_hash_memory_kib=PRODUCTION.memory_kib,
            password_hash_parallelism=PRODUCTION.parallelism,
        )
        await upgrade_url(settings.effective_database_url)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                signup = await http.post(
                    "/register", json={"email": "real@cow.jp", "password": "Moo00!_*&xQ"}
                )
                signup.raise_for_status()
                timings: dict[str, list[float]] = {"wrong_password": [], "unknown_email": []}
                for i in range(attempts * 2 + 4):
                    kind = "wrong_password" if i % 2 == 0 else "unknown_email"
                    email = "real@cow.jp" if kind == "wrong_password" else f"ghost{i}@cow.jp"
                    started = time.perf_counter()
                    response = await http.post(
                        "/login", json={"email": email, "password": "not-the-password"}
                    )
                    elapsed = time.perf_counter() - started
                    assert response.status_code == 401, response.text
                    if i >= 4:  # the first two of each warm caches and thread pools
                        timings[kind].append(elapsed)
    medians = {kind: statistics.median(values) for kind, values in timings.items()}
    difference = abs(medians["wrong_password"] - medians["unknown_email"]) / max(medians.values())
    return {
        "measured_at": datetime.now(UTC).isoformat(),
        "attempts_each": attempts,
        "argon2": (
            f"m={settings.password_hash_memory_kib} KiB, t={settings.password_hash_time_cost}, "
            f"p={settings.password_hash_parallelism}"
        ),
        "median_ms": {kind: round(value * 1000, 3) for kind, value in medians.items()},
        "relative_difference": round(difference, 4),
        "threshold": THRESHOLD,
        "passed": difference < THRESHOLD,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--attempts", type=int, default=40, help="per kind (>= 30)")
    args = parser.parse_args(argv)
    if args.attempts < 30:
        parser.error("--attempts must be at least 30")
    result = asyncio.run(measure(args.attempts))
    out = Path(__file__).parent / "results" / f"{datetime.now(UTC):%Y-%m-%d}-signin-timing.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    medians = result["median_ms"]
    assert isinstance(medians, dict)
    print(
        f"wrong password: median {medians['wrong_password']} ms; "
        f"unknown email: median {medians['unknown_email']} ms; "
        f"difference {float(str(result['relative_difference'])) * 100:.1f} % "
        f"(threshold {THRESHOLD * 100:.0f} %) over {args.attempts} attempts each -> {out}"
    )
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
