"""Request heads are bounded in the real server: 431, quickly, and memory stays flat."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.server import RunningServer, running_server

pytestmark = pytest.mark.e2e

MAX_CONNECTIONS = 300


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    workdir: Path = tmp_path_factory.mktemp("header-limit")
    with running_server(
        workdir, MAX_CONNECTIONS_PER_WORKER=str(MAX_CONNECTIONS), ACCESS_LOG="false"
    ) as running:
        yield running


def _address(server: RunningServer) -> tuple[str, int]:
    parts = urlsplit(server.base_url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


def _send_big_head(
    server: RunningServer, size: int, *, chunk: int = 65_536, pause: float = 0.0
) -> bytes:
    """Send a request whose one header is ``size`` bytes; return what the server answered."""
    with socket.create_connection(_address(server), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: authgate.test\r\nX-Big: ")
        try:
            for _ in range(0, size, chunk):
                sock.sendall(b"a" * chunk)
                if pause:
                    time.sleep(pause)
            sock.sendall(b"\r\n\r\n")
        except OSError:
            pass  # the server answered and closed while we were still sending
        received = b""
        try:
            while piece := sock.recv(65_536):
                received += piece
        except OSError:
            pass
        return received


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_1mb_header_gets_431_quickly(server: RunningServer) -> None:
    started = time.monotonic()
    answer = _send_big_head(server, 1 << 20)
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    assert b"application/problem+json" in answer
    assert b'"code": "header_too_large"' in answer
    assert b"connection: close" in answer.lower()
    assert elapsed < 5  # measured: milliseconds
    assert "refused a request head" in server.log()


def test_normal_and_large_but_allowed_heads_still_work(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        assert http.get("/healthz").status_code == 200
        # 30,000 bytes of header: under the 32 KiB default.
        assert http.get("/healthz", headers={"x-big": "a" * 30_000}).status_code == 200
        refused = http.get("/healthz", headers={"x-big": "a" * 33_000})
        assert refused.status_code == 431
        assert refused.json()["code"] == "header_too_large"
        # Many small headers count as much as one large one.
        many = {f"x-h{i}": "b" * 100 for i in range(400)}
        assert http.get("/healthz", headers=many).status_code == 431
    with httpx.Client(base_url=server.base_url, timeout=10) as http:
        assert http.get("/healthz").status_code == 200


def test_slow_large_headers_do_not_grow_memory(server: RunningServer) -> None:
    """Five clients each trickle an 8 MB header. Unbounded, the server held all of
    it (and copied each piece onto the last); bounded, each is cut at 32 KiB."""
    pid = server.process.pid
    baseline = _rss_bytes(pid)
    peak = baseline
    answers: list[bytes] = []
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes(pid))
            time.sleep(0.01)

    def attack() -> None:
        answers.append(_send_big_head(server, 8 << 20, chunk=16_384, pause=0.002))

    sampler = threading.Thread(target=sample)
    sampler.start()
    attackers = [threading.Thread(target=attack) for _ in range(5)]
    try:
        for thread in attackers:
            thread.start()
        for thread in attackers:
            thread.join(timeout=120)
    finally:
        done.set()
        sampler.join()
    assert len(answers) == 5
    assert all(answer.startswith(b"HTTP/1.1 431 ") for answer in answers), answers
    # 5 x 8 MB would be 40 MB held; allow generous noise for the allocator.
    assert peak - baseline < 16 << 20, (baseline, peak)
    assert httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 200


async def _get_on(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: authgate.test\r\n\r\n")
    await writer.drain()
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


def test_256_open_connections_never_see_the_concurrency_503(server: RunningServer) -> None:
    host, port = _address(server)

    async def run() -> tuple[list[int], int]:
        connections = await asyncio.gather(
            *(asyncio.open_connection(host, port) for _ in range(256))
        )
        try:
            # Every connection stays open while all of them make a request.
            statuses = await asyncio.gather(*(_get_on(r, w) for r, w in connections))
            statuses += await asyncio.gather(*(_get_on(r, w) for r, w in connections))
            # Past MAX_CONNECTIONS_PER_WORKER (300 here) uvicorn's own 503 appears,
            # which shows the setting reaches it.
            extra = await asyncio.gather(
                *(asyncio.open_connection(host, port) for _ in range(MAX_CONNECTIONS - 256))
            )
            try:
                over = await _get_on(*extra[-1])
            finally:
                for _, writer in extra:
                    writer.close()
        finally:
            for _, writer in connections:
                writer.close()
        return statuses, over

    statuses, over = asyncio.run(run())
    assert statuses == [200] * 512
    assert over == 503
