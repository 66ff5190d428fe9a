"""The metrics listener of ``authgate serve``: its own port, summed over the workers.

``prepare`` runs in the serving process before any worker starts and before
anything imports prometheus_client: it creates a private directory (0700) and
points ``PROMETHEUS_MULTIPROC_DIR`` at it, so every worker (forked or spawned by
uvicorn, or the serving process itself with one worker) writes its values there.
``start`` then serves ``GET /metrics`` from a thread of the serving process on
``METRICS_HOST:METRICS_PORT``, reading and summing those files at each scrape; the
public listener has no such route. ``close`` stops it and removes the directory,
so the next start counts from zero instead of adding a previous run's files.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# prometheus-client names a live gauge's file gauge_live<mode>_<pid>.db.
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w*?_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class MetricsListener:
    directory: Path
    host: str
    port: int
    _server: Any = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @classmethod
    def prepare(cls, *, host: str, port: int) -> MetricsListener:
        directory = Path(tempfile.mkdtemp(prefix="authgate-metrics-"))  # mode 0700
        os.environ[ENV_VARIABLE] = str(directory)
        return cls(directory=directory, host=host, port=port)

    def start(self) -> None:
        """Bind and serve; an address in use raises OSError before any worker starts."""
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry()
        registry.register(_LiveWorkersCollector(self.directory))
        self._server, self._thread = start_http_server(self.port, self.host, registry)

    def close_on_sigterm(self) -> None:
        """Remove the directory on SIGTERM too. With one worker uvicorn serves in this
        process and, after its graceful shutdown, re-raises SIGTERM under the handler
        it found, so no ``finally`` runs: the handler it finds is this one, which cleans
        up and hands the signal on (to coverage's handler in tests, else the default)."""
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum: int, _frame: object) -> None:
            self.close()
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
            signal.raise_signal(signum)

        signal.signal(signal.SIGTERM, on_sigterm)

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if os.environ.get(ENV_VARIABLE) == str(self.directory):
            del os.environ[ENV_VARIABLE]
        shutil.rmtree(self.directory, ignore_errors=True)


class _LiveWorkersCollector:
    """prometheus-client's multiprocess collector, after forgetting the live-gauge
    files of workers that have died (uvicorn replaces a crashed worker; its queue
    and pool are gone, so they must leave the sums). Counters and histograms keep
    a dead worker's counts: what it served was served."""

    def __init__(self, directory: Path) -> None:
        from prometheus_client.multiprocess import MultiProcessCollector

        self._directory = directory
        # prometheus_client's multiprocess module carries no annotations.
        self._inner = MultiProcessCollector(None, path=str(directory))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Any]:
        from prometheus_client.multiprocess import mark_process_dead

        for path in self._directory.iterdir():
            match = _LIVE_GAUGE_FILE.match(path.name)
            if match and not _alive(int(match.group(1))):
                pid = int(match.group(1))
                mark_process_dead(pid, path=str(self._directory))  # type: ignore[no-untyped-call]
        metrics: Iterable[Any] = self._inner.collect()  # type: ignore[no-untyped-call]
        return metrics
