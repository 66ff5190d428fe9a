"""Test kit for authgate.resource: keys, tokens, and small local HTTP servers.

The servers are real HTTP on 127.0.0.1 (a background thread each): a JWKS publisher
whose keys, headers and speed the test controls and whose fetches it counts, and an
RFC 7662 introspection endpoint. Nothing here talks to the outside world.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

ISSUER = "https://auth.example.test"
AUDIENCE = "orders"
NOW = 1_900_000_000.0
# Marks a claim or header to leave out of a minted token.
OMIT: Any = object()
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class SigningKey:
    """A test key pair: what an issuer would sign with, and its public JWK."""

    kid: str
    algorithm: str
    private: PrivateKey

    def jwk(self, **extra: Any) -> dict[str, Any]:
        public = self.private.public_key()
        exporter = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}
        members = json.loads(exporter[self.algorithm].to_jwk(public))  # type: ignore[attr-defined]
        return {**members, "kid": self.kid, "alg": self.algorithm, "use": "sig", **extra}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@cache
def rsa_private(name: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    # Cached by name: generating RSA keys is the slow part of these tests.
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def rsa_key(kid: str = "rsa-1", bits: int = 2048) -> SigningKey:
    return SigningKey(kid, "RS256", rsa_private(kid, bits))


def ec_key(kid: str = "ec-1", curve: ec.EllipticCurve | None = None) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(curve or ec.SECP256R1()))


def ed_key(kid: str = "ed-1") -> SigningKey:
    return SigningKey(kid, "EdDSA", ed25519.Ed25519PrivateKey.generate())


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.jwk() for key in keys]}


def claims(**overrides: Any) -> dict[str, Any]:
    """An authgate user access token's payload, valid at NOW."""
    values: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "5c0b7a34-0000-4000-8000-000000000001",
        "sid": "9d1e0000-0000-4000-8000-000000000002",
        "iat": int(NOW) - 10,
        "exp": int(NOW) + 890,
        "jti": uuid.uuid4().hex,
        "email": "cow@cow.jp",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not OMIT}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def with_s(token: str, *, high: bool) -> str:
    """The same ES256 token with its signature's s in low or high form (both verify)."""
    head, payload, signature = token.split(".")
    raw = _unb64(signature)
    r, s = raw[:32], int.from_bytes(raw[32:], "big")
    if (s > P256_ORDER // 2) != high:
        s = P256_ORDER - s
    return f"{head}.{payload}.{_b64(r + s.to_bytes(32, 'big'))}"


def mint(
    key: SigningKey,
    payload: dict[str, Any] | None = None,
    *,
    headers: dict[str, Any] | None = None,
    algorithm: str | None = None,
) -> str:
    header: dict[str, Any] = {"kid": key.kid, "typ": "at+jwt"}
    header.update(headers or {})
    header = {k: v for k, v in header.items() if v is not OMIT}
    token = jwt.encode(
        claims() if payload is None else payload,
        key.private,
        algorithm=algorithm or key.algorithm,
        headers=header,
    )
    if key.algorithm == "ES256":
        token = with_s(token, high=False)  # as authgate signs
    return token


def forge_payload(token: str, **changes: Any) -> str:
    """The token with its payload edited and the original signature kept."""
    head, payload, signature = token.split(".")
    body = json.loads(_unb64(payload))
    body.update(changes)
    return f"{head}.{_b64(json.dumps(body).encode())}.{signature}"


@dataclass
class Clock:
    """A settable clock for the verifier (``now``) and the key cache (``monotonic``)."""

    value: float = NOW

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


@dataclass
class LocalServer:
    """A real HTTP server on 127.0.0.1, answering with ``respond``; counts requests."""

    respond: Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]
    delay: float = 0.0
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    @property
    def count(self) -> int:
        return len(self.requests)


@contextmanager
def local_server(
    respond: Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]],
    *,
    delay: float = 0.0,
) -> Iterator[LocalServer]:
    state = LocalServer(respond, delay)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            with lock:
                state.requests.append((self.command, self.path, headers, body))
            if state.delay:
                time.sleep(state.delay)
            status, extra, content = state.respond(self.command, self.path, headers, body)
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = _answer
        do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class JwksPublisher:
    """What the JWKS stand-in publishes; change it between requests to rotate keys."""

    document: dict[str, Any]
    cache_control: str | None = "public, max-age=300"
    status: int = 200

    def __call__(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        extra = {"Content-Type": "application/json"}
        if self.cache_control is not None:
            extra["Cache-Control"] = self.cache_control
        return self.status, extra, json.dumps(self.document).encode()


@dataclass
class IntrospectionEndpoint:
    """An RFC 7662 endpoint: answers ``active`` for tokens in ``live``, to one client."""

    client_id: str = "orders-api"
    client_secret: str = "s3cret:with/odd+chars"
    live: set[str] = field(default_factory=set)
    answer_status: int = 200

    def __call__(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        json_type = {"Content-Type": "application/json", "Cache-Control": "no-store"}
        if method != "POST" or headers.get("content-type") != "application/x-www-form-urlencoded":
            return 400, json_type, b'{"error":"invalid_request"}'
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if not self._authenticated(headers, form):
            return 401, json_type, b'{"error":"invalid_client"}'
        if self.answer_status != 200:
            return self.answer_status, json_type, b"{}"
        token = form.get("token", "")
        answer = {"active": True, "token_type": "Bearer"} if token in self.live else {}
        return 200, json_type, json.dumps(answer or {"active": False}).encode()

    def _authenticated(self, headers: dict[str, str], form: dict[str, str]) -> bool:
        from urllib.parse import unquote_plus

        authorization = headers.get("authorization", "")
        if authorization.startswith("Basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, secret = decoded.partition(":")
            pair = (unquote_plus(client_id), unquote_plus(secret))
        else:
            pair = (form.get("client_id", ""), form.get("client_secret", ""))
        return pair == (self.client_id, self.client_secret)
