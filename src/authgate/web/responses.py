"""Helpers shared by route modules."""

from __future__ import annotations

from fastapi import Response

from authgate.domain.models import TokenPair
from authgate.web.schemas import TokenResponse

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def token_response(pair: TokenPair, response: Response) -> TokenResponse:
    # RFC 6749 §5.1: responses carrying tokens must not be cached.
    response.headers.update(NO_STORE)
    return TokenResponse(
        accessToken=pair.access_token,
        refreshToken=pair.refresh_token,
        expiresIn=pair.expires_in,
    )


def private(response: Response) -> None:
    response.headers.update(NO_STORE)
