"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs every request a task)."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Deeper JSON than this is not a sign-in request; refusing it early also keeps the
# parser far from Python's recursion limit.
MAX_JSON_DEPTH = 32
# DELETE too: DELETE /api/v1/me carries a confirmation body.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds {limit} bytes.")


class BodySizeLimit:
    """Refuse bodies over ``limit`` bytes without reading them into memory.

    A declared ``Content-Length`` over the limit is refused before the body is read;
    a chunked or lying body is cut off as soon as the running count passes it.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    await _send_413(send, self.limit)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # Whoever was reading the body (the JSON guard or a route) stops here.
            if started:
                raise
            await _send_413(send, self.limit)


async def _send_413(send: Send, limit: int) -> None:
    await send_problem(
        send,
        413,
        "Content Too Large",
        "body_too_large",
        f"The request body exceeds {limit} bytes.",
        close=True,
    )


async def send_problem(
    send: Send, status: int, title: str, code: str, detail: str, *, close: bool = False
) -> None:
    """A problem+json answer from middleware, before any route has run."""
    body = json.dumps(
        {
            "type": f"urn:authgate:problem:{code}",
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
        }
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        # BodySizeLimit runs outside SecurityHeaders: its 413 sets them itself.
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class DuplicateKey(ValueError):
    pass


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # {"email": "a", "email": "b"}: two parsers may disagree on which one wins
    # (one validating, another acting); refuse the ambiguity outright.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(key)
        result[key] = value
    return result


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(current, dict):
            stack.extend((v, level + 1) for v in current.values())
        elif isinstance(current, list):
            stack.extend((v, level + 1) for v in current)
    return deepest


def is_json_media_type(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


# RFC 6749 §3.2: the OAuth endpoints take form bodies. Their routes read the form
# themselves (web.oauth_forms) and answer anything else invalid_request.
FORM_PATHS = frozenset({"/oauth/token", "/oauth/revoke", "/oauth/introspect"})


class JsonRequestGuard:
    """Bodies of POST/PUT/PATCH/DELETE must be JSON, declared as such, unambiguous and shallow.

    Runs inside :class:`BodySizeLimit`, so the body it buffers is already bounded.
    Wrong ``Content-Type`` -> 415; duplicate keys, nesting over ``MAX_JSON_DEPTH``
    or invalid JSON (including anything but UTF-8 without a BOM) -> 400. The body is
    then replayed to the app unchanged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in _BODY_METHODS
            or scope["path"] in FORM_PATHS
        ):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # client went away; let the app see it
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if body.strip():
            content_type = ""
            for name, value in scope.get("headers", ()):
                if name == b"content-type":
                    content_type = value.decode("latin-1")
            if not is_json_media_type(content_type):
                await send_problem(
                    send,
                    415,
                    "Unsupported Media Type",
                    "unsupported_media_type",
                    "Send the body as JSON with Content-Type: application/json.",
                )
                return
            problem = _json_problem(body)
            if problem is not None:
                await send_problem(send, 400, "Bad Request", *problem)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


_NOT_UTF8 = (
    "malformed_json",
    "The request body must be JSON encoded as UTF-8, without a byte order mark.",
)


def _json_problem(body: bytes) -> tuple[str, str] | None:
    # RFC 8259 §8.1: JSON exchanged between systems MUST be UTF-8 and MUST NOT start
    # with a byte order mark. json.loads(bytes) would guess UTF-16/32 and skip a
    # UTF-8 BOM, so a body another parser (a proxy, a WAF) reads differently would
    # reach the route; decoding strictly here leaves one reading. A NUL byte is
    # never valid JSON text: it is how UTF-16/32 without a BOM looks in UTF-8.
    if body.startswith(b"\xef\xbb\xbf") or b"\x00" in body:
        return _NOT_UTF8
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return _NOT_UTF8
    try:
        parsed = json.loads(text, object_pairs_hook=_reject_duplicates)
    except DuplicateKey as exc:
        return "duplicate_key", f"The JSON body repeats the key {str(exc)[:64]!r}."
    except RecursionError:
        return "too_deep", f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels."
    except ValueError:
        return "malformed_json", "The request body is not valid JSON."
    if _depth(parsed) > MAX_JSON_DEPTH:
        return "too_deep", f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels."
    return None


class SecurityHeaders:
    """Headers every response carries. Token responses add ``no-store`` themselves."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if b"referrer-policy" not in names:
                    headers.append((b"referrer-policy", b"no-referrer"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
