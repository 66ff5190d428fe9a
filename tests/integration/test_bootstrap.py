"""The composition root (authgate.bootstrap) on a real database: services built on
first use, closed in one place, and the periodic work run once as a scheduled step."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from authgate.bootstrap import (
    BackgroundJob,
    Overrides,
    background_jobs,
    open_services,
    run_scheduled_tasks,
    running_in_background,
)
from authgate.clock import FrozenClock
from authgate.domain.models import ClientInfo
from authgate.services.accounts import SignUp
from tests.support.hashing import parameters_of, watched_hasher
from tests.support.rows import fetch_all

CLIENT = ClientInfo(address="192.0.2.1", user_agent="pytest")


def test_importing_the_composition_root_imports_no_web_framework_and_no_adapter() -> None:
    """A Lambda's cold start pays for the import: nothing a request may not need."""
    heavy = ("fastapi", "starlette", "sqlalchemy", "alembic", "httpx", "argon2", "redis")
    probe = (
        "import sys, authgate.bootstrap\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


async def test_a_service_is_built_on_first_use_and_the_operators_need_no_secret(
    make_settings: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    # A database ring and no SECRET_KEY: the development secret would be a file.
    settings = make_settings(jwt_private_key_path=None, jwt_public_key_path=None)
    async with open_services(settings, clock=clock) as services:
        assert "engine" not in vars(services)
        await services.pruning.run()
        assert (await services.operator_clients.list_all())[0].is_default
        assert await services.admin.list_users(limit=10) == ([], 0)
        # No secret was loaded (none written), no key ring, no throttle, no HTTP client.
        built = set(vars(services))
        assert {"server_secret", "key_ring", "throttle", "http"}.isdisjoint(built)
        assert not (tmp_path / "data" / "secret.key").exists()
        assert services.sessions is services.sessions  # built once


async def test_services_are_read_only(make_settings: Any, clock: FrozenClock) -> None:
    async with open_services(make_settings(), clock=clock) as services:
        with pytest.raises(AttributeError, match="read-only"):
            services.clock = clock


async def test_closing_closes_what_was_opened_and_leaves_an_injected_hasher_alone(
    make_settings: Any, clock: FrozenClock
) -> None:
    settings = make_settings()
    with watched_hasher(parameters_of(settings)) as (injected, _jobs):
        async with open_services(
            settings, clock=clock, overrides=Overrides(hasher=injected)
        ) as services:
            assert services.hasher is injected
            http = services.http
            async with services.engine.connect():
                pass
        assert http.is_closed
        # The caller's hasher still hashes: closing the services did not shut it.
        assert await injected.verify(await injected.hash("x"), "x")
    async with open_services(settings, clock=clock) as own:
        hasher = own.hasher
    with pytest.raises(RuntimeError):
        await hasher.hash("x")  # our own pool is shut down with the services


async def test_a_scheduled_run_prunes_delivers_the_mail_and_steps_the_key_ring(
    make_settings: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    settings = make_settings(
        jwt_private_key_path=None, jwt_public_key_path=None, email_verification="required"
    )
    async with open_services(settings, clock=clock) as services:
        await services.load_key_ring()
        assert services.key_ring.key_set is not None  # created on first start
        await services.accounts.sign_up(SignUp("cow@cow.jp", "Moo00!_*&x"), CLIENT)
        assert len(await fetch_all(settings.effective_database_url, "mail_outbox")) == 1

        report = await run_scheduled_tasks(services)

        assert report.failed == ()
        assert report.mails_processed == 1
        assert len(list((tmp_path / "data" / "outbox").glob("*.eml"))) == 1
        assert report.pruned is not None  # the first run of the hour prunes
        assert report.key_ring_refreshed is True
        again = await run_scheduled_tasks(services)
        assert (again.pruned, again.mails_processed) == (None, 0)  # pruned this hour already


async def test_a_scheduled_run_reports_a_step_that_failed_and_still_runs_the_others(
    make_settings: Any, clock: FrozenClock, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    # A database ring on a database that cannot be opened.
    settings = make_settings(
        jwt_private_key_path=None,
        jwt_public_key_path=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/missing/authgate.db",
    )
    async with open_services(settings, clock=clock) as services:
        with caplog.at_level(logging.ERROR, logger="authgate"):
            # Nothing is raised to the scheduler; every step is tried.
            report = await run_scheduled_tasks(services)
    assert report.pruned is None
    assert report.mails_processed == 0
    assert report.failed == ("mail", "key_ring")
    assert "periodic pruning failed" in caplog.text


async def test_background_jobs_are_stopped_gracefully_or_cancelled_when_the_block_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished: list[str] = []
    stopping = asyncio.Event()

    async def graceful() -> None:
        await stopping.wait()
        finished.append("graceful")

    async def stubborn() -> None:
        await asyncio.Event().wait()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            finished.append("cancelled")

    jobs = [
        BackgroundJob("graceful", graceful, stop=stopping.set, stop_timeout_seconds=5),
        BackgroundJob("stubborn", stubborn, stop=lambda: None, stop_timeout_seconds=0.01),
        BackgroundJob("forever", forever),
    ]
    with caplog.at_level(logging.WARNING, logger="authgate"):
        async with running_in_background(jobs):
            await asyncio.sleep(0)
            assert finished == []
    assert finished == ["cancelled", "graceful"]  # the last started stops first
    assert "stubborn did not stop in time" in caplog.text


async def test_the_server_background_jobs_stop_at_once_even_right_after_they_start(
    make_settings: Any, clock: FrozenClock
) -> None:
    """A stop asked before the mail drainer's first step used to be lost (its run
    clears the stop flag), so the lifespan waited SMTP_TIMEOUT_SECONDS + 5 to end."""
    settings = make_settings(jwt_private_key_path=None, jwt_public_key_path=None)
    async with open_services(settings, clock=clock) as services:
        await services.load_key_ring()
        jobs = background_jobs(services)
        assert [job.name for job in jobs] == [
            "authgate-mail",
            "authgate-periodic-pruning",
            "authgate-key-ring",
        ]
        # The drainer alone: nothing else yields to the loop before it is stopped.
        async with asyncio.timeout(5):
            async with running_in_background(jobs[:1]):
                pass
        async with asyncio.timeout(5):
            async with running_in_background(jobs):
                pass
