"""`@pytest.mark.serial` keeps a test alone while xdist runs the others in parallel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Each test writes when it ran; ordinary ones sleep long enough to overlap.
SUITE = """
import json, os, time
import pytest

def _run(kind, name):
    started = time.monotonic()
    time.sleep(0.4)
    with open(os.environ["INTERVALS"], "a") as out:
        out.write(json.dumps([kind, name, started, time.monotonic()]) + "\\n")

@pytest.mark.parametrize("i", range(6))
def test_ordinary(i):
    _run("ordinary", f"ordinary-{i}")

@pytest.mark.serial
@pytest.mark.parametrize("i", range(2))
def test_serial(i):
    _run("serial", f"serial-{i}")
"""


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_a_serial_test_never_runs_beside_another(tmp_path: Path) -> None:
    (tmp_path / "test_suite.py").write_text(SUITE)
    (tmp_path / "conftest.py").write_text(
        "def pytest_configure(config):\n"
        "    config.addinivalue_line('markers', 'serial: runs alone')\n"
    )
    intervals = tmp_path / "intervals.jsonl"
    # A clean environment: not a worker of the outer run, not measured by coverage.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COVERAGE_"))}
    env.update(INTERVALS=str(intervals), PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:cov"),
            *("-p", "no:asyncio"),
            *("-p", "tests.support.serial", "-n", "2", "--basetemp", str(tmp_path / "tmp")),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = [json.loads(line) for line in intervals.read_text().splitlines()]
    spans = {name: [start, end] for _, name, start, end in rows}
    serial = [name for kind, name, *_ in rows if kind == "serial"]
    ordinary = [name for kind, name, *_ in rows if kind == "ordinary"]
    assert (len(serial), len(ordinary)) == (2, 6)
    # The two workers really ran ordinary tests side by side...
    assert any(_overlap(spans[a], spans[b]) for a in ordinary for b in ordinary if a < b)
    # ...but never a serial test beside anything else.
    for name in serial:
        beside = [other for other in spans if other != name and _overlap(spans[name], spans[other])]
        assert beside == [], (name, spans)
