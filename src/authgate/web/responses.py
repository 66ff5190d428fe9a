"""Helpers shared by route modules."""

from __future__ import annotations

import json

from fastapi import Response

from authgate.domain.models import TokenPair
from authgate.services.accounts import VerificationRequired

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def private_json(payload: dict[str, object]) -> Response:
    """A JSON answer that carries a token or personal data: never cached.

    Serialized here rather than returned as a model for FastAPI to validate and
    serialize again: token checks, sign-ins and refreshes all end here. Routes keep
    their ``response_model``, so the schema still documents each shape."""
    # Compact, byte for byte what FastAPI's own serializer produces.
    body = json.dumps(payload, separators=(",", ":"))
    return Response(body, media_type="application/json", headers=NO_STORE)


def token_response(pair: TokenPair) -> Response:
    """The token answer (RFC 6749 §5.1: never cached)."""
    return private_json(
        {
            "accessToken": pair.access_token,
            "refreshToken": pair.refresh_token,
            "tokenType": "Bearer",
            "expiresIn": pair.expires_in,
        }
    )


def sign_up_response(outcome: TokenPair | VerificationRequired) -> Response:
    """Tokens, or 202 when EMAIL_VERIFICATION=required holds the session back."""
    if isinstance(outcome, VerificationRequired):
        response = private_json({"emailVerificationRequired": True})
        response.status_code = 202
        return response
    return token_response(outcome)


def private(response: Response) -> None:
    response.headers.update(NO_STORE)
