"""JWKS and health probes."""

from __future__ import annotations

from fastapi import APIRouter, Response

from authgate.errors import Unavailable
from authgate.storage import schema_window
from authgate.storage.faults import is_database_outage
from authgate.web.deps import AppServices
from authgate.web.schemas import HealthResponse

router = APIRouter(tags=["well-known"])


@router.get("/.well-known/jwks.json", response_class=Response)
async def jwks(services: AppServices) -> Response:
    # Serialized once per ring snapshot; a rotation swaps the whole body.
    return Response(
        content=services.key_ring.jwks_body,
        media_type="application/json",
        headers={"Cache-Control": f"public, max-age={services.settings.jwks_max_age_seconds}"},
    )


@router.get("/healthz", response_model=HealthResponse)
async def healthz() -> HealthResponse:
    return HealthResponse(status="ok")


@router.get("/readyz", response_model=HealthResponse)
async def readyz(services: AppServices) -> HealthResponse:
    try:
        async with services.engine.connect() as connection:
            verdict = (
                await schema_window.check(connection, services.schema_revision)
                if services.schema_revision is not None
                else None
            )
    except Exception as exc:
        # Unreachable, or reachable but never migrated (AUTO_MIGRATE=false): either
        # way every request would fail, so a load balancer must not send any. Any
        # other exception is a bug and stays one (500).
        if not is_database_outage(exc):
            raise
        raise Unavailable(
            "The database is not reachable or not migrated.", detail_for_log=repr(exc)
        ) from None
    # Expand/contract: a database ahead of the code is served within its window.
    if verdict is not None and not verdict.ready:
        raise Unavailable(
            f"The database schema is not at a version this server serves; {verdict.action}.",
            detail_for_log=verdict.reason,
        )
    return HealthResponse(status="ok")
