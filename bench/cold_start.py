"""How long does a fresh Lambda container take to answer its first request? Measure it.

Each run starts a fresh Python process (as Lambda starts a container) and times, in it:

- ``import``: ``from authgate.aws import handler`` (Lambda's init phase);
- ``first``: the first invocation, a ``GET /healthz`` HTTP API event through the real
  handler: settings, the app, its lifespan (engine, key ring from the database,
  hashing threads) and the request;
- ``warm``: a second invocation in the same process, for scale;
- ``authorizer``: ``from authgate.aws import authorizer`` in another fresh process;
- ``fastapi``: ``import fastapi`` alone in a fresh process, the yardstick: each figure
  is also printed as a ratio to it, measured in the same run (interleaved, so machine
  noise hits every figure alike).

Against MariaDB (Lambda refuses SQLite): a database ``authgate_cold_start`` on the
server of AUTHGATE_TEST_MARIADB_URL (default root@127.0.0.1:3306), created and
migrated first (dropped and created again each time), with one unmeasured run that
creates the key ring. Prints medians in seconds; writes them to bench/results/.

    python -m bench.cold_start [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DEFAULT_SERVER = "mysql+asyncmy://root@127.0.0.1:3306/authgate_test?charset=utf8mb4"

_HANDLER = """
import json, time
started = time.perf_counter()
from authgate.aws import handler
imported = time.perf_counter()
event = {
    "version": "2.0", "routeKey": "$default", "rawPath": "/healthz", "rawQueryString": "",
    "headers": {"host": "abc.execute-api.us-east-1.amazonaws.com"},
    "requestContext": {"http": {"method": "GET", "path": "/healthz", "protocol": "HTTP/1.1",
                                "sourceIp": "203.0.113.7"}, "stage": "$default"},
    "isBase64Encoded": False,
}
first = handler.handler(event, None)
answered = time.perf_counter()
second = handler.handler(event, None)
warm = time.perf_counter()
assert first["statusCode"] == second["statusCode"] == 200, first
print(json.dumps({"import": imported - started, "first": answered - imported,
                  "warm": warm - answered}))
"""
_IMPORT = """
import json, time
started = time.perf_counter()
import {module}
print(json.dumps({{"seconds": time.perf_counter() - started}}))
"""


def database_url() -> URL:
    server = make_url(os.environ.get("AUTHGATE_TEST_MARIADB_URL", DEFAULT_SERVER))
    return server.set(database="authgate_cold_start")


async def prepare(url: URL) -> None:
    from authgate.storage.migrate import upgrade_url

    server = create_async_engine(url.set(database=""))
    try:
        async with server.connect() as connection:
            # Fresh each time: the key ring it keeps is sealed under this run's secret.
            await connection.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
            await connection.execute(
                text(f"CREATE DATABASE `{url.database}` CHARACTER SET utf8mb4")
            )
    finally:
        await server.dispose()
    await upgrade_url(url)


def lambda_environment(url: URL, secret: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    environment.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "authgate-cold-start",
            "DATABASE_URL": url.render_as_string(hide_password=False),
            # The database ring's keys are sealed under it: one per database.
            "SECRET_KEY": secret,
            "JWT_ISSUER": "https://auth.example.test",
            "EMAIL_VERIFICATION": "off",
            "PASSWORD_RESET_ENABLED": "false",
            "LOG_LEVEL": "warning",
        }
    )
    return environment


def _child(code: str, environment: dict[str, str]) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=environment,
        cwd=ROOT,
    )
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def measure(runs: int, url: URL) -> dict[str, Any]:
    environment = lambda_environment(url, secrets.token_urlsafe(32))
    samples: dict[str, list[float]] = {
        "fastapi": [],
        "import": [],
        "first": [],
        "warm": [],
        "authorizer": [],
    }
    # Not measured: creates the key ring (as the first container after a deploy
    # would) and warms the file cache, so every measured run starts alike.
    _child(_HANDLER, environment)
    for _ in range(runs):
        # Interleaved: a noisy moment of the machine touches every figure.
        samples["fastapi"].append(_child(_IMPORT.format(module="fastapi"), environment)["seconds"])
        handler = _child(_HANDLER, environment)
        for name in ("import", "first", "warm"):
            samples[name].append(handler[name])
        authorizer = _child(_IMPORT.format(module="authgate.aws.authorizer"), environment)
        samples["authorizer"].append(authorizer["seconds"])
    medians = {name: statistics.median(values) for name, values in samples.items()}
    medians["cold_start"] = medians["import"] + medians["first"]
    return {"runs": runs, "median_seconds": medians}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    url = database_url()
    asyncio.run(prepare(url))
    result = measure(args.runs, url)
    medians = result["median_seconds"]
    yardstick = medians["fastapi"]
    print(f"median of {args.runs} fresh processes; ratio to `import fastapi` ({yardstick:.3f} s)")
    for name in ("import", "first", "cold_start", "warm", "authorizer", "fastapi"):
        print(f"  {name:<11} {medians[name]:8.3f} s  {medians[name] / yardstick:6.2f}x")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"cold-start-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
