"""``authgate import serverless-seed|timelapseme-seed --from mysql://...``."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from authgate.bootstrap import Overrides
from authgate.cli.operator import cli_services
from authgate.config import Settings
from authgate.importers import serverless_seed, timelapseme_seed
from authgate.importers.service import ImportService, SeedSchema
from authgate.importers.source import read_rows, source_url

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
    # Every core hashes: wrapping each imported hash in argon2id is the slow part.
    workers = settings.password_hash_workers or os.cpu_count() or 1
    async with cli_services(settings, Overrides(pool_size=1, hashing_workers=workers)) as services:
        return await _import(services.importer, schema, rows, dry_run=dry_run)


async def _import(
    service: ImportService,
    schema: SeedSchema,
    rows: Sequence[Mapping[str, object]],
    *,
    dry_run: bool,
) -> int:
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
