"""Values shared by the identity tests and their fixtures."""

from __future__ import annotations

from collections.abc import Callable

from authgate.identity import OidcVerifier

GOOGLE_WEB_CLIENT = "1234567890-web.apps.googleusercontent.com"
GOOGLE_IOS_CLIENT = "1234567890-ios.apps.googleusercontent.com"
GOOGLE_CLIENTS = (GOOGLE_WEB_CLIENT, GOOGLE_IOS_CLIENT)
APPLE_BUNDLE_ID = "com.example.authgate"
UNTRUSTED_CLIENT = "999999-evil.apps.googleusercontent.com"

# Small enough to keep the slow-provider tests fast.
JWKS_TIMEOUT = 0.5
COOLDOWN = 60.0

MakeVerifiers = Callable[..., dict[str, OidcVerifier]]
Mint = Callable[..., str]
