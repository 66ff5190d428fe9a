"""JWKS and health probes."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import text

from authgate.errors import Unavailable
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
            result = await connection.execute(text("SELECT version_num FROM alembic_version"))
            revision = result.scalar()
    except Exception as exc:
        # Unreachable, or reachable but never migrated (AUTO_MIGRATE=false): either
        # way every request would fail, so a load balancer must not send any. Any
        # other exception is a bug and stays one (500).
        if not is_database_outage(exc):
            raise
        raise Unavailable(
            "The database is not reachable or not migrated.", detail_for_log=repr(exc)
        ) from None
    if services.schema_revision is not None and revision != services.schema_revision:
        raise Unavailable(
            "The database schema is not at the version this server needs; run authgate migrate.",
            detail_for_log=f"schema at {revision!r}, code expects {services.schema_revision!r}",
        )
    return HealthResponse(status="ok")
