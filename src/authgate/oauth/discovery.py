"""Authorization server metadata (RFC 8414 §2), also served at the OpenID path
because many resource-server middlewares only read that one.

authgate has no authorization endpoint yet (no authorization-code flow), so it is
an OAuth authorization server for the grants below, not a full OpenID Provider."""

from __future__ import annotations

from typing import Any

from authgate.oauth.clients import GRANT_TYPES

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret
REVOKE_PATH = "/oauth/revoke"
INTROSPECT_PATH = "/oauth/introspect"
JWKS_PATH = "/.well-known/jwks.json"
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")


def metadata(*, issuer: str, public_url: str, algorithms: tuple[str, ...]) -> dict[str, Any]:
    base = public_url.rstrip("/")
    confidential = [method for method in AUTH_METHODS if method != "none"]
    return {
        # Equal to the tokens' ``iss`` (RFC 8414 §3.3 has clients compare them).
        "issuer": issuer,
        "jwks_uri": f"{base}{JWKS_PATH}",
        "token_endpoint": f"{base}{TOKEN_PATH}",
        "revocation_endpoint": f"{base}{REVOKE_PATH}",
        "introspection_endpoint": f"{base}{INTROSPECT_PATH}",
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": confidential,
        # No authorization endpoint: no response type is offered.
        "response_types_supported": [],
        "subject_types_supported": ["public"],
        # The access tokens' algorithms; under the OpenID name too, which is the
        # one resource-server middlewares read when they find keys by discovery.
        "id_token_signing_alg_values_supported": list(algorithms),
    }
