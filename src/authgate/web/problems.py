"""The one place where errors become HTTP: RFC 9457 problem+json bodies.

Domain errors carry a stable ``code``; this module decides the status, the body and
the ``WWW-Authenticate`` header. Nothing else builds an error response.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, ExceptionHandler, Message, Receive, Scope, Send

from authgate import errors

logger = logging.getLogger("authgate.errors")

PROBLEM_CONTENT_TYPE = "application/problem+json"
_BEARER_CHALLENGE = 'Bearer realm="authgate", error="invalid_token"'
_REALM_CHALLENGE = 'Bearer realm="authgate"'

# Most specific first: the first matching class decides the status.
_STATUS: tuple[tuple[type[errors.AuthError], int], ...] = (
    (errors.InvalidClient, 401),
    (errors.InvalidInput, 422),
    (errors.Conflict, 409),
    (errors.NotFound, 404),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.TooManyRequests, 429),
    (errors.Unavailable, 503),
)


# What every response carries (see also web.middleware.SecurityHeaders).
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_CONTENT_TYPE


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:authgate:problem:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if extra:
        body.update(extra)
    # The security headers are set here too, not only by the SecurityHeaders
    # middleware: a 500 is answered by Starlette's outermost error middleware,
    # which no middleware of ours wraps.
    all_headers = {"Cache-Control": "no-store", **SECURITY_HEADERS}
    all_headers.update(headers or {})
    return ProblemResponse(body, status_code=status, headers=all_headers)


def status_for(error: errors.AuthError) -> int:
    for error_type, status in _STATUS:
        if isinstance(error, error_type):
            return status
    return 400


def auth_error_response(error: errors.AuthError) -> Response:
    status = status_for(error)
    headers: dict[str, str] = {}
    if status == 401:
        invalid_token = isinstance(error, errors.InvalidAccessToken)
        headers["WWW-Authenticate"] = _BEARER_CHALLENGE if invalid_token else _REALM_CHALLENGE
    if isinstance(error, errors.TooManyRequests):
        headers["Retry-After"] = str(error.retry_after_seconds)
    if status == 503:
        headers["Retry-After"] = "5"
    if error.detail_for_log:
        # The reason is for operators; the client gets the stable code and message.
        logger.info("%s: %s", error.code, error.detail_for_log)
    return problem(status, error.code, error.message, headers=headers)


# RFC 6749 §5.1/§5.2: token answers and errors are never cached.
OAUTH_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error_response(error: errors.AuthError) -> Response:
    """An error of /oauth/* in RFC 6749 §5.2 form: ``{"error", "error_description"}``.

    ``invalid_client`` is 401 with a ``Basic`` challenge (§5.2); throttling and
    outages keep their 429/503 problem answers (with Retry-After); every other
    refusal is 400, a refused refresh token ``invalid_grant``."""
    if isinstance(error, errors.TooManyRequests | errors.Unavailable):
        return auth_error_response(error)
    headers = {**OAUTH_NO_STORE, **SECURITY_HEADERS}
    status = 400
    if isinstance(error, errors.OAuthError):
        code, description = error.code, error.message
        if isinstance(error, errors.InvalidClient):
            status = 401
            headers["WWW-Authenticate"] = 'Basic realm="authgate"'
    elif isinstance(error, errors.InvalidRefreshToken):
        code, description = errors.InvalidGrant.code, errors.InvalidGrant.message
    else:
        code, description = errors.OAuthInvalidRequest.code, error.message
    if error.detail_for_log:
        logger.info("oauth %s: %s", code, error.detail_for_log)
    return JSONResponse(
        {"error": code, "error_description": description}, status_code=status, headers=headers
    )


async def _on_auth_error(_request: Request, exc: errors.AuthError) -> Response:
    return auth_error_response(exc)


async def _on_validation_error(_request: Request, exc: RequestValidationError) -> Response:
    details = exc.errors()
    if any(item.get("type") == "json_invalid" for item in details):
        return problem(400, "malformed_json", "The request body is not valid JSON.")
    # Never echo "input": it may be a password.
    fields = [
        {
            "field": ".".join(str(p) for p in item.get("loc", ()) if p != "body"),
            "message": item.get("msg", ""),
        }
        for item in details
    ]
    return problem(
        422,
        "validation_failed",
        "The request body does not have the expected fields and types.",
        extra={"errors": fields},
    )


async def _on_http_error(_request: Request, exc: StarletteHTTPException) -> Response:
    status = exc.status_code
    code = {
        400: "bad_request",
        404: "not_found",
        405: "method_not_allowed",
        413: "body_too_large",
        429: "too_many_requests",
        415: "unsupported_media_type",
    }.get(status, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    return problem(status, code, detail, headers=dict(exc.headers or {}))


async def _on_unexpected(_request: Request, exc: Exception) -> Response:
    # A bug, not bad input: log it with the trace, tell the client nothing more.
    logger.error("unhandled error", exc_info=exc)
    return problem(500, "internal_error", "An unexpected error occurred.")


class UnexpectedErrorBoundary:
    """Answers a bug with the 500 problem and lets the exception go no further.

    Starlette's own last resort (``ServerErrorMiddleware``, which calls
    ``_on_unexpected`` too) re-raises after answering, for the server to log; and
    uvicorn closes the connection of any request whose app raised, even though the
    500 was sent, so every 500 also cost the client its keep-alive connection (a
    request already sent on it saw a reset). Installed just outside the exception
    handlers, so it sees only what none of them handles. A response already
    started cannot be finished honestly: that one is re-raised and closed.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            response = await _on_unexpected(Request(scope), exc)
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    # Starlette types handlers as taking any Exception; each is registered for
    # exactly the class it accepts.
    app.add_exception_handler(errors.AuthError, cast(ExceptionHandler, _on_auth_error))
    app.add_exception_handler(RequestValidationError, cast(ExceptionHandler, _on_validation_error))
    app.add_exception_handler(StarletteHTTPException, cast(ExceptionHandler, _on_http_error))
    app.add_exception_handler(Exception, _on_unexpected)
    # Added before any other middleware, so it runs innermost of them: right
    # outside the exception handlers above.
    app.add_middleware(UnexpectedErrorBoundary)
