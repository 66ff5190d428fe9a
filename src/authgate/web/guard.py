"""Protecting routes: a declarative guard (a dependency) and one explicit call.

Both read ``Authorization: Bearer <token>`` and verify it locally; neither touches
the database, so a protected request costs one signature check.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from authgate.domain.models import AccessClaims
from authgate.errors import InvalidAccessToken
from authgate.web.container import Container


def bearer_token(request: Request, *, accept_legacy_header: bool = False) -> str:
    header = request.headers.get("authorization")
    if header is None and accept_legacy_header:
        # The Serverless seed's manual check read a header literally named
        # "bearer" holding the bare token; its clients keep working here.
        legacy = request.headers.get("bearer")
        if legacy:
            return legacy.strip(" ")
    if not header:
        raise InvalidAccessToken(detail_for_log="no Authorization header")
    scheme, _, token = header.partition(" ")
    # RFC 6750 §2.1: "Bearer" 1*SP b64token. Only spaces are trimmed; any other
    # character around the token (a tab, a form feed, a no-break space) is left for
    # the verifier to refuse, so one token has one accepted spelling.
    token = token.strip(" ")
    if scheme.lower() != "bearer" or not token:
        raise InvalidAccessToken(detail_for_log="Authorization is not a Bearer token")
    return token


def authenticate(request: Request, *, accept_legacy_header: bool = False) -> AccessClaims:
    """Verify the request's Bearer token and return its claims, or raise 401.

    Call it from any handler to protect it by hand.
    """
    container: Container = request.app.state.container
    token = bearer_token(request, accept_legacy_header=accept_legacy_header)
    return container.access_tokens.verify(token, now=container.clock.now())


async def require_access_token(request: Request) -> AccessClaims:
    return authenticate(request)


# The declarative guard: annotate a parameter with it and the route is protected.
CurrentClaims = Annotated[AccessClaims, Depends(require_access_token)]
