"""Request counts and latencies by route template (pure ASGI, outermost middleware).

The route label is the matched route's *template*, read from ``scope["route"]``
after the router has run (the router writes it into the shared scope), so
``/api/v1/sessions/<any id>`` is one series. A request that matched nothing is
``<unmatched>``: a raw path is client input and would grow one series per URL.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authgate.metrics import UNMATCHED_ROUTE, PrometheusMetrics


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class RequestMetrics:
    def __init__(self, app: ASGIApp, *, metrics: PrometheusMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # An exception that escapes without a response becomes Starlette's 500.
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.observe_request(
                scope["method"], route_template(scope), status, time.perf_counter() - started
            )
