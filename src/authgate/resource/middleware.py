"""An ASGI middleware that lets only requests with a valid Bearer token through.

Plain ASGI (no Starlette import): it works around any ASGI app, FastAPI and Starlette
included. The claims land in ``scope["state"]["claims"]``, which Starlette and FastAPI
show as ``request.state.claims``. Refusals are answered here, without the app's error
handlers: 401 ``invalid_token``, 403 ``insufficient_scope``, 503 when keys cannot be had;
a WebSocket is closed with 1008 (policy violation) before it is accepted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from authgate.resource.bearer import bearer_token, challenge
from authgate.resource.errors import InsufficientScope, InvalidToken, VerifierUnavailable
from authgate.resource.verifier import TokenVerifier

logger = logging.getLogger(__name__)

_Scope = MutableMapping[str, Any]
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_ASGIApp = Callable[[_Scope, _Receive, _Send], Awaitable[None]]


class BearerTokenMiddleware:
    """Guard every HTTP and WebSocket request of ``app`` but ``public_paths``.

    ``app.add_middleware(BearerTokenMiddleware, verifier=verifier, public_paths={"/healthz"})``
    """

    def __init__(
        self,
        app: _ASGIApp,
        *,
        verifier: TokenVerifier,
        scopes: Iterable[str] = (),
        audience: str | Iterable[str] | None = None,
        introspect: bool = False,
        public_paths: Iterable[str] = (),
        realm: str | None = None,
    ) -> None:
        if introspect and verifier.introspection is None:
            raise ValueError("introspect=True needs a TokenVerifier(introspection=...)")
        self.app = app
        self.verifier = verifier
        self.scopes = frozenset(scopes)
        self.audience = audience
        self.introspect = introspect
        self.public_paths = frozenset(public_paths)
        self.realm = realm

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in self.public_paths:
            await self.app(scope, receive, send)
            return
        values = [v for k, v in scope.get("headers", ()) if k.lower() == b"authorization"]
        try:
            if len(values) > 1:
                raise InvalidToken("several Authorization headers")
            header = values[0].decode("latin-1") if values else None
            claims = await self.verifier.verify(
                bearer_token(header),
                audience=self.audience,
                scopes=self.scopes,
                introspect=self.introspect,
            )
        except InsufficientScope as exc:
            logger.info("bearer token refused: %s", exc.reason)
            await self._refuse(scope, send, 403, "insufficient_scope")
            return
        except InvalidToken as exc:
            logger.info("bearer token refused: %s", exc.reason)
            await self._refuse(scope, send, 401, "invalid_token")
            return
        except VerifierUnavailable as exc:
            logger.warning("bearer token not verifiable now: %s", exc)
            await self._refuse(scope, send, 503, "temporarily_unavailable")
            return
        scope.setdefault("state", {})["claims"] = claims
        await self.app(scope, receive, send)

    async def _refuse(self, scope: _Scope, send: _Send, status: int, error: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"detail": error}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ]
        if status == 503:
            headers.append((b"retry-after", b"5"))
        else:
            scopes = self.scopes if status == 403 else ()
            value = challenge(error, realm=self.realm, scopes=scopes)
            headers.append((b"www-authenticate", value.encode("latin-1")))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
