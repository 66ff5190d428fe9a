"""OAuth 2.0 authorization server use cases: clients, the token grants, revocation
(RFC 7009), introspection (RFC 7662) and discovery metadata (RFC 8414).

Services, not routes: this package imports domain, errors and services, never
``web`` or FastAPI. Form parsing and the RFC 6749 error bodies live in
``web.routes.oauth`` and ``web.problems``."""
