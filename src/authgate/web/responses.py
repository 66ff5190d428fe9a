"""Helpers shared by route modules."""

from __future__ import annotations

import json

from fastapi import Response

from authgate.domain.models import TokenPair

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def token_response(pair: TokenPair) -> Response:
    """The token answer (RFC 6749 §5.1: never cached), serialized here.

    Built directly rather than returned as a ``TokenResponse`` for FastAPI to
    validate and serialize again: every sign-in and refresh ends here. The route
    keeps ``response_model=TokenResponse``, so the schema documents this shape."""
    body = json.dumps(
        {
            "accessToken": pair.access_token,
            "refreshToken": pair.refresh_token,
            "tokenType": "Bearer",
            "expiresIn": pair.expires_in,
        },
        # Compact, byte for byte what FastAPI's own serializer produced before.
        separators=(",", ":"),
    )
    return Response(body, media_type="application/json", headers=NO_STORE)


def private(response: Response) -> None:
    response.headers.update(NO_STORE)
