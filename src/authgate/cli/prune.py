"""``authgate prune``: delete what has outlived its retention, once, now."""

from __future__ import annotations

from authgate.cli.operator import cli_services
from authgate.config import Settings
from authgate.services.pruning import PruneReport


async def prune(settings: Settings) -> PruneReport:
    async with cli_services(settings) as services:
        return await services.pruning.run()
