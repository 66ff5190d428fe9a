"""authgate.resource: verify authgate's access tokens in the services that consume them.

Its one job is verify-only: no database, no server settings, no signing. It imports the
standard library, ``httpx``, PyJWT and ``cryptography`` only; ``fastapi`` is imported
when :func:`require_token` is called. Nothing here imports the server side
(``authgate.web``, ``authgate.config``, ``authgate.storage``, ``authgate.services``).

::

    verifier = TokenVerifier.from_jwks_url(
        "https://auth.example.com/.well-known/jwks.json",
        issuer="https://auth.example.com",
        audience="orders",
    )
    User = Annotated[Claims, Depends(require_token(verifier))]

See docs/resource.md.
"""

from authgate.resource.bearer import bearer_token, challenge
from authgate.resource.claims import Claims
from authgate.resource.dependencies import require_token
from authgate.resource.errors import (
    InsufficientScope,
    InvalidToken,
    ResourceError,
    VerifierUnavailable,
)
from authgate.resource.introspection import Introspection
from authgate.resource.keys import (
    DEFAULT_ALGORITHMS,
    SUPPORTED_ALGORITHMS,
    JwksKeys,
    KeyLookup,
    KeySource,
    PublicKey,
    StaticKeys,
    SyncKeySource,
    TrustedKey,
    key_fits,
    parse_jwks,
)
from authgate.resource.middleware import BearerTokenMiddleware
from authgate.resource.verifier import TokenVerifier

__all__ = [
    "DEFAULT_ALGORITHMS",
    "SUPPORTED_ALGORITHMS",
    "BearerTokenMiddleware",
    "Claims",
    "InsufficientScope",
    "Introspection",
    "InvalidToken",
    "JwksKeys",
    "KeyLookup",
    "KeySource",
    "PublicKey",
    "ResourceError",
    "StaticKeys",
    "SyncKeySource",
    "TokenVerifier",
    "TrustedKey",
    "VerifierUnavailable",
    "bearer_token",
    "challenge",
    "key_fits",
    "parse_jwks",
    "require_token",
]
