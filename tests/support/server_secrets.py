"""A fixed server secret for tests that build services or throttles by hand."""

from __future__ import annotations

from authgate.crypto.refresh_secrets import SuccessorSealer
from authgate.server_secret import ServerSecret

# 43 base64url characters: what `openssl rand -base64 32` gives, minus padding.
TEST_SECRET_TEXT = "dGVzdC1zZWNyZXQtbm90LWZvci1wcm9kdWN0aW9uLXg"
TEST_SECRET = ServerSecret(TEST_SECRET_TEXT.encode())
THROTTLE_KEY = TEST_SECRET.throttle_key()


def make_sealer() -> SuccessorSealer:
    return SuccessorSealer(TEST_SECRET.refresh_sealing_keys())
