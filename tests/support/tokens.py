"""Build access tokens the way an attacker would, to show each one is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")

    def pad(part: str) -> str:
        return part + "=" * (-len(part) % 4)

    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
    )


def hs256_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """HS256 signed with ``secret``: PyJWT refuses to do this with a PEM key, attackers do not."""
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def unsigned_token(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode()) + "."


# Order of the P-256 group (SEC 2 §2.4.2), written out rather than imported.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def high_s_twin(token: str) -> str:
    """The same ES256 signature with s replaced by n - s: valid ECDSA, other bytes."""
    signing_input, segment = token.rsplit(".", 1)
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    s = int.from_bytes(raw[32:], "big")
    return f"{signing_input}.{b64url(raw[:32] + (P256_ORDER - s).to_bytes(32, 'big'))}"


def variants(token: str) -> dict[str, str]:
    """Other spellings of ``token`` that a lenient decoder reads as the same JWS."""
    return {
        "padding ==": token + "==",
        "padding =": token + "=",
        "trailing dot": token + ".",
        "padded header": token.replace(".", "==.", 1),
        "leading space": " " + token,
        "trailing space": token + " ",
        "trailing tab": token + "\t",
        "trailing newline": token + "\n",
        "no-break space": token + "\u00a0",
        "space inside": token[:20] + " " + token[20:],
        "standard base64 alphabet": token.replace("-", "+").replace("_", "/")
        if ("-" in token or "_" in token)
        else token + "+",
        "four parts": token + ".e30",
    }
