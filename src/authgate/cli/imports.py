"""``authgate import serverless-seed|timelapseme-seed --from mysql://...``."""

from __future__ import annotations

import os

from authgate.clock import SystemClock
from authgate.config import Settings
from authgate.crypto.passwords import Argon2Parameters, Argon2PasswordHasher
from authgate.importers import serverless_seed, timelapseme_seed
from authgate.importers.service import ImportService, SeedSchema
from authgate.importers.source import read_rows, source_url
from authgate.services.audit import AuditTrail
from authgate.storage.engine import create_engine
from authgate.storage.unit_of_work import SqlUnitOfWorkFactory

SCHEMAS = {
    module.NAME: SeedSchema(
        name=module.NAME,
        table=module.TABLE,
        query=module.QUERY,
        row_id=module.row_id,
        parse_row=module.parse_row,
    )
    for module in (serverless_seed, timelapseme_seed)
}


async def run_import(settings: Settings, *, seed: str, source: str, dry_run: bool = False) -> int:
    schema = SCHEMAS[seed]
    url = source_url(source)  # SourceError before anything is opened
    rows = await read_rows(url, table=schema.table, query=schema.query)
    engine = create_engine(settings.effective_database_url, pool_size=1)
    hasher = Argon2PasswordHasher(
        Argon2Parameters(
            time_cost=settings.password_hash_time_cost,
            memory_kib=settings.password_hash_memory_kib,
            parallelism=settings.password_hash_parallelism,
        ),
        workers=settings.password_hash_workers or os.cpu_count() or 1,
    )
    # The CLI is a composition root: the system clock is its to choose.
    clock = SystemClock()
    uow = SqlUnitOfWorkFactory(engine)
    service = ImportService(
        uow=uow, wrapper=hasher, clock=clock, audit=AuditTrail(uow=uow, clock=clock)
    )
    try:
        plan = await service.plan(schema, rows)
        if dry_run:
            for problem in plan.problems:
                print(problem.line())
            pending = await service.legacy_hashes_pending()
            print(
                f"dry run: {plan.rows} rows in {schema.table}: would import "
                f"{len(plan.to_add)} ({plan.kinds()}); {plan.count('duplicate')} duplicate, "
                f"{plan.count('exists')} already in authgate, {plan.count('invalid')} invalid; "
                f"nothing written; {pending} imported accounts not yet upgraded"
            )
            return 0
        added, raced = await service.apply(plan)
        for problem in [*plan.problems, *raced]:
            print(problem.line())
        pending = await service.legacy_hashes_pending()
        print(
            f"imported {added} of {plan.rows} rows from {schema.table} ({plan.kinds()}); "
            f"{plan.count('duplicate')} duplicate, {plan.count('exists') + len(raced)} "
            f"already in authgate, {plan.count('invalid')} invalid; "
            f"{pending} imported accounts not yet upgraded"
        )
        return 0
    finally:
        hasher.close()
        await engine.dispose()
