"""What the request-head bound costs: /healthz throughput with uvicorn's stock httptools
protocol and with ``BoundedHttpToolsProtocol``, measured in the same run, alternating.

    .venv/bin/python -m bench.header_limit [--seconds 8] [--rounds 3] [--connections 64]
    .venv/bin/python -m bench.header_limit --micro

``--micro`` isolates the protocol: the same request (the headers below) is fed to
each protocol in-process, with a trivial ASGI app and a stand-in transport,
alternating 30 times; it prints the median time per request through each.

Both servers run the authgate app (one worker, uvloop, SQLite, throttling off) on the
same machine at the same time; wrk loads one at a time, A B A B..., so drift in the
machine's load (other jobs on a shared host) falls on both. Each request carries a
~900-byte Authorization header and a browser-sized User-Agent, so the per-header work
of the bound is exercised. Prints, per round and as medians, requests/s and the
server's CPU time per request (user + system, from /proc): on a shared machine the
CPU cost per request is the steadier figure, throughput swings with the neighbours.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

_SERVER = """
import sys, uvicorn
from authgate.web.http_protocol import BoundedHttpToolsProtocol
protocol = BoundedHttpToolsProtocol if sys.argv[1] == "bounded" else "httptools"
uvicorn.run(
    "authgate.web.app:create_app_from_env", factory=True, host="127.0.0.1",
    port=int(sys.argv[2]), loop="uvloop", http=protocol,
    h11_max_incomplete_event_size=32768, limit_concurrency=1024,
    log_level="warning", access_log=False, server_header=False,
)
"""

HEADERS = [
    "Authorization: Bearer " + "e" * 900,
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Accept: application/json",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(kind: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / kind}.db",
        "AUTHGATE_DATA_DIR": str(workdir / "data"),
        "RATE_LIMIT_ENABLED": "false",
        "ACCESS_LOG": "false",
        "LOG_LEVEL": "warning",
    }
    # The app's lifespan expects a migrated database, as `authgate serve` makes it.
    subprocess.run([sys.executable, "-m", "authgate", "migrate"], env=env, check=True, cwd=workdir)
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER, kind, str(port)], env=env, cwd=workdir
    )
    url = f"http://127.0.0.1:{port}/healthz"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{kind} server did not start")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(url: str, seconds: int, connections: int) -> tuple[float, int]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    command = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s"]
    for header in HEADERS:
        command += ["-H", header]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in", output)
    if rate is None or count is None or "Non-2xx" in output:
        raise SystemExit(f"unexpected wrk output:\n{output}")
    return float(rate.group(1)), int(count.group(1))


class _Transport(asyncio.Transport):
    """Accepts writes and counts them; the protocol needs nothing else of a socket."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0
        self.closing = False

    def write(self, data: Any) -> None:
        self.writes += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 3000)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _ok_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _through(protocol: type[asyncio.Protocol], request: bytes, count: int) -> float:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    config = Config(app=_ok_app, lifespan="off", log_level="warning", access_log=False)
    config.h11_max_incomplete_event_size = 32_768
    config.load()
    instance: Any = protocol(config=config, server_state=ServerState(), app_state={})  # type: ignore[call-arg]
    transport = _Transport()
    instance.connection_made(transport)
    started = time.perf_counter()
    for _ in range(count):
        instance.data_received(request)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - started
    if transport.writes < count:
        raise SystemExit(f"{protocol.__name__} answered {transport.writes} of {count}")
    instance.connection_lost(None)
    return elapsed / count * 1e6


def micro() -> None:
    import uvloop
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from authgate.web.http_protocol import BoundedHttpToolsProtocol

    request = (
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:3000\r\n" + "\r\n".join(HEADERS) + "\r\n\r\n"
    ).encode()
    kinds: dict[str, type[asyncio.Protocol]] = {
        "stock": HttpToolsProtocol,
        "bounded": BoundedHttpToolsProtocol,
    }

    async def run() -> dict[str, float]:
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        for round_ in range(30):
            for kind in list(kinds)[:: 1 if round_ % 2 else -1]:
                times[kind].append(await _through(kinds[kind], request, 2000))
        return {kind: statistics.median(values) for kind, values in times.items()}

    medians = uvloop.run(run())
    stock, bounded = medians["stock"], medians["bounded"]
    print(
        f"per request through the protocol: stock {stock:.2f} us, bounded {bounded:.2f} us "
        f"({bounded - stock:+.2f} us, {(bounded - stock) / stock * 100:+.1f}%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--micro", action="store_true", help="in-process protocol cost only")
    args = parser.parse_args()
    if args.micro:
        micro()
        return
    results: dict[str, list[float]] = {"stock": [], "bounded": []}
    cpu: dict[str, list[float]] = {"stock": [], "bounded": []}
    with tempfile.TemporaryDirectory() as tmp:
        servers = {kind: _start(kind, Path(tmp)) for kind in results}
        try:
            for _, url in servers.values():
                _wrk(url, 2, args.connections)  # warm-up
            for round_ in range(args.rounds):
                order = list(results) if round_ % 2 == 0 else list(reversed(results))
                for kind in order:
                    process, url = servers[kind]
                    before = _cpu_seconds(process.pid)
                    rate, count = _wrk(url, args.seconds, args.connections)
                    per_request = (_cpu_seconds(process.pid) - before) / count * 1e6
                    results[kind].append(rate)
                    cpu[kind].append(per_request)
                    print(
                        f"round {round_ + 1} {kind:>7}: {rate:8.0f} req/s, "
                        f"{per_request:6.1f} us CPU/request",
                        flush=True,
                    )
        finally:
            for process, _ in servers.values():
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=15)
    stock, bounded = (statistics.median(results[k]) for k in ("stock", "bounded"))
    stock_cpu, bounded_cpu = (statistics.median(cpu[k]) for k in ("stock", "bounded"))
    print(
        f"median stock {stock:.0f} req/s {stock_cpu:.1f} us CPU/request; "
        f"bounded {bounded:.0f} req/s {bounded_cpu:.1f} us CPU/request: "
        f"throughput {(bounded - stock) / stock * 100:+.1f}%, "
        f"CPU per request {(bounded_cpu - stock_cpu) / stock_cpu * 100:+.1f}%"
    )


if __name__ == "__main__":
    main()
