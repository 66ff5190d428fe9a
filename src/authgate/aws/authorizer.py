"""An API Gateway Lambda authorizer for authgate's access tokens.

It imports :mod:`authgate.resource` and the standard library only (no FastAPI, no
SQLAlchemy, no pydantic-settings): a small package and a short cold start. Configured
by environment variables:

* ``JWT_ISSUER`` (required): the ``iss`` our tokens carry;
* ``JWT_AUDIENCE``: accepted audiences, comma-separated (default ``authgate``);
* ``JWKS_URL``: where the keys are published (default ``{JWT_ISSUER}/.well-known/jwks.json``);
* ``AUTHORIZER_ROUTES``: optional JSON of per-route requirements, keyed by route
  (``"POST /secure"``, or ``"ANY /secure"``): ``{"scopes": ["orders:read"],
  "serviceTokens": true}``. By default every route needs a user token (one with a
  ``sid``: a session) and no scope.

Answers, by event kind:

* REST API ``TOKEN`` and ``REQUEST`` authorizers (and HTTP API payload 1.0): an IAM
  policy. A missing or bad token raises ``Exception("Unauthorized")``, which API
  Gateway answers 401. A valid token is allowed on every route of the stage
  (``.../{stage}/*/*``), so a cached policy never wrongly denies another route. A valid
  token that fails the route's requirement gets a Deny for that route: 403.
* HTTP API payload 2.0 (simple responses): ``{"isAuthorized": bool, "context": {...}}``.
  Any refusal is ``isAuthorized: false``, which API Gateway answers **403**; it
  answers 401 only when the identity source (the ``Authorization`` header) is missing,
  without calling us.

The verifier (and its JWKS cache) lives at module level: it survives between the
invocations a warm container serves, on one event loop kept for the container's life.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from authgate.resource import (
    Claims,
    InvalidToken,
    TokenVerifier,
    bearer_token,
)

logger = logging.getLogger(__name__)

DEFAULT_AUDIENCE: Final = "authgate"
UNAUTHORIZED: Final = "Unauthorized"  # the message API Gateway maps to 401


@dataclass(frozen=True)
class RouteRule:
    """What a route asks of a valid token beyond the verifier's checks."""

    scopes: frozenset[str] = frozenset()
    # A service token (client_credentials: no sid, no user session) may pass.
    service_tokens: bool = False


USER_ROUTE: Final = RouteRule()


@dataclass(frozen=True)
class Route:
    """Where the request goes: the ARN parts a policy is built from, and its route key."""

    partition: str
    region: str
    account: str
    api_id: str
    stage: str
    method: str
    path: str
    arn: str

    @property
    def stage_arn(self) -> str:
        """Every method and resource of the stage: what an Allow covers."""
        api = f"{self.region}:{self.account}:{self.api_id}"
        return f"arn:{self.partition}:execute-api:{api}/{self.stage}/*/*"

    @classmethod
    def parse(cls, arn: object) -> Route:
        """``arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{verb}/{resource}``."""
        if not isinstance(arn, str):
            raise ValueError("no method ARN")
        parts = arn.split(":", 5)
        # Any partition (aws, aws-cn, aws-us-gov): the shape is the same.
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "execute-api" or not parts[1]:
            raise ValueError(f"not an execute-api ARN: {arn!r}")
        region, account, rest = parts[3], parts[4], parts[5]
        segments = rest.split("/", 3)
        if len(segments) < 3 or not all(segments[:3]):
            raise ValueError(f"not a method ARN: {arn!r}")
        api_id, stage, method = segments[:3]
        path = "/" + (segments[3] if len(segments) > 3 else "")
        return cls(parts[1], region, account, api_id, stage, method.upper(), path, arn)


def parse_routes(text: str) -> dict[str, RouteRule]:
    """``AUTHORIZER_ROUTES``: a JSON object of route key -> requirement."""
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except ValueError:
        raise ValueError("AUTHORIZER_ROUTES is not valid JSON") from None
    if not isinstance(document, dict):
        raise ValueError('AUTHORIZER_ROUTES must be an object such as {"POST /secure": {...}}')
    rules: dict[str, RouteRule] = {}
    for key, entry in document.items():
        method, _, path = key.partition(" ")
        if not method or not path.startswith("/") or not isinstance(entry, dict):
            raise ValueError(f"AUTHORIZER_ROUTES: {key!r} must be 'METHOD /path': {{...}}")
        unknown = set(entry) - {"scopes", "serviceTokens"}
        if unknown:
            raise ValueError(f"AUTHORIZER_ROUTES: {key!r}: unknown {sorted(unknown)}")
        scopes = entry.get("scopes", [])
        service = entry.get("serviceTokens", False)
        if not isinstance(scopes, list) or not all(isinstance(s, str) and s for s in scopes):
            raise ValueError(f"AUTHORIZER_ROUTES: {key!r}: scopes must be a list of strings")
        if not isinstance(service, bool):
            raise ValueError(f"AUTHORIZER_ROUTES: {key!r}: serviceTokens must be true or false")
        rules[f"{method.upper()} {path}"] = RouteRule(frozenset(scopes), service)
    return rules


