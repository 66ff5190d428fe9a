"""Metrics in process: what the Observer port and the request middleware count.

The multiprocess path (several workers, the separate listener) is tested against a
real ``authgate serve`` in tests/e2e/test_metrics.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from authgate.clock import FrozenClock
from authgate.metrics import PrometheusMetrics
from authgate.storage.engine import create_engine
from tests.conftest import Api, start_api

SIGN_IN = "/api/v1/auth/credentials"
REFRESH = "/api/v1/refresh"
PASSWORD = "Moo00!_*&x"


@pytest.fixture
async def api(make_settings: Any, clock: FrozenClock) -> AsyncIterator[Api]:
    settings = make_settings(
        metrics_port=9464,
        rate_limit_failed_signins_per_account="3/15 minutes",
        refresh_reuse_leeway_seconds=10,
    )
    async for value in start_api(settings, clock):
        yield value


def metrics_of(api: Api) -> PrometheusMetrics:
    metrics = api.app.state.metrics
    assert isinstance(metrics, PrometheusMetrics)
    return metrics


def sample(api: Api, name: str, **labels: str) -> float:
    value = metrics_of(api).registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def exposition(api: Api) -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics_of(api).registry).decode()


async def test_sign_in_outcomes_are_counted(api: Api) -> None:
    await api.sign_up("cow@cow.jp", PASSWORD)
    ok = await api.client.post(SIGN_IN, json={"email": "cow@cow.jp", "password": PASSWORD})
    assert ok.status_code == 200
    for _ in range(2):
        wrong = await api.client.post(SIGN_IN, json={"email": "cow@cow.jp", "password": "nope"})
        assert wrong.status_code == 401
    unknown = await api.client.post(SIGN_IN, json={"email": "pig@cow.jp", "password": "nope"})
    assert unknown.status_code == 401
    # The third failure on the account (3 per 15 minutes) locks it.
    await api.client.post(SIGN_IN, json={"email": "cow@cow.jp", "password": "nope"})
    locked = await api.client.post(SIGN_IN, json={"email": "cow@cow.jp", "password": PASSWORD})
    assert locked.status_code == 429

    def signins(outcome: str) -> float:
        return sample(api, "authgate_signins_total", outcome=outcome)

    assert signins("ok") == 1
    assert signins("wrong_password") == 3
    assert signins("unknown_email") == 1
    assert signins("locked") == 1
    assert signins("throttled") == 0
    # Every outcome is exported from the start, at zero.
    assert 'authgate_signins_total{outcome="disabled"} 0.0' in exposition(api)
    assert "cow@cow.jp" not in exposition(api)


async def test_a_sign_in_over_the_per_address_limit_is_counted_throttled(
    make_settings: Any, clock: FrozenClock
) -> None:
    settings = make_settings(metrics_port=9464, rate_limit_auth_per_ip="2/minute")
    async for api in start_api(settings, clock):
        await api.sign_up()  # the first request of the address's two
        body = {"email": "cow@cow.jp", "password": PASSWORD}
        assert (await api.client.post(SIGN_IN, json=body)).status_code == 200
        assert (await api.client.post(SIGN_IN, json=body)).status_code == 429
        assert sample(api, "authgate_signins_total", outcome="throttled") == 1
        assert sample(api, "authgate_signins_total", outcome="ok") == 1


async def test_refresh_outcomes_are_counted(api: Api) -> None:
    first = await api.sign_up()
    successor = await api.client.post(REFRESH, json={"refreshToken": first["refreshToken"]})
    assert successor.status_code == 200
    retry = await api.client.post(REFRESH, json={"refreshToken": first["refreshToken"]})
    assert retry.json()["refreshToken"] == successor.json()["refreshToken"]
    api.clock.advance(11)  # past the leeway: the old token again is a replay
    reused = await api.client.post(REFRESH, json={"refreshToken": first["refreshToken"]})
    assert reused.status_code == 401
    bogus = await api.client.post(REFRESH, json={"refreshToken": "x" * 43})
    assert bogus.status_code == 401

    def refreshes(outcome: str) -> float:
        return sample(api, "authgate_refreshes_total", outcome=outcome)

    assert refreshes("rotated") == 1
    assert refreshes("retried") == 1
    assert refreshes("reused") == 1
    assert refreshes("invalid") == 1
    assert first["refreshToken"] not in exposition(api)


async def test_requests_are_labelled_by_route_template_never_by_raw_path(api: Api) -> None:
    ids = [str(uuid.uuid4()) for _ in range(2)]
    for session_id in ids:
        response = await api.client.delete(f"/api/v1/sessions/{session_id}")
        assert response.status_code == 401
    missing = await api.client.get("/no/such/place/cow@cow.jp")
    assert missing.status_code == 404
    odd = await api.client.request("BREW", "/api/v1/me")
    assert odd.status_code == 405

    text = exposition(api)
    requests = [
        line for line in text.splitlines() if line.startswith("authgate_http_requests_total{")
    ]
    assert (
        'authgate_http_requests_total{method="DELETE",route="/api/v1/sessions/{session_id}",'
        'status="401"} 2.0'
    ) in requests
    assert 'authgate_http_requests_total{method="GET",route="<unmatched>",status="404"} 1.0' in (
        requests
    )
    assert 'authgate_http_requests_total{method="OTHER",route="/api/v1/me",status="405"} 1.0' in (
        requests
    )
    for session_id in ids:
        assert session_id not in text
    assert "cow@cow.jp" not in text
    assert "BREW" not in text
    assert (
        sample(
            api,
            "authgate_http_request_duration_seconds_count",
            method="DELETE",
            route="/api/v1/sessions/{session_id}",
        )
        == 2
    )


async def test_pool_use_is_counted_as_connections_are_checked_out(api: Api) -> None:
    await api.sign_up()
    assert sample(api, "authgate_db_pool_size") >= 1
    assert sample(api, "authgate_password_hash_pending") == 0
    # A pool of its own: the app's background tasks (pruning, mail, key ring) may
    # hold one of the app's connections at any moment.
    metrics = PrometheusMetrics()
    engine = create_engine(api.settings.effective_database_url, pool_size=3)
    metrics.watch_pool(engine)
    try:

        def checked_out() -> float | None:
            return metrics.registry.get_sample_value("authgate_db_pool_checked_out")

        assert metrics.registry.get_sample_value("authgate_db_pool_size") == (
            1 if engine.dialect.name == "sqlite" else 3
        )
        assert checked_out() == 0
        async with engine.connect():
            assert checked_out() == 1
        assert checked_out() == 0
    finally:
        await engine.dispose()


async def test_metrics_are_not_served_on_the_public_app(api: Api) -> None:
    assert (await api.client.get("/metrics")).status_code == 404


async def test_without_metrics_port_nothing_is_measured(
    make_settings: Any, clock: FrozenClock
) -> None:
    async for api in start_api(make_settings(), clock):
        assert api.app.state.metrics is None
        assert (await api.client.get("/metrics")).status_code == 404
