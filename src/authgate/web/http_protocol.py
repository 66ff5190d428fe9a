"""uvicorn's httptools protocol with a bound on the size of a request's head.

httptools (llhttp) has no limit on the request line and headers, and uvicorn's
httptools protocol adds none: an 8 MB header was accepted, and five slow 20 MB
headers grew the process by 115 MB (httptools appends each piece of a header value
to the previous ones, so a slow header also costs quadratic copying). uvicorn's h11
protocol has the bound (``h11_max_incomplete_event_size``) but is much slower, so
this subclass keeps httptools and adds the bound itself:

* while a request's head is incomplete, every byte received counts (counted in
  ``data_received``, before httptools buffers it, so a slow header is cut off as
  soon as it passes the limit, whatever its pieces);
* when the head completes and that count is over the limit (a head that arrived
  in one large read together with its body, say), its exact size (request target
  plus each header's name and value) decides;
* past the limit the answer is 431 (RFC 6585 §5) with a problem+json body, and the
  connection is closed; nothing reaches the application.

The count starts when the previous request ends, so the rest of the read that
carried that end (a pipelined next request) is not counted: a pipelining client can
exceed the limit by at most one read (256 KiB), never without bound.

The limit travels in uvicorn's own ``Config.h11_max_incomplete_event_size`` (the
same bound for its h11 protocol), so it survives the pickling of the configuration
into each worker process. Cost: an addition and two comparisons per read and three
extra Python calls per request (measured by bench/header_limit.py, see its doc).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

logger = logging.getLogger("authgate.http")

# The default of MAX_HEADER_BYTES (see config.py for why 32 KiB).
DEFAULT_MAX_HEADER_BYTES = 32_768

_STATUS_LINE = b"HTTP/1.1 431 Request Header Fields Too Large\r\n"


def _problem_body(limit: int) -> bytes:
    return json.dumps(
        {
            "type": "urn:authgate:problem:header_too_large",
            "title": "Request Header Fields Too Large",
            "status": 431,
            "detail": f"The request line and headers exceed {limit} bytes.",
            "code": "header_too_large",
        }
    ).encode()


class HeadTooLarge(Exception):
    """Raised inside httptools' callback to stop parsing a refused request."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that answers 431 and closes when a request head is too large."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_header_bytes: int = (
            config.h11_max_incomplete_event_size or DEFAULT_MAX_HEADER_BYTES
        )
        # Bytes received since the current request's head began (or since the
        # connection opened / the previous request ended).
        self._head_bytes = 0
        self._awaiting_head = True
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the connection is closing; whatever follows is discarded
        if self._awaiting_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._awaiting_head and self._head_bytes > self.max_header_bytes:
            self._refuse(self._head_bytes)

    def on_headers_complete(self) -> None:
        # Every byte of this head arrived while it was awaited, so the count is at
        # least its size (bar a pipelined head's first read, see the module doc);
        # the exact size is computed only when the count says it might be over.
        if self._head_bytes > self.max_header_bytes:
            size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
            if size > self.max_header_bytes:
                self._refuse(size)
                # Stops the parser: httptools turns this into HttpParserCallbackError,
                # which uvicorn answers through send_400_response (below).
                raise HeadTooLarge(size)
        self._awaiting_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_head = True
        self._head_bytes = 0

    def send_400_response(self, msg: str) -> None:
        if self._refused:
            return  # the 431 is already written and the connection closing
        super().send_400_response(msg)

    def _refuse(self, size: int) -> None:
        if self._refused:
            return
        self._refused = True
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown client"
        logger.warning(
            "refused a request head of at least %d bytes from %s (MAX_HEADER_BYTES=%d): 431",
            size,
            client,
            self.max_header_bytes,
        )
        body = _problem_body(self.max_header_bytes)
        head = [_STATUS_LINE]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend(
            [
                b"content-type: application/problem+json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"cache-control: no-store\r\n",
                b"x-content-type-options: nosniff\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(head))
        self.transport.close()
