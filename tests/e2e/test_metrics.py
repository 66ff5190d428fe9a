"""/metrics of a real ``authgate serve`` with two workers, on its own port."""

from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.server import free_port, running_server

pytestmark = pytest.mark.e2e

PASSWORD = "Moo00!_*&x"
LEEWAY_SECONDS = 2
JWKS_REQUESTS = 40


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def test_counters_summed_over_two_workers_on_a_separate_loopback_port(tmp_path: Path) -> None:
    metrics_port = free_port()
    with running_server(
        tmp_path,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'metrics.db'}",
        WORKERS="2",
        METRICS_PORT=str(metrics_port),
        PASSWORD_HASH_TIME_COST="1",
        PASSWORD_HASH_MEMORY_KIB="8",
        REFRESH_REUSE_LEEWAY_SECONDS=str(LEEWAY_SECONDS),
    ) as server:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            signed_up = http.post(
                "/api/v1/signup/credentials",
                json={
                    "email": "cow@cow.jp",
                    "password": PASSWORD,
                    "passwordConfirm": PASSWORD,
                    "firstName": "Melvin",
                    "lastName": "Friedman",
                },
            )
            assert signed_up.status_code == 200, signed_up.text
            ok = http.post(
                "/api/v1/auth/credentials", json={"email": "cow@cow.jp", "password": PASSWORD}
            )
            assert ok.status_code == 200, ok.text
            wrong = http.post(
                "/api/v1/auth/credentials", json={"email": "cow@cow.jp", "password": "nope"}
            )
            assert wrong.status_code == 401
            first = ok.json()["refreshToken"]
            rotated = http.post("/api/v1/refresh", json={"refreshToken": first})
            assert rotated.status_code == 200
            retried = http.post("/api/v1/refresh", json={"refreshToken": first})
            assert retried.json()["refreshToken"] == rotated.json()["refreshToken"]
            time.sleep(LEEWAY_SECONDS + 0.5)
            reused = http.post("/api/v1/refresh", json={"refreshToken": first})
            assert reused.status_code == 401
            session_ids = [str(uuid.uuid4()), str(uuid.uuid4())]
            for session_id in session_ids:
                assert http.delete(f"/api/v1/sessions/{session_id}").status_code == 401
            # Not on the public listener.
            assert http.get("/metrics").status_code == 404

        # Enough concurrent requests that both workers answer some.
        def jwks(_n: int) -> int:
            return httpx.get(f"{server.base_url}/.well-known/jwks.json", timeout=30).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(jwks, range(JWKS_REQUESTS))) == {200}

        url = f"http://127.0.0.1:{metrics_port}/metrics"
        samples = scrape(url)

        def value(name: str, **labels: str) -> float:
            return samples.get((name, frozenset(labels.items())), 0.0)

        assert value("authgate_signins_total", outcome="ok") == 1
        assert value("authgate_signins_total", outcome="wrong_password") == 1
        assert value("authgate_refreshes_total", outcome="rotated") == 1
        assert value("authgate_refreshes_total", outcome="retried") == 1
        assert value("authgate_refreshes_total", outcome="reused") == 1
        assert (
            value(
                "authgate_http_requests_total",
                method="DELETE",
                route="/api/v1/sessions/{session_id}",
                status="401",
            )
            == 2
        )
        assert (
            value(
                "authgate_http_requests_total",
                method="GET",
                route="/.well-known/jwks.json",
                status="200",
            )
            == JWKS_REQUESTS
        )
        assert (
            value(
                "authgate_http_request_duration_seconds_count",
                method="POST",
                route="/api/v1/refresh",
            )
            == 3
        )
        # Both workers' files are summed: each SQLite pool keeps one connection.
        assert value("authgate_db_pool_size") == 2
        # In use: at most the two connections (background tasks may hold one).
        assert 0 <= value("authgate_db_pool_checked_out") <= 2
        assert value("authgate_password_hash_pending") == 0

        text = httpx.get(url, timeout=10).text
        for secret in (*session_ids, "cow@cow.jp", first, PASSWORD):
            assert secret not in text
        routes = set(re.findall(r'route="([^"]*)"', text))
        assert routes <= {
            "/api/v1/signup/credentials",
            "/api/v1/auth/credentials",
            "/api/v1/refresh",
            "/api/v1/sessions/{session_id}",
            "/.well-known/jwks.json",
            "/healthz",
            "<unmatched>",
        }, routes
        directory = re.search(r"workers' files in (\S+?)\)", server.log())
        assert directory is not None, server.log()
        assert Path(directory.group(1)).is_dir()
    # The serving process removed its workers' files when it stopped.
    assert not Path(directory.group(1)).exists()
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=2)


def test_one_worker_binds_loopback_by_default_and_cleans_up_on_sigterm(tmp_path: Path) -> None:
    metrics_port = free_port()
    with running_server(
        tmp_path,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'metrics.db'}",
        METRICS_PORT=str(metrics_port),
    ) as server:
        assert f"metrics on http://127.0.0.1:{metrics_port}/metrics" in server.log()
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).status_code == 200
        directory = re.search(r"workers' files in (\S+?)\)", server.log())
        assert directory is not None, server.log()
    # One worker: uvicorn serves in the serving process and ends it by re-raising
    # SIGTERM, which must still remove the directory.
    assert not Path(directory.group(1)).exists()
