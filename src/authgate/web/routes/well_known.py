"""JWKS and health probes."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import text

from authgate.errors import Unavailable
from authgate.web.deps import AppContainer
from authgate.web.schemas import HealthResponse

router = APIRouter(tags=["well-known"])


@router.get("/.well-known/jwks.json", response_class=Response)
async def jwks(container: AppContainer) -> Response:
    # Serialized once at start-up: the key set cannot change while we run.
    return Response(
        content=container.jwks_body,
        media_type="application/json",
        headers={"Cache-Control": f"public, max-age={container.jwks_max_age_seconds}"},
    )


@router.get("/healthz", response_model=HealthResponse)
async def healthz() -> HealthResponse:
    return HealthResponse(status="ok")


@router.get("/readyz", response_model=HealthResponse)
async def readyz(container: AppContainer) -> HealthResponse:
    try:
        async with container.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise Unavailable("The database is not reachable.", detail_for_log=repr(exc)) from None
    return HealthResponse(status="ok")
