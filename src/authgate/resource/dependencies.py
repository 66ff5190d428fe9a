"""FastAPI: a dependency factory that guards a route with a :class:`TokenVerifier`.

``fastapi`` is imported when :func:`require_token` is called, never when
:mod:`authgate.resource` is imported, so services on other frameworks do not need it.
Refusals are raised as ``HTTPException``, which every FastAPI app answers on its own
(no error handler to install): 401 ``invalid_token``, 403 ``insufficient_scope``, 503
when keys or introspection cannot be reached.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependency's
# annotations at run time, and ``Request`` is imported inside the factory.

import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from authgate.resource.bearer import bearer_token, challenge
from authgate.resource.claims import Claims
from authgate.resource.errors import InsufficientScope, InvalidToken, VerifierUnavailable
from authgate.resource.verifier import TokenVerifier

logger = logging.getLogger(__name__)


def require_token(
    verifier: TokenVerifier,
    *,
    scopes: Iterable[str] = (),
    audience: "str | Iterable[str] | None" = None,
    introspect: bool = False,
    realm: "str | None" = None,
) -> Callable[..., Coroutine[Any, Any, Claims]]:
    """A dependency returning the request's verified :class:`Claims`.

    ::

        User = Annotated[Claims, Depends(require_token(verifier))]
        Admin = Annotated[Claims, Depends(require_token(verifier, scopes=["admin"]))]

        @app.get("/orders")
        async def orders(user: User): ...
    """
    from fastapi import HTTPException, Request, Security
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    if introspect and verifier.introspection is None:
        raise ValueError("introspect=True needs a TokenVerifier(introspection=...)")
    required = frozenset(scopes)
    # Declares the Bearer scheme in the OpenAPI document; the header is read below.
    scheme = HTTPBearer(auto_error=False, scheme_name="bearer")

    async def verified_claims(
        request: Request,
        _credentials: HTTPAuthorizationCredentials | None = Security(scheme),  # noqa: B008
    ) -> Claims:
        try:
            values = request.headers.getlist("authorization")
            if len(values) > 1:
                raise InvalidToken("several Authorization headers")
            token = bearer_token(values[0] if values else None)
            return await verifier.verify(
                token, audience=audience, scopes=required, introspect=introspect
            )
        except InsufficientScope as exc:
            logger.info("bearer token refused: %s", exc.reason)
            header = challenge("insufficient_scope", realm=realm, scopes=required)
            raise HTTPException(
                403, detail="insufficient_scope", headers={"WWW-Authenticate": header}
            ) from None
        except InvalidToken as exc:
            logger.info("bearer token refused: %s", exc.reason)
            header = challenge("invalid_token", realm=realm)
            raise HTTPException(
                401, detail="invalid_token", headers={"WWW-Authenticate": header}
            ) from None
        except VerifierUnavailable as exc:
            logger.warning("bearer token not verifiable now: %s", exc)
            raise HTTPException(
                503, detail="temporarily_unavailable", headers={"Retry-After": "5"}
            ) from None

    return verified_claims
