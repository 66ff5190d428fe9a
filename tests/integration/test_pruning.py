"""Pruning on SQLite and MariaDB: what is past its retention goes, the rest stays."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import insert, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from authgate.clock import FrozenClock
from authgate.services.pruning import (
    PeriodicPruning,
    PruneReport,
    PruningService,
    RetentionPolicy,
)
from authgate.storage.engine import create_engine
from authgate.storage.tables import (
    audit_events,
    id_token_uses,
    maintenance_runs,
    refresh_tokens,
    sessions,
    users,
)
from authgate.storage.unit_of_work import SqlUnitOfWorkFactory
from tests.e2e.server import authgate_command, clean_environment
from tests.support.rows import count_rows, fetch_all

DAY = timedelta(days=1)


@pytest.fixture
async def engine(database_url: URL) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def _service(engine: AsyncEngine, clock: FrozenClock, **policy: Any) -> PruningService:
    values = {
        "session_retention_days": 30,
        "audit_retention_days": 365,
        "reuse_leeway_seconds": 10,
        **policy,
    }
    return PruningService(
        uow=SqlUnitOfWorkFactory(engine), clock=clock, policy=RetentionPolicy(**values)
    )


class Rows:
    """Writes rows straight into the tables, at times relative to the clock."""

    def __init__(self, engine: AsyncEngine, now: datetime) -> None:
        self.engine = engine
        self.now = now
        self.user_id = uuid.uuid4()

    async def _insert(self, table: Any, **values: Any) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(insert(table), values)

    async def user(self) -> None:
        await self._insert(
            users,
            id=self.user_id,
            email="cow@cow.jp",
            email_key="cow@cow.jp",
            email_verified=False,
            given_name="",
            family_name="",
            display_name="",
            created_at=self.now - 400 * DAY,
            updated_at=self.now - 400 * DAY,
        )

    async def session(
        self,
        *,
        created: timedelta = -100 * DAY,
        absolute: timedelta = 60 * DAY,
        revoked: timedelta | None = None,
    ) -> UUID:
        session_id = uuid.uuid4()
        await self._insert(
            sessions,
            id=session_id,
            user_id=self.user_id,
            created_at=self.now + created,
            absolute_expires_at=self.now + absolute,
            revoked_at=None if revoked is None else self.now + revoked,
            revoked_reason=None if revoked is None else "logout",
        )
        return session_id

    async def token(
        self,
        session_id: UUID,
        *,
        issued: timedelta,
        expires: timedelta,
        parent: UUID | None = None,
        sealed: bool = False,
    ) -> UUID:
        token_id = uuid.uuid4()
        await self._insert(
            refresh_tokens,
            id=token_id,
            session_id=session_id,
            parent_id=parent,
            token_hash=uuid.uuid4().hex * 2,
            issued_at=self.now + issued,
            expires_at=self.now + expires,
            sealed_for_parent=b"\x00" * 60 if sealed else None,
        )
        return token_id

    async def ended_session(self, **when: timedelta) -> UUID:
        session_id = await self.session(**when)
        # Tokens that idle-expire within the retention: only how the session ended counts.
        first = await self.token(session_id, issued=-60 * DAY, expires=-28 * DAY)
        await self.token(session_id, issued=-58 * DAY, expires=-28 * DAY, parent=first)
        return session_id

    async def id_token_use(self, expires: timedelta) -> str:
        token_hash = uuid.uuid4().hex * 2
        await self._insert(
            id_token_uses,
            token_hash=token_hash,
            provider="google",
            used_at=self.now + expires - timedelta(hours=1),
            expires_at=self.now + expires,
        )
        return token_hash

    async def audit_event(self, occurred: timedelta) -> UUID:
        event_id = uuid.uuid4()
        await self._insert(
            audit_events, id=event_id, occurred_at=self.now + occurred, name="sign_in"
        )
        return event_id


@pytest.fixture
async def rows(engine: AsyncEngine, clock: FrozenClock) -> Rows:
    rows = Rows(engine, clock.now())
    await rows.user()
    return rows


async def _ids(url: URL, table: str, column: str = "id") -> set[Any]:
    return {row[column] for row in await fetch_all(url, table)}


async def test_rows_past_retention_go_and_the_rest_stay(
    rows: Rows, engine: AsyncEngine, clock: FrozenClock, database_url: URL
) -> None:
    # Sessions that ended longer ago than the retention (30 days)...
    revoked_old = await rows.ended_session(revoked=-31 * DAY)
    absolute_old = await rows.ended_session(absolute=-31 * DAY)
    idle_old = await rows.session()
    idle_first = await rows.token(idle_old, issued=-80 * DAY, expires=-50 * DAY)
    await rows.token(idle_old, issued=-61 * DAY, expires=-31 * DAY, parent=idle_first)
    # ...and sessions that ended within it.
    revoked_recent = await rows.ended_session(revoked=-29 * DAY)
    absolute_recent = await rows.ended_session(created=-90 * DAY, absolute=-29 * DAY)
    idle_recent = await rows.session()
    await rows.token(idle_recent, issued=-59 * DAY, expires=-29 * DAY)
    # A live session: its long-expired rotated token goes, the recent ones stay, and
    # its current token's sealed copy is cleared once the leeway has passed.
    live = await rows.session()
    a = await rows.token(live, issued=-80 * DAY, expires=-50 * DAY)
    b = await rows.token(live, issued=-55 * DAY, expires=-25 * DAY, parent=a)
    c = await rows.token(live, issued=-1 * DAY, expires=29 * DAY, parent=b, sealed=True)
    # A session rotated 5 seconds ago: within the leeway, its sealed copy stays.
    fresh = await rows.session(created=-1 * DAY)
    d = await rows.token(fresh, issued=-1 * DAY, expires=29 * DAY)
    e = await rows.token(
        fresh, issued=timedelta(seconds=-5), expires=30 * DAY, parent=d, sealed=True
    )
    expired_use = await rows.id_token_use(timedelta(seconds=-1))
    live_use = await rows.id_token_use(timedelta(hours=1))
    old_event = await rows.audit_event(-366 * DAY)
    recent_event = await rows.audit_event(-364 * DAY)
    fresh_before = [
        r for r in await fetch_all(database_url, "refresh_tokens") if r["session_id"] == fresh
    ]

    report = await _service(engine, clock, batch_size=2).run()

    assert await _ids(database_url, "sessions") == {
        revoked_recent, absolute_recent, idle_recent, live, fresh,
    }  # fmt: skip
    assert revoked_old not in await _ids(database_url, "sessions")
    assert absolute_old not in await _ids(database_url, "sessions")
    tokens = {row["id"]: row for row in await fetch_all(database_url, "refresh_tokens")}
    assert {row["session_id"] for row in tokens.values()} == {
        revoked_recent, absolute_recent, idle_recent, live, fresh,
    }  # fmt: skip
    assert a not in tokens
    assert tokens[b]["sealed_for_parent"] is None
    assert tokens[c]["sealed_for_parent"] is None
    # The session within the leeway is untouched, row for row.
    assert [r for r in tokens.values() if r["session_id"] == fresh] == fresh_before
    assert tokens[e]["sealed_for_parent"] is not None
    assert await _ids(database_url, "id_token_uses", "token_hash") == {live_use}
    assert expired_use not in await _ids(database_url, "id_token_uses", "token_hash")
    assert await _ids(database_url, "audit_events") == {recent_event}
    assert old_event not in await _ids(database_url, "audit_events")
    assert report == PruneReport(
        sessions=3, refresh_tokens=7, sealed_copies=1, id_token_uses=1, audit_events=1
    )
    # Nothing left to do: a second run deletes nothing.
    assert await _service(engine, clock).run() == PruneReport()


async def test_zero_retention_prunes_every_ended_row(
    rows: Rows, engine: AsyncEngine, clock: FrozenClock, database_url: URL
) -> None:
    revoked = await rows.session(revoked=timedelta(seconds=-1))
    await rows.token(revoked, issued=-1 * DAY, expires=29 * DAY)
    live = await rows.session()
    old = await rows.token(live, issued=-31 * DAY, expires=timedelta(seconds=-1))
    current = await rows.token(live, issued=-1 * DAY, expires=29 * DAY, parent=old)
    event = await rows.audit_event(timedelta(seconds=-1))

    report = await _service(engine, clock, session_retention_days=0, audit_retention_days=0).run()

    assert await _ids(database_url, "sessions") == {live}
    assert await _ids(database_url, "refresh_tokens") == {current}
    assert event not in await _ids(database_url, "audit_events")
    assert (report.sessions, report.refresh_tokens) == (1, 2)


async def test_many_sessions_are_pruned_in_small_batches(
    rows: Rows, engine: AsyncEngine, clock: FrozenClock, database_url: URL
) -> None:
    for _ in range(7):
        await rows.ended_session(revoked=-31 * DAY)
    report = await _service(engine, clock, batch_size=3).run()
    assert (report.sessions, report.refresh_tokens) == (7, 14)
    counts = await count_rows(database_url)
    assert (counts["sessions"], counts["refresh_tokens"]) == (0, 0)


async def test_the_marker_makes_a_second_run_a_no_op(
    rows: Rows, engine: AsyncEngine, clock: FrozenClock, database_url: URL
) -> None:
    service = _service(engine, clock)
    await rows.ended_session(revoked=-31 * DAY)
    assert await service.run_if_due() == PruneReport(sessions=1, refresh_tokens=2)
    # Another instance (its own engine) a few minutes later: the run is not due.
    other_engine = create_engine(database_url)
    try:
        other = _service(other_engine, clock)
        clock.advance(600)
        await rows.ended_session(revoked=-31 * DAY)
        assert await other.run_if_due() is None
        assert len(await _ids(database_url, "sessions")) == 1
        (marker,) = await fetch_all(database_url, "maintenance_runs")
        assert marker["task"] == "prune"
        assert marker["last_run_at"] == clock.now() - timedelta(seconds=600)
        # Well over the recent-run window later, it is.
        clock.advance(3000)
        assert await other.run_if_due() == PruneReport(sessions=1, refresh_tokens=2)
        (marker,) = await fetch_all(database_url, "maintenance_runs")
        assert marker["last_run_at"] == clock.now()
    finally:
        await other_engine.dispose()


async def test_two_instances_claiming_at_once_run_once(
    engine: AsyncEngine, clock: FrozenClock, database_url: URL
) -> None:
    engines = [create_engine(database_url) for _ in range(3)]
    try:
        for attempt in range(2):  # first without a marker row, then with one
            clock.advance(3600)
            results = await asyncio.gather(*(_service(e, clock).run_if_due() for e in engines))
            assert sum(result is not None for result in results) == 1, (attempt, results)
    finally:
        for other in engines:
            await other.dispose()


async def test_the_cli_prunes_and_prints_counts(
    rows: Rows, database_url: URL, tmp_path: Path
) -> None:
    # The CLI runs on the real clock: rows placed relative to now.
    from authgate.clock import SystemClock

    real = Rows(rows.engine, SystemClock().now())
    real.user_id = rows.user_id
    ended = await real.ended_session(revoked=-31 * DAY)
    live = await real.session()
    await real.token(live, issued=-1 * DAY, expires=29 * DAY)
    url = database_url.render_as_string(hide_password=False)
    result = await asyncio.to_thread(
        subprocess.run,
        authgate_command("prune"),
        cwd=tmp_path,
        env=clean_environment(DATABASE_URL=url, LOG_LEVEL="warning"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "sessions: 1\n" in result.stdout
    assert "refresh tokens: 2\n" in result.stdout
    assert "audit events: 0\n" in result.stdout
    assert await _ids(database_url, "sessions") == {live}
    assert ended not in await _ids(database_url, "sessions")
    assert (await fetch_all(database_url, "maintenance_runs"))[0]["task"] == "prune"
    # No keys or server secret needed, and nothing created for them.
    assert not (tmp_path / ".authgate").exists()


async def test_the_cli_names_the_database_setting_when_it_cannot_reach_it(
    tmp_path: Path,
) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        authgate_command("prune"),
        cwd=tmp_path,
        env=clean_environment(DATABASE_URL="mysql+asyncmy://root@127.0.0.1:1/authgate"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("authgate: error: DATABASE_URL / MYSQL_*: ")
    assert "Traceback" not in result.stderr


class _Sleeps:
    """Records each delay; ends the loop (as a cancellation would) after ``runs``."""

    def __init__(self, runs: int) -> None:
        self.delays: list[float] = []
        self._runs = runs

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if len(self.delays) > self._runs:
            raise asyncio.CancelledError


async def test_the_periodic_task_logs_a_database_error_and_carries_on(
    tmp_path: Path, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    # A database without the schema: every statement fails.
    empty = create_engine(URL.create("sqlite+aiosqlite", database=str(tmp_path / "empty.db")))
    sleeps = _Sleeps(runs=3)
    periodic = PeriodicPruning(
        _service(empty, clock),
        interval_seconds=3600,
        jitter_seconds=600,
        first_delay_seconds=120,
        sleep=sleeps,
        jitter=lambda: 0.5,
    )
    try:
        with caplog.at_level(logging.ERROR), pytest.raises(asyncio.CancelledError):
            await periodic.run_forever()
    finally:
        await empty.dispose()
    assert sleeps.delays == [420, 3900, 3900, 3900]
    failures = [r for r in caplog.records if "periodic pruning failed" in r.getMessage()]
    assert len(failures) == 3
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in failures)
    assert "no such table" in failures[0].getMessage()


async def test_the_periodic_task_survives_a_bug_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        async def run_if_due(self) -> PruneReport | None:
            raise RuntimeError("a bug")

    periodic = PeriodicPruning(Broken(), sleep=_Sleeps(runs=2), jitter=lambda: 0.0)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR), pytest.raises(asyncio.CancelledError):
        await periodic.run_forever()
    failures = [r for r in caplog.records if "periodic pruning failed" in r.getMessage()]
    assert len(failures) == 2
    assert failures[0].exc_info is not None


async def test_the_web_lifespan_runs_the_periodic_task(api: Any) -> None:
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "authgate-periodic-pruning"]
    assert not task.done()
    # The server answers meanwhile.
    assert (await api.client.get("/healthz")).status_code == 200


async def test_maintenance_marker_is_shared_per_task(
    engine: AsyncEngine, clock: FrozenClock
) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            insert(maintenance_runs), {"task": "other-task", "last_run_at": clock.now()}
        )
    assert await _service(engine, clock).run_if_due() == PruneReport()
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT task FROM maintenance_runs"))).all()
    assert sorted(row[0] for row in rows) == ["other-task", "prune"]


async def test_expired_one_time_tokens_and_finished_mail_go(
    rows: Rows, engine: AsyncEngine, clock: FrozenClock, database_url: URL
) -> None:
    from authgate.storage.tables import mail_outbox, one_time_tokens

    now = rows.now

    async def one_time_token(expires: timedelta, *, used: bool = False) -> UUID:
        token_id = uuid.uuid4()
        await rows._insert(
            one_time_tokens,
            id=token_id,
            user_id=rows.user_id,
            purpose="reset",
            token_hash=uuid.uuid4().hex * 2,
            email=None,
            created_at=now + expires - timedelta(minutes=30),
            expires_at=now + expires,
            used_at=now + expires - timedelta(minutes=1) if used else None,
        )
        return token_id

    async def mail(created: timedelta, sent: timedelta | None) -> UUID:
        mail_id = uuid.uuid4()
        await rows._insert(
            mail_outbox,
            id=mail_id,
            user_id=rows.user_id,
            purpose="verify",
            address=None,
            created_at=now + created,
            attempts=0 if sent is None else 1,
            next_attempt_at=now + created,
            locked_until=None,
            sent_at=None if sent is None else now + sent,
            last_error=None,
        )
        return mail_id

    expired = await one_time_token(-timedelta(minutes=1))
    used_and_expired = await one_time_token(-DAY, used=True)
    live = await one_time_token(timedelta(minutes=20))
    used_but_live = await one_time_token(timedelta(minutes=20), used=True)
    sent_long_ago = await mail(-40 * DAY, -40 * DAY)
    sent_recently = await mail(-DAY, -DAY)
    abandoned = await mail(-40 * DAY, None)
    abandoned_recently = await mail(-3 * DAY, None)
    still_retrying = await mail(-timedelta(hours=3), None)

    report = await _service(engine, clock).run()

    assert (report.one_time_tokens, report.mail) == (2, 2)
    assert expired not in await _ids(database_url, "one_time_tokens")
    assert used_and_expired not in await _ids(database_url, "one_time_tokens")
    assert await _ids(database_url, "one_time_tokens") == {live, used_but_live}
    assert sent_long_ago not in await _ids(database_url, "mail_outbox")
    assert abandoned not in await _ids(database_url, "mail_outbox")
    assert await _ids(database_url, "mail_outbox") == {
        sent_recently,
        abandoned_recently,
        still_retrying,
    }

    # Retention 0: sent mail goes at once, and so does mail given up on (queued
    # over two days ago); mail still within its retry schedule stays.
    zero = await _service(engine, clock, session_retention_days=0).run()
    assert zero.mail == 2
    assert await _ids(database_url, "mail_outbox") == {still_retrying}


async def _chain(
    rows: Rows, session_id: UUID, times: list[tuple[timedelta, timedelta]]
) -> list[UUID]:
    """Tokens of one rotation chain, oldest first, each the parent of the next."""
    chain: list[UUID] = []
    for issued, expires in times:
        parent = chain[-1] if chain else None
        chain.append(await rows.token(session_id, issued=issued, expires=expires, parent=parent))
    return chain


async def test_a_chain_is_pruned_from_its_old_end_and_its_session_lives(
    rows: Rows, engine: AsyncEngine, clock: FrozenClock, database_url: URL
) -> None:
    # Found by review: with a LIMIT and no order, a batch could delete a child but
    # not its parent, which then looked current (and idle-expired): the next run
    # deleted the live session. Batches of one make every interleaving possible.
    live = await rows.session(absolute=60 * DAY)
    old = [(-80 * DAY, -50 * DAY), (-80 * DAY, -50 * DAY), (-70 * DAY, -40 * DAY)]
    chain = await _chain(rows, live, [*old, (-1 * DAY, 29 * DAY)])
    service = _service(engine, clock, batch_size=1)
    first = await service.run()
    second = await service.run()
    assert (first.refresh_tokens, first.sessions) == (3, 0)
    assert (second.refresh_tokens, second.sessions) == (0, 0)
    assert await _ids(database_url, "sessions") == {live}
    assert await _ids(database_url, "refresh_tokens") == {chain[-1]}


async def test_many_live_sessions_survive_repeated_pruning(
    rows: Rows, engine: AsyncEngine, clock: FrozenClock, database_url: URL
) -> None:
    times = [(-90 * DAY + i * DAY, -60 * DAY + i * DAY) for i in range(4)]
    sessions = set()
    for _ in range(40):
        session_id = await rows.session(absolute=60 * DAY)
        await _chain(rows, session_id, [*times, (-1 * DAY, 29 * DAY)])
        sessions.add(session_id)
    service = _service(engine, clock, batch_size=7)
    for _ in range(3):
        await service.run()
    assert await _ids(database_url, "sessions") == sessions
    assert len(await _ids(database_url, "refresh_tokens")) == 40


async def test_pruning_never_makes_an_old_token_refreshable_again(
    rows: Rows, engine: AsyncEngine, clock: FrozenClock, database_url: URL
) -> None:
    # A child that expired before its parent (REFRESH_TOKEN_TTL_SECONDS lowered):
    # deleting it alone would let the parent rotate a second time.
    live = await rows.session(absolute=60 * DAY)
    parent, child, current = await _chain(
        rows, live, [(-10 * DAY, 20 * DAY), (-9 * DAY, -1 * DAY), (-1 * DAY, 29 * DAY)]
    )
    await _service(engine, clock, session_retention_days=0).run()
    assert await _ids(database_url, "refresh_tokens") == {parent, child, current}
