"""Protecting routes: a declarative guard (a dependency) and one explicit call.

Both read ``Authorization: Bearer <token>`` and verify it locally with the same
``authgate.resource.TokenVerifier`` that other services import; neither touches the
database, so a protected request costs one signature check, and a token seen before
a dictionary look-up. Refusals are ``InvalidAccessToken``: a 401 problem body with
``WWW-Authenticate: Bearer error="invalid_token"`` (web/problems.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from authgate.errors import InvalidAccessToken, Unavailable
from authgate.resource import Claims, InvalidToken, VerifierUnavailable
from authgate.web.deps import services_of


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


async def authenticate(request: Request, *, accept_legacy_header: bool = False) -> Claims:
    """Verify the request's Bearer token and return its claims, or raise 401.

    Call it from any handler to protect it by hand.
    """
    verifier = services_of(request).access_token_verifier
    token = bearer_token(request, accept_legacy_header=accept_legacy_header)
    try:
        return await verifier.verify(token)
    except InvalidToken as exc:
        # One failure mode to the caller; which check failed goes to the log only.
        raise InvalidAccessToken(detail_for_log=exc.reason) from None
    except VerifierUnavailable as exc:  # not with the server's own keys; kept for a ring
        raise Unavailable(detail_for_log=str(exc)) from None


async def require_access_token(request: Request) -> Claims:
    return await authenticate(request)


# The declarative guard: annotate a parameter with it and the route is protected.
CurrentClaims = Annotated[Claims, Depends(require_access_token)]


def session_of(claims: Claims) -> str:
    """The ``sid`` of a user token; the guard refuses tokens without one."""
    if claims.sid is None:  # pragma: no cover - require_session=True refused it already
        raise InvalidAccessToken(detail_for_log="no sid")
    return claims.sid
