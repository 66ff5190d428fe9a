"""Logging configuration: what uvicorn decides from it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from authgate.logs import configure_logging

UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved = {name: logging.getLogger(name).propagate for name in UVICORN}
    yield
    root.handlers[:] = saved_root[0]
    root.setLevel(saved_root[1])
    for name, propagate in saved.items():
        logging.getLogger(name).propagate = propagate
    structlog.reset_defaults()


def test_access_log_false_leaves_uvicorn_no_handler_to_format_for() -> None:
    # uvicorn's httptools protocol formats an access line iff hasHandlers() is true.
    configure_logging("info", "text", access_log=False)
    assert not logging.getLogger("uvicorn.access").hasHandlers()
    assert logging.getLogger("uvicorn.error").hasHandlers()


def test_access_log_true_reports_through_the_root_handler() -> None:
    configure_logging("info", "json", access_log=True)
    access = logging.getLogger("uvicorn.access")
    assert access.hasHandlers()
    assert access.propagate
    assert not access.handlers
