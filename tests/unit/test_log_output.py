"""What the log says about an error, and that writing it never holds up the caller."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
import structlog

from authgate.logs import configure_logging, flush_logs, stop_logging

SECRET = "s3cr3t-in-a-local-variable"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    saved_propagate = {
        name: logging.getLogger(name).propagate
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    }
    yield
    stop_logging()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, propagate in saved_propagate.items():
        logging.getLogger(name).propagate = propagate
    structlog.reset_defaults()


def _fail() -> None:
    password = SECRET  # a local that a traceback with locals would print
    raise ValueError(f"failed with {len(password)} characters")


def _caught() -> ValueError:
    try:
        _fail()
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


def _written(stream: io.StringIO) -> str:
    assert flush_logs(timeout=10)
    return stream.getvalue()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_an_error_is_logged_with_a_plain_traceback_and_no_locals(fmt: str) -> None:
    stream = io.StringIO()
    configure_logging("info", fmt, stream=stream)
    logging.getLogger("authgate.errors").error("unhandled error", exc_info=_caught())
    output = _written(stream)
    assert "Traceback (most recent call last)" in output
    assert "ValueError: failed with 26 characters" in output
    assert 'in _fail\n    raise ValueError(f"failed with' in (
        output if fmt == "text" else json.loads(output)["exception"]
    )
    assert SECRET not in output
    assert "locals" not in output
    # No rich panels: one line per frame and source line.
    assert "│" not in output
    assert "╭" not in output


def test_json_carries_the_traceback_as_text() -> None:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    logging.getLogger("authgate.errors").error("unhandled error", exc_info=_caught())
    (line,) = _written(stream).splitlines()
    record = json.loads(line)
    assert record["event"] == "unhandled error"
    assert record["exception"].startswith("Traceback (most recent call last)")
    assert "exc_info" not in record


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_each_traceback_is_written_once(fmt: str) -> None:
    """Our 500 handler logs the error; Starlette re-raises it and uvicorn logs it
    again as "Exception in ASGI application": that second record is dropped."""
    stream = io.StringIO()
    configure_logging("info", fmt, stream=stream)
    error = _caught()
    logging.getLogger("authgate.errors").error("unhandled error", exc_info=error)
    logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=error)
    logging.getLogger("elsewhere").error("the same error again", exc_info=error)
    output = _written(stream)
    assert output.count("Traceback (most recent call last)") == 1
    assert "Exception in ASGI application" not in output
    assert "the same error again" in output


def test_an_error_only_the_server_saw_keeps_its_traceback() -> None:
    stream = io.StringIO()
    configure_logging("info", "text", stream=stream)
    logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=_caught())
    output = _written(stream)
    assert "Exception in ASGI application" in output
    assert output.count("Traceback (most recent call last)") == 1


def test_structlog_exceptions_are_rendered_the_same_way() -> None:
    stream = io.StringIO()
    configure_logging("info", "text", stream=stream)
    try:
        _fail()
    except ValueError:
        structlog.get_logger("authgate.audit").exception("audit sink failed", event_id=7)
    output = _written(stream)
    assert "audit sink failed" in output
    assert "event_id=7" in output
    assert "ValueError: failed with 26 characters" in output
    assert SECRET not in output


class BlockedStream(io.StringIO):
    """A stderr that stops draining (a full pipe, a stalled log shipper)."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()

    def write(self, text: str) -> int:
        self.released.wait(timeout=30)
        return super().write(text)


def test_a_blocked_stderr_never_blocks_the_caller() -> None:
    stream = BlockedStream()
    configure_logging("info", "text", stream=stream)
    error = _caught()
    started = time.monotonic()
    for number in range(50):
        logging.getLogger("authgate.errors").error("error %d", number, exc_info=error)
    logged_in = time.monotonic() - started
    # Writing directly, the first write would have waited 30 s.
    assert logged_in < 5, logged_in
    assert stream.getvalue() == ""
    stream.released.set()
    output = _written(stream)
    assert "error 0 " in output
    assert "error 49 " in output


def test_records_keep_the_time_they_were_made_not_the_time_they_were_written() -> None:
    stream = BlockedStream()
    configure_logging("info", "json", stream=stream)
    before = time.time()
    logging.getLogger("authgate").info("made now")
    time.sleep(1.2)
    stream.released.set()
    record = json.loads(_written(stream))
    made = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
    assert made - before < 1.0


def test_a_full_queue_drops_records_and_says_so() -> None:
    stream = BlockedStream()
    configure_logging("info", "text", stream=stream, max_queued=5)
    for number in range(40):
        logging.getLogger("authgate").info("record %d", number)
    stream.released.set()
    time.sleep(0.2)
    logging.getLogger("authgate").info("after the stall")
    output = _written(stream)
    assert "log records dropped: the log output is too slow" in output
    assert "after the stall" in output
    assert output.count("record ") < 40
