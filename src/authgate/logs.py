"""Logging: one configuration for our loggers, structlog events and uvicorn's.

``LOG_FORMAT=json`` renders every record as one JSON object per line (audit events
carry their fields as keys); ``text`` is the same content for humans.

Two rules keep an error from hurting the requests around it:

- **No locals, ever.** Tracebacks are Python's plain ones. structlog's console
  renderer would use rich when it is installed, printing every frame's local
  variables (passwords and tokens among them): ~1,700 lines per error, 1-4 s of
  event-loop time each.
- **The event loop never writes.** Records go through a queue to one thread that
  renders and writes them, so a slow or blocked stderr (a full pipe, a stalled
  log shipper) delays the log, not the requests. The loop's share is freezing
  the record: the message and, for an error, the plain traceback text (about a
  millisecond), so no frame outlives the request.

Each exception's traceback is written once. Starlette re-raises an exception our
500 handler has already logged so that the server can log it too; uvicorn's
"Exception in ASGI application" record for it is dropped.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import sys
import threading
import traceback
from datetime import UTC, datetime
from logging.handlers import QueueHandler
from types import TracebackType
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict

# Records waiting for the writer thread. Past this (a writer stuck for minutes),
# new records are dropped and counted rather than held in memory without bound.
MAX_QUEUED_RECORDS = 10_000

_EXCEPTION_ATTRIBUTE = "authgate_exception"  # the frozen traceback text on a record
_CONTEXT_ATTRIBUTE = "authgate_context"  # the caller's structlog contextvars
_LOGGED_MARK = "__authgate_traceback_logged__"  # set on an exception once written
_UVICORN_APP_ERROR = "Exception in ASGI application"

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def configure_logging(
    level: str = "info",
    fmt: str = "text",
    *,
    access_log: bool = True,
    stream: TextIO | None = None,
    max_queued: int = MAX_QUEUED_RECORDS,
) -> None:
    """Configure the root logger; ``stream`` defaults to stderr (tests pass their own)."""
    # structlog events run these in the caller's thread, when they are logged.
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Standard-library records (ours, uvicorn's) get the same keys in the writer
    # thread, from what the record froze: its time and the caller's context.
    foreign: list[Any] = [
        _frozen_context,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _record_timestamp,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: list[Any] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if fmt == "json"
        else [
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            )
        ]
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=foreign,
        processors=[
            _exception_text,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *renderer,
        ],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [_start_writer(handler, max_queued)]
    root.setLevel(level.upper())
    # uvicorn's loggers report through the same handler.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    if not access_log:
        # uvicorn formats an access line whenever uvicorn.access has a handler
        # anywhere up the tree (Logger.hasHandlers), before any level check; that
        # cost a fifth of the CPU of a token check. A logger with no handler and
        # no propagation makes uvicorn skip the line entirely.
        logging.getLogger("uvicorn.access").propagate = False


def flush_logs(timeout: float = 5.0) -> bool:
    """Wait until every record handed to the writer has been written (tests, exit)."""
    writer = _writer
    if writer is None:
        return True
    return writer.flush(timeout)


class _Writer:
    """The queue and the one thread that renders and writes its records."""

    def __init__(self, handler: logging.Handler, max_queued: int) -> None:
        self.queue: queue.Queue[logging.LogRecord | None] = queue.Queue(max_queued)
        self.handler = _FreezingQueueHandler(self.queue)
        self._target = handler
        self._thread = threading.Thread(target=self._run, name="authgate-log-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            record = self.queue.get()
            try:
                if record is None:
                    return
                self._target.handle(record)
            finally:
                self.queue.task_done()

    def flush(self, timeout: float) -> bool:
        done = threading.Event()

        def wait() -> None:
            # unfinished_tasks reaches 0 once the thread has written every record.
            self.queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued, then end the thread; give up after ``timeout``
        (a stderr that never drains must not keep the process from exiting)."""
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)
        # At interpreter exit the stream may be closed already (pytest's capture).
        with contextlib.suppress(ValueError, OSError):
            self._target.flush()


_writer: _Writer | None = None
_writer_lock = threading.Lock()


def _start_writer(handler: logging.Handler, max_queued: int) -> QueueHandler:
    global _writer
    with _writer_lock:
        if _writer is not None:
            # Configured again in the same process (uvicorn's factory after the
            # CLI): the previous writer drains first, so no record is lost.
            _writer.stop()
        _writer = _Writer(handler, max_queued)
        return _writer.handler