@dataclass(frozen=True)
class AuthorizerConfig:
    issuer: str
    audiences: tuple[str, ...]
    jwks_url: str
    routes: Mapping[str, RouteRule]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AuthorizerConfig:
        issuer = env.get("JWT_ISSUER", "").strip()
        if not issuer:
            raise ValueError("JWT_ISSUER is not set: the issuer of the tokens to accept")
        audiences = tuple(
            a.strip() for a in env.get("JWT_AUDIENCE", DEFAULT_AUDIENCE).split(",") if a.strip()
        )
        if not audiences:
            raise ValueError("JWT_AUDIENCE names no audience")
        jwks_url = env.get("JWKS_URL", "").strip() or f"{issuer.rstrip('/')}/.well-known/jwks.json"
        return cls(issuer, audiences, jwks_url, parse_routes(env.get("AUTHORIZER_ROUTES", "")))

    def rule(self, method: str, path: str) -> RouteRule:
        return self.routes.get(f"{method} {path}") or self.routes.get(f"ANY {path}") or USER_ROUTE


class _State:
    """What outlives one invocation in a warm container."""

    def __init__(self) -> None:
        self.config: AuthorizerConfig | None = None
        self.verifier: TokenVerifier | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def reset(self) -> None:
        """Forget the configuration and the cached keys (tests)."""
        if self.loop is not None:
            self.loop.close()
        self.__init__()  # type: ignore[misc]

    def ready(self) -> tuple[AuthorizerConfig, TokenVerifier, asyncio.AbstractEventLoop]:
        if self.config is None or self.verifier is None or self.loop is None:
            config = AuthorizerConfig.from_env(os.environ)
            # Service tokens carry no sid: verified here, then judged per route below.
            self.verifier = TokenVerifier.from_jwks_url(
                config.jwks_url,
                issuer=config.issuer,
                audience=config.audiences,
                require_session=False,
            )
            # One loop for the container's life: the JWKS cache's single-flight task
            # and timers belong to it.
            self.loop = asyncio.new_event_loop()
            self.config = config
        return self.config, self.verifier, self.loop


_state = _State()


def reset() -> None:
    """Drop the cached configuration, verifier and JWKS (for tests)."""
    _state.reset()


class RouteRefused(Exception):
    """A valid token that this route does not accept (403, not 401)."""


def _header(headers: object, name: str) -> str | None:
    if not isinstance(headers, Mapping):
        return None
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return value
    return None


def _check_route(claims: Claims, rule: RouteRule) -> None:
    if claims.sid is None and not rule.service_tokens:
        raise RouteRefused("a service token (no session) on a user route")
    missing = rule.scopes - claims.scopes
    if missing:
        raise RouteRefused(f"missing scopes {sorted(missing)}")


def _context(claims: Claims) -> dict[str, str]:
    # API Gateway passes context values on only as strings, numbers or booleans.
    return {
        "userId": claims.sub,
        "sid": claims.sid or "",
        "email": claims.email or "",
        "clientId": claims.client_id or "",
    }


def _policy(principal: str, effect: str, resource: str, context: dict[str, str]) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": context,
    }


def _verify(token_header: str | None) -> Claims:
    _, verifier, loop = _state.ready()
    # bearer_token and the verifier's shape and header checks refuse a malformed
    # token before any key is looked up, so garbage never causes a JWKS fetch.
    token = bearer_token(token_header)
    return loop.run_until_complete(verifier.verify(token))


def _rest(event: Mapping[str, Any]) -> dict[str, Any]:
    config, _, _ = _state.ready()
    try:
        route = Route.parse(event.get("methodArn"))
    except ValueError as exc:
        logger.warning("authorizer: %s", exc)
        raise Exception(UNAUTHORIZED) from None  # API Gateway's 401
    if event.get("type") == "TOKEN":
        header = event.get("authorizationToken")
        path = route.path
    else:
        header = _header(event.get("headers"), "authorization")
        # REQUEST events name the resource template (/users/{id}), as routes are keyed.
        resource = event.get("resource")
        path = resource if isinstance(resource, str) and resource.startswith("/") else route.path
    try:
        claims = _verify(header if isinstance(header, str) else None)
    except InvalidToken as exc:
        logger.info("authorizer: refused token: %s", exc)
        raise Exception(UNAUTHORIZED) from None  # API Gateway's 401
    context = _context(claims)
    try:
        _check_route(claims, config.rule(route.method, path))
    except RouteRefused as exc:
        logger.info("authorizer: %s %s denied for sub=%s: %s", route.method, path, claims.sub, exc)
        return _policy(claims.sub, "Deny", route.arn, context)
    return _policy(claims.sub, "Allow", route.stage_arn, context)


def _http_api(event: Mapping[str, Any]) -> dict[str, Any]:
    config, _, _ = _state.ready()
    route_key = event.get("routeKey")
    method, _, path = route_key.partition(" ") if isinstance(route_key, str) else ("", "", "")
    if not path:
        # "$default" or none: the request's own method and path.
        http = event.get("requestContext", {}).get("http", {})
        method, path = str(http.get("method", "")), str(http.get("path", ""))
    try:
        claims = _verify(_header(event.get("headers"), "authorization"))
        _check_route(claims, config.rule(method.upper(), path))
    except InvalidToken as exc:
        logger.info("authorizer: refused token: %s", exc)
        return {"isAuthorized": False, "context": {}}
    except RouteRefused as exc:
        logger.info("authorizer: %s %s denied for sub=%s: %s", method, path, claims.sub, exc)
        return {"isAuthorized": False, "context": _context(claims)}
    return {"isAuthorized": True, "context": _context(claims)}


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    """The Lambda entry point (``authgate.aws.authorizer.handler``)."""
    if event.get("version") == "2.0":
        return _http_api(event)
    if event.get("type") in ("TOKEN", "REQUEST"):
        return _rest(event)
    logger.warning("authorizer: not an API Gateway authorizer event")
    raise Exception(UNAUTHORIZED)  # API Gateway's 401
