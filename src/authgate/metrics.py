"""The Prometheus adapter of the ``Observer`` port, plus request and pool metrics.

Imported only when ``METRICS_PORT`` is set. With several workers each one writes
its values to files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's
multiprocess mode, chosen when prometheus_client is first imported: ``authgate
serve`` sets the variable before anything imports it), and the serving process
sums them when scraped (``authgate.metrics_listener``).

Labels come from fixed sets only: outcomes, HTTP methods from a short list, route
*templates* (``/api/v1/sessions/{session_id}``, never the raw path), status codes,
and the operator's own provider names. No email, token or raw path reaches a label.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from authgate.domain.observations import RefreshOutcome, SignInOutcome

# Anything else a client sends as a method is counted as OTHER: the method is client
# input, and every distinct value would be a new time series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The route label of a request that matched no route (404) or was refused before
# routing (413 from the body-size limit, say).
UNMATCHED_ROUTE = "<unmatched>"
# Cached label children for requests; past this (odd methods from a client) the
# lookup is just not cached.
MAX_CACHED_SERIES = 1000
# Seconds; sign-ins (argon2) sit around 50-200 ms, token checks well under 5 ms.
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class PrometheusMetrics:
    """Every authgate metric, registered in ``registry`` (a fresh one by default:
    in multiprocess mode the values live in files and the registry is unused)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "authgate_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "authgate_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.signins = Counter(
            "authgate_signins",
            "Password sign-ins, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.refreshes = Counter(
            "authgate_refreshes",
            "Refresh-token presentations, by outcome.",
            ["outcome"],
            registry=registry,
        )
        # livesum: the sum over the workers alive now (a dead worker's queue is gone).
        self.hashing_queue = Gauge(
            "authgate_password_hash_pending",
            "Password hashes queued or running (summed over live workers).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_checked_out = Gauge(
            "authgate_db_pool_checked_out",
            "Database connections in use (summed over live workers).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_size = Gauge(
            "authgate_db_pool_size",
            "Database connections each pool keeps (summed over live workers); "
            "checked-out connections may exceed it by as many again (overflow).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.jwks_fetches = Counter(
            "authgate_jwks_fetches",
            "Fetches of a sign-in provider's JWKS, by provider.",
            ["provider"],
            registry=registry,
        )
        self.jwks_failures = Counter(
            "authgate_jwks_fetch_failures",
            "Failed fetches of a sign-in provider's JWKS (cached keys kept), by provider.",
            ["provider"],
            registry=registry,
        )
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        # Every outcome is exported from the start (at 0), so a rate() over it works
        # before the first event and a dashboard shows the series that exist.
        for signin in SignInOutcome:
            self.signins.labels(signin.value)
        for refresh in RefreshOutcome:
            self.refreshes.labels(refresh.value)

    # -- the Observer port ----------------------------------------------------------

    def sign_in(self, outcome: SignInOutcome) -> None:
        self.signins.labels(outcome.value).inc()

    def refresh(self, outcome: RefreshOutcome) -> None:
        self.refreshes.labels(outcome.value).inc()

    def hashing_pending(self, depth: int) -> None:
        self.hashing_queue.set(depth)

    def jwks_fetch(self, provider: str, *, ok: bool) -> None:
        self.jwks_fetches.labels(provider).inc()
        if not ok:
            self.jwks_failures.labels(provider).inc()

    # -- requests and the pool (web and storage wiring) -----------------------------

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            # labels() takes a lock and builds a tuple each time (~3 us): keep the
            # pair per series. The keys are bounded like the labels (the method is
            # mapped before it becomes a label; a key per odd method is one entry).
            label = method if method in KNOWN_METHODS else "OTHER"
            children = (
                self.requests.labels(label, route, str(status)),
                self.latency.labels(label, route),
            )
            if len(self._request_children) < MAX_CACHED_SERIES:
                self._request_children[key] = children
        counter, histogram = children
        counter.inc()
        histogram.observe(seconds)

    def watch_pool(self, engine: AsyncEngine) -> None:
        """Count this engine's connections in use as the pool hands them out and
        takes them back (SQLAlchemy pool events, run where the checkout happens)."""
        pool = engine.sync_engine.pool
        size = getattr(pool, "size", None)
        self.pool_size.set(size() if callable(size) else 1)
        checked_out = self.pool_checked_out

        def on_checkout(*_args: Any) -> None:
            checked_out.inc()

        def on_checkin(*_args: Any) -> None:
            checked_out.dec()

        event.listen(engine.sync_engine, "checkout", on_checkout)
        event.listen(engine.sync_engine, "checkin", on_checkin)
