"""Loopback TCP servers that behave like a database in trouble.

Each runs in a daemon thread, so it keeps answering whatever event loop (or
process) the code under test uses. Use them as context managers; ``url`` is a
``DATABASE_URL`` pointing at them.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

_LINGER_ZERO = struct.pack("ii", 1, 0)


def _reset(connection: socket.socket) -> None:
    # SO_LINGER 0: close() sends RST instead of FIN, as a killed server's kernel does.
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    connection.close()


class FaultyServer:
    """Accepts connections on 127.0.0.1 and hands each to ``on_accept``."""

    def __init__(self, on_accept: Callable[[socket.socket], None]) -> None:
        self._on_accept = on_accept
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1024)
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"mysql+asyncmy://root@127.0.0.1:{self.port}/authgate"

    def hold(self, connection: socket.socket) -> None:
        self._held.append(connection)

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            try:
                self._on_accept(connection)
            except OSError:
                connection.close()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed.set()
        # shutdown() wakes the accept() blocked in the server thread.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)
        for connection in self._held:
            connection.close()


def resetting_server() -> FaultyServer:
    """Accepts each connection and resets it at once: a database just killed."""
    return FaultyServer(_reset)


def silent_server() -> FaultyServer:
    """Accepts each connection and never sends a byte: a hung server or proxy."""
    server: FaultyServer

    def hold(connection: socket.socket) -> None:
        server.hold(connection)

    server = FaultyServer(hold)
    return server


def garbled_server() -> FaultyServer:
    """Answers each connection with an empty MySQL packet instead of a greeting.

    asyncmy fails to parse it with an IndexError: not an outage but a driver-level
    failure that stays a 500, which the logging tests use to produce real errors.
    """
    server: FaultyServer

    def garble(connection: socket.socket) -> None:
        connection.sendall(b"\x00\x00\x00\x00")
        server.hold(connection)

    server = FaultyServer(garble)
    return server


class CuttingProxy:
    """Forwards 127.0.0.1:port to a real database until ``cut()`` resets every
    connection through it, as a database killed mid-transaction does."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._server = FaultyServer(self._forward)
        self.port = self._server.port

    def _forward(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self._target, timeout=5)
        upstream.settimeout(None)
        with self._lock:
            self._pairs.append((client, upstream))
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            for side in (client, upstream):
                # shutdown() first: it wakes the pump threads blocked in recv(),
                # which would otherwise keep the socket (and the reset) alive.
                try:
                    side.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
                    side.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                side.close()

    def __enter__(self) -> Self:
        self._server.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cut()
        self._server.__exit__(exc_type, exc, tb)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
