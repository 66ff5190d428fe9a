"""Which exceptions mean "the database cannot be reached right now".

Those are answered 503 with ``Retry-After`` (a client or load balancer retries);
anything else from the storage layer is a bug and stays a 500. The web layer never
sees driver exceptions: the unit of work, ``/readyz`` and the CLI classify them here.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from authgate.errors import TransactionConflict, Unavailable

# asyncmy (connection.pyx, _set_keep_alive/_set_nodelay) raises a bare RuntimeError
# with exactly this text when the server reset the connection between the TCP
# connect and the first socket option: uvloop has already dropped the closed
# socket from the transport. Seen when MariaDB is killed under load.
ASYNCMY_TRANSPORT_GONE = "Transport does not expose socket instance"

# MySQL/MariaDB errors after which the server has rolled the transaction back and
# running it again may succeed: 1213 ER_LOCK_DEADLOCK, which is also how Galera
# reports a transaction that lost certification to a conflicting one from another
# node (at COMMIT, or on the next statement of a brute-force-aborted one). Not 1205
# ER_LOCK_WAIT_TIMEOUT: it comes after innodb_lock_wait_timeout (50 s by default)
# of waiting, so another attempt would only hold the request (and a pooled
# connection) that long again; it stays a plain 503.
RETRYABLE_MYSQL_ERRORS = frozenset({1213})


def is_transport_gone(exc: BaseException) -> bool:
    """asyncmy's connect-time RuntimeError, and no other RuntimeError."""
    return type(exc) is RuntimeError and str(exc) == ASYNCMY_TRANSPORT_GONE


def is_database_outage(exc: BaseException) -> bool:
    """True when ``exc`` says the database could not be reached or stopped answering.

    Covers driver errors wrapped by SQLAlchemy (``DBAPIError``: lost connection,
    refused, reset, read timeout, server gone), an exhausted pool (``PoolTimeout``),
    socket errors that escaped the driver unwrapped (``OSError``, which includes
    ``ConnectionError`` and, since Python 3.11, ``asyncio.TimeoutError``) and
    asyncmy's transport ``RuntimeError``. A unique-key violation is not an outage:
    the repositories turn it into a domain error, and one that escapes is a bug.
    """
    if isinstance(exc, IntegrityError):
        return False
    return isinstance(exc, DBAPIError | PoolTimeout | OSError) or is_transport_gone(exc)


def is_transaction_conflict(exc: BaseException) -> bool:
    """True when the database rolled back ``exc``'s transaction to resolve a conflict."""
    if not isinstance(exc, DBAPIError) or isinstance(exc, IntegrityError):
        return False
    args: tuple[object, ...] = getattr(exc.orig, "args", ())
    return len(args) > 0 and args[0] in RETRYABLE_MYSQL_ERRORS


def describe(exc: BaseException) -> str:
    """The driver's own words for the log (never shown to clients)."""
    if isinstance(exc, DBAPIError):
        return repr(exc.orig)
    return repr(exc)


def unavailable(exc: BaseException, message: str | None = None) -> Unavailable:
    if is_transaction_conflict(exc):
        return TransactionConflict(message, detail_for_log=f"database conflict: {describe(exc)}")
    if isinstance(exc, PoolTimeout):
        # Every pooled connection stayed busy past the pool timeout: overload.
        return Unavailable(message, detail_for_log=f"database pool: {exc}")
    return Unavailable(message, detail_for_log=f"database: {describe(exc)}")