@atexit.register
def stop_logging() -> None:
    """Write what is queued and stop the writer thread (at exit; tests)."""
    global _writer
    with _writer_lock:
        if _writer is not None:
            _writer.stop()
            _writer = None


class _FreezingQueueHandler(QueueHandler):
    """Hands records to the writer thread after freezing what may change.

    The stock ``QueueHandler.prepare`` formats the whole record in the caller's
    thread, which is the work to move off the event loop; ``_freeze`` only renders
    the message arguments and the traceback (plain, without locals) and drops
    the frames.
    """

    def __init__(self, records: queue.Queue[logging.LogRecord | None]) -> None:
        super().__init__(records)
        self._dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            frozen = self._freeze(record)
            if frozen is not None:
                self.enqueue(frozen)
        except Exception:
            self.handleError(record)

    def _freeze(self, record: logging.LogRecord) -> logging.LogRecord | None:
        exc_info = _exc_info_of(record)
        if exc_info is not None and _already_logged(exc_info[1]):
            if isinstance(record.msg, str) and record.msg.strip() == _UVICORN_APP_ERROR:
                return None  # the server repeating an error we logged with its trace
            exc_info = None
        frozen = logging.makeLogRecord(record.__dict__)
        if isinstance(frozen.msg, dict):
            # A structlog event: its dict is rendered in the writer thread.
            event = dict(frozen.msg)
            event.pop("exc_info", None)
            frozen.msg = event
        else:
            if frozen.args:
                frozen.msg = frozen.getMessage()
                frozen.args = None
            # Context variables belong to the caller's task; the writer has none.
            context = structlog.contextvars.get_contextvars()
            if context:
                setattr(frozen, _CONTEXT_ATTRIBUTE, context)
        frozen.exc_info = None
        frozen.exc_text = None
        if exc_info is not None:
            setattr(frozen, _EXCEPTION_ATTRIBUTE, "".join(traceback.format_exception(*exc_info)))
            _mark_logged(exc_info[1])
        return frozen

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            if self._dropped:
                notice = logging.makeLogRecord(
                    {
                        "name": __name__,
                        "levelno": logging.WARNING,
                        "levelname": "WARNING",
                        "msg": f"{self._dropped} log records dropped: the log output is "
                        "too slow to keep up",
                    }
                )
                self.queue.put_nowait(notice)
                self._dropped = 0
            self.queue.put_nowait(record)
        except queue.Full:
            self._dropped += 1


def _exc_info_of(record: logging.LogRecord) -> ExcInfo | None:
    value: Any = record.exc_info
    if isinstance(record.msg, dict):
        value = record.msg.get("exc_info") or value
    if isinstance(value, BaseException):
        return (type(value), value, value.__traceback__)
    if isinstance(value, tuple) and len(value) == 3 and value[1] is not None:
        return value
    if value is True:
        current = sys.exc_info()
        return current if current[1] is not None else None
    return None


def _already_logged(exc: BaseException) -> bool:
    return bool(getattr(exc, _LOGGED_MARK, False))


def _mark_logged(exc: BaseException) -> None:
    # An exception type that takes no attributes is logged again, harmlessly.
    with contextlib.suppress(AttributeError, TypeError):
        setattr(exc, _LOGGED_MARK, True)


def _exception_text(_logger: Any, _name: str, event: EventDict) -> EventDict:
    """Hand the frozen traceback text to the renderer as structlog's ``exception``."""
    record = event.get("_record")
    text = getattr(record, _EXCEPTION_ATTRIBUTE, None)
    if text:
        event["exception"] = text.rstrip("\n")
    return event


def _frozen_context(_logger: Any, _name: str, event: EventDict) -> EventDict:
    context = getattr(event.get("_record"), _CONTEXT_ATTRIBUTE, None)
    if context:
        return {**context, **event}
    return event


def _record_timestamp(_logger: Any, _name: str, event: EventDict) -> EventDict:
    """When the record was made (not when the writer got to it), in the format of
    structlog's ``TimeStamper(fmt="iso", utc=True)``."""
    record = event.get("_record")
    if record is not None:
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        event["timestamp"] = moment.isoformat().replace("+00:00", "Z")
    return event


def route_events_to_stdlib() -> None:
    """When nobody configured structlog (authgate embedded in another app, tests),
    send its events to the stdlib ``logging`` tree as ``key=value`` messages, where
    the host's own logging configuration decides what happens to them. Without
    this, structlog's default prints straight to stdout."""
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.processors.KeyValueRenderer(key_order=["event"], drop_missing=True),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
