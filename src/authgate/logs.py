"""Logging: one configuration for our loggers, structlog events and uvicorn's.

``LOG_FORMAT=json`` renders every record as one JSON object per line (audit events
carry their fields as keys); ``text`` is the same content for humans.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure_logging(level: str = "info", fmt: str = "text", *, access_log: bool = True) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
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
