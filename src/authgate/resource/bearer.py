"""RFC 6750 on the wire: reading ``Authorization: Bearer`` and writing the challenge.

Framework-free, so the FastAPI dependency, the ASGI middleware and your own code share
one reading of the header and one answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from authgate.resource.errors import InvalidToken

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 6750 §3: scope tokens are %x21 / %x23-5B / %x5D-7E (no quote or backslash).
_SCOPE_TOKEN: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header value.

    The scheme is case-insensitive (RFC 9110 §11.1); anything else, including a
    missing header, raises :class:`InvalidToken`.
    """
    if not authorization:
        raise InvalidToken("no Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("Authorization is not a Bearer token")
    if not _B64TOKEN.fullmatch(token):
        raise InvalidToken("Bearer credentials are not a b64token")
    return token


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(
    error: str = "invalid_token", *, realm: str | None = None, scopes: Iterable[str] = ()
) -> str:
    """A ``WWW-Authenticate`` value (RFC 6750 §3), e.g. ``Bearer error="invalid_token"``.

    ``scopes`` are named with ``insufficient_scope`` so the client knows what to ask for.
    No ``error_description``: the reason a token failed is for the log only.
    """
    params = []
    if realm is not None:
        params.append(f"realm={_quoted(realm)}")
    params.append(f"error={_quoted(error)}")
    wanted = sorted(scope for scope in scopes if _SCOPE_TOKEN.fullmatch(scope))
    if wanted:
        params.append(f"scope={_quoted(' '.join(wanted))}")
    return "Bearer " + ", ".join(params)
