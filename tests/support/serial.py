"""`@pytest.mark.serial`: a test that measures wall time runs alone, even under xdist.

`make test` runs the suite on several pytest-xdist workers. A test that asserts how
long something took (a timeout, a deadline, "answers within 1 s") would then share
the machine's cores with whatever the other workers run, and fail at random on a
loaded machine. Every test takes a lock around its whole run (setup, call,
teardown): shared for ordinary tests, exclusive for `serial` ones. So a serial test
starts once the other workers' current tests have finished, and no other test starts
until it is done. The lock is a file in the run's common temporary directory, so
two runs (two checkouts) do not wait for each other. Without xdist it does nothing.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

_LOCK_FILE = "authgate-serial.lock"


def _lock_path(config: pytest.Config) -> Path | None:
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return None
    # xdist gives each worker `--basetemp <the controller's basetemp>/<worker id>`.
    basetemp = config.option.basetemp
    if basetemp is None:  # a worker without xdist's basetemp: never expected
        return None
    return Path(basetemp).parent / _LOCK_FILE


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    path = _lock_path(item.config)
    if path is None:
        return (yield)
    exclusive = item.get_closest_marker("serial") is not None
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            return (yield)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
