"""The metrics listener: its private directory, the sums, a dead worker's gauges."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from authgate.metrics_listener import ENV_VARIABLE, MetricsListener
from tests.e2e.server import free_port

# A worker in miniature: counts, sets its live gauge, exits.
WORKER = """
from authgate.metrics import PrometheusMetrics
from authgate.domain.observations import SignInOutcome
metrics = PrometheusMetrics()
metrics.sign_in(SignInOutcome.OK)
metrics.hashing_pending(5)
"""


def run_worker(directory: Path) -> None:
    env = {**os.environ, ENV_VARIABLE: str(directory)}
    subprocess.run([sys.executable, "-c", WORKER], env=env, check=True, timeout=60)


def scrape(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture(autouse=True)
def _environment_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VARIABLE, raising=False)


def test_counts_of_finished_workers_are_summed_and_their_gauges_forgotten() -> None:
    listener = MetricsListener.prepare(host="127.0.0.1", port=free_port())
    try:
        assert os.environ[ENV_VARIABLE] == str(listener.directory)
        assert listener.directory.stat().st_mode & 0o777 == 0o700
        run_worker(listener.directory)
        run_worker(listener.directory)
        listener.start()
        samples = scrape(listener.port)
        assert samples["authgate_signins_total[('outcome', 'ok')]"] == 2
        # Both workers have exited: their queues are gone from the sum.
        assert samples.get("authgate_password_hash_pending[]", 0.0) == 0
        assert not list(listener.directory.glob("gauge_live*"))
    finally:
        listener.close()
    assert not listener.directory.exists()
    assert ENV_VARIABLE not in os.environ


def test_a_port_in_use_fails_at_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listener = MetricsListener.prepare(host="127.0.0.1", port=taken.getsockname()[1])
        try:
            with pytest.raises(OSError):
                listener.start()
        finally:
            listener.close()
