"""Which exceptions count as "the database cannot be reached" (503) and which are bugs."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from authgate.errors import TransactionConflict
from authgate.storage.faults import (
    ASYNCMY_TRANSPORT_GONE,
    is_database_outage,
    is_transaction_conflict,
    unavailable,
)


class DriverError(Exception):
    pass


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("SELECT 1", {}, DriverError(2013, "Lost connection")),
        ProgrammingError("SELECT 1", {}, DriverError(1146, "Table doesn't exist")),
        PoolTimeout("QueuePool limit reached"),
        ConnectionResetError(104, "Connection reset by peer"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        OSError(113, "No route to host"),
        RuntimeError(ASYNCMY_TRANSPORT_GONE),
    ],
    ids=repr,
)
def test_outages(error: BaseException) -> None:
    assert is_database_outage(error)


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError("INSERT", {}, DriverError(1062, "Duplicate entry")),
        RuntimeError("Transport does not expose socket instance!"),
        RuntimeError("dictionary changed size during iteration"),
        ValueError("bad"),
        KeyError("x"),
        TypeError("unexpected keyword"),
    ],
    ids=repr,
)
def test_bugs_are_not_outages(error: BaseException) -> None:
    assert not is_database_outage(error)


def test_the_log_gets_the_driver_s_words_and_the_client_nothing_more() -> None:
    error = unavailable(OperationalError("SELECT 1", {}, DriverError(2003, "refused")))
    assert error.detail_for_log == "database: DriverError(2003, 'refused')"
    assert "refused" not in error.message


def test_an_exhausted_pool_says_so_in_the_log() -> None:
    error = unavailable(PoolTimeout("QueuePool limit of size 1 overflow 0 reached"))
    assert error.detail_for_log is not None
    assert error.detail_for_log.startswith("database pool: ")


@pytest.mark.parametrize(
    ("code", "conflict"),
    # 1205 (lock wait timeout) is a 503 without a retry: it already waited 50 s.
    [(1213, True), (1205, False), (2013, False), (1047, False)],
    ids=["deadlock", "lock-wait-timeout", "lost-connection", "wsrep-not-ready"],
)
def test_deadlocks_are_retryable_conflicts(code: int, conflict: bool) -> None:
    error = unavailable(OperationalError("COMMIT", {}, DriverError(code, "words")))
    assert isinstance(error, TransactionConflict) is conflict
    assert error.code == "unavailable"  # clients see the same 503 either way


def test_a_duplicate_key_is_never_a_conflict() -> None:
    error = IntegrityError("INSERT", {}, DriverError(1213, "not really"))
    assert not is_transaction_conflict(error)
