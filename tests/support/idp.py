"""A local stand-in for an OpenID Connect provider (Google, Apple, ...), for tests.

It is a real HTTP server on 127.0.0.1 (a background thread), serving a JWK Set in the
format Google and Apple publish, and it mints ID tokens in their claim shapes. Tests can
rotate its keys, take it down, slow it and count its requests. Nothing here talks to a
real provider.

RSA keys are generated once per test session (by name) and reused: generating 2048-bit
keys is the slow part of these tests.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import json
import socket
import threading
import warnings
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal, Self

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.warnings import InsecureKeyLengthWarning

JWKS_PATH: Final = "/oauth2/v3/certs"

GOOGLE_ISSUER: Final = "https://accounts.google.com"
APPLE_ISSUER: Final = "https://appleid.apple.com"

# Marks a claim or header to leave out of a minted token.
OMIT: Final = object()

Mode = Literal["up", "500", "close", "bad_json", "empty_set", "redirect", "trickle"]
TRICKLE_INTERVAL: Final = 0.2  # seconds between bytes in "trickle" mode
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_key_pool: dict[str, PrivateKey] = {}
_key_pool_lock = threading.Lock()


def rsa_key(name: str, *, bits: int = 2048) -> rsa.RSAPrivateKey:
    """The session's RSA key called ``name`` (generated on first use)."""
    pool_name = f"rsa{bits}:{name}"
    with _key_pool_lock:
        key = _key_pool.get(pool_name)
        if key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
            _key_pool[pool_name] = key
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def ec_key(name: str) -> ec.EllipticCurvePrivateKey:
    """The session's P-256 key called ``name``."""
    pool_name = f"p256:{name}"
    with _key_pool_lock:
        key = _key_pool.get(pool_name)
        if key is None:
            key = ec.generate_private_key(ec.SECP256R1())
            _key_pool[pool_name] = key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def ed25519_key(name: str) -> ed25519.Ed25519PrivateKey:
    pool_name = f"ed25519:{name}"
    with _key_pool_lock:
        key = _key_pool.get(pool_name)
        if key is None:
            key = ed25519.Ed25519PrivateKey.generate()
            _key_pool[pool_name] = key
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def public_jwk(key: PrivateKey, kid: str | None) -> dict[str, Any]:
    """The public JWK, shaped like Google's and Apple's entries."""
    jwk: dict[str, Any]
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        jwk = {"kty": "RSA", "use": "sig", "alg": "RS256", "n": _uint(numbers.n), "e": "AQAB"}
        assert numbers.e == 65537
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        ec_numbers = key.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "use": "sig",
            "alg": "ES256",
            "crv": "P-256",
            "x": b64url(ec_numbers.x.to_bytes(32, "big")),
            "y": b64url(ec_numbers.y.to_bytes(32, "big")),
        }
    else:
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        jwk = {"kty": "OKP", "use": "sig", "alg": "EdDSA", "crv": "Ed25519", "x": b64url(raw)}
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def public_pem(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _without_omitted(values: Mapping[str, object]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not OMIT}


def raw_token(header: Mapping[str, object], claims: Mapping[str, object], signature: bytes) -> str:
    """A compact JWS put together by hand, for tokens no honest library would make."""
    parts = [
        b64url(json.dumps(dict(header), separators=(",", ":")).encode()),
        b64url(json.dumps(dict(claims), separators=(",", ":")).encode()),
    ]
    return ".".join([*parts, b64url(signature)])


def hs256_token(header: Mapping[str, object], claims: Mapping[str, object], secret: bytes) -> str:
    """An HS256 token with an arbitrary secret (PyJWT refuses a PEM as HMAC secret)."""
    unsigned = raw_token({**header, "alg": "HS256"}, claims, b"").rsplit(".", 1)[0]
    mac = hmac.new(secret, unsigned.encode("ascii"), hashlib.sha256).digest()
    return f"{unsigned}.{b64url(mac)}"


def hashed_nonce(raw_nonce: str) -> str:
    """What a client gives the provider: sha256 of the nonce it later sends us."""
    return hashlib.sha256(raw_nonce.encode()).hexdigest()


def google_claims(*, now: float, client_id: str, **overrides: object) -> dict[str, Any]:
    """Claims shaped like a Google ID token (aud = client id, azp, JSON booleans)."""
    claims: dict[str, object] = {
        "iss": GOOGLE_ISSUER,
        "azp": client_id,
        "aud": client_id,
        "sub": "110169484474386276334",
        "email": "alice@gmail.com",
        "email_verified": True,
        "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q",
        "name": "Alice Example",
        "picture": "https://lh3.googleusercontent.com/a/example",
        "given_name": "Alice",
        "family_name": "Example",
        "locale": "en",
        "iat": int(now),
        "exp": int(now) + 3600,
    }
    claims.update(overrides)
    return _without_omitted(claims)


def apple_claims(*, now: float, bundle_id: str, **overrides: object) -> dict[str, Any]:
    """Claims shaped like an Apple ID token (aud = bundle id, booleans as strings)."""
    claims: dict[str, object] = {
        "iss": APPLE_ISSUER,
        "aud": bundle_id,
        "exp": int(now) + 600,
        "iat": int(now),
        "sub": "001234.5f3a2b1c9d8e4f7a6b5c4d3e2f1a0b9c.1234",
        "c_hash": "pTlT0mTQE4Ab2lTJ1Aa2zA",
        "email": "xk8c2m4q7z@privaterelay.appleid.com",
        "email_verified": "true",
        "is_private_email": "true",
        "auth_time": int(now),
        "nonce_supported": True,
    }
    claims.update(overrides)
    return _without_omitted(claims)


class _Server(ThreadingHTTPServer):
    # Join handler threads on close, so no thread outlives the test that started it.
    daemon_threads = False
    block_on_close = True
    # Room for many simultaneous connections if single-flight ever broke.
    request_queue_size = 256
    idp: FakeIdp

    def server_activate(self) -> None:
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        # Tracked before the handler thread starts, so stop() cannot miss it.
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def hang_up_all(self) -> None:
        """Unblock handlers waiting on a client that keeps its connection open idle."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # A backstop: no handler waits on a silent client for longer than this.
    timeout = 5

    def do_GET(self) -> None:
        self.server.idp._handle(self)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean


class FakeIdp:
    """A provider's key server on 127.0.0.1. Use as a context manager (or start/stop)."""

    def __init__(self, name: str, *, max_age: int | None = 3600) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._private: dict[str, PrivateKey] = {}  # every key this idp ever had, by kid
        self._published: list[Any] = []  # the JWKs served, in order
        self._key_counter = 0
        self._max_age = max_age
        self._extra_headers: dict[str, str] = {}
        self._mode: Mode = "up"
        self._delay = 0.0
        self._requests = 0
        # Set at the first request; lets a test wait (in a thread) until a fetch arrived.
        self.request_received = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.current_kid = self.add_key()

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.idp = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            # Short poll so stop() (which waits for the loop to notice) is quick.
            kwargs={"poll_interval": 0.005},
            name=f"fake-idp-{self.name}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers that are "being slow"
        if self._server is not None:
            self._server.shutdown()
            self._server.hang_up_all()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "FakeIdp is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def jwks_url(self) -> str:
        return self.base_url + JWKS_PATH

    # -- keys ---------------------------------------------------------------------

    def add_key(self, kind: Literal["rsa", "ec", "ed25519"] = "rsa") -> str:
        """Publish a new key (appended to the set) and return its kid."""
        with self._lock:
            self._key_counter += 1
            kid = f"{self.name}-{kind}-{self._key_counter}"
        key: PrivateKey
        if kind == "rsa":
            key = rsa_key(kid)
        elif kind == "ec":
            key = ec_key(kid)
        else:
            key = ed25519_key(kid)
        with self._lock:
            self._private[kid] = key
            self._published.append(public_jwk(key, kid))
        return kid

    def remove_key(self, kid: str) -> None:
        with self._lock:
            self._published = [
                jwk
                for jwk in self._published
                if not (isinstance(jwk, dict) and jwk.get("kid") == kid)
            ]

    def rotate(self) -> str:
        """Publish a new RSA key, withdraw the current one; the new kid becomes current."""
        old = self.current_kid
        new = self.add_key()
        self.remove_key(old)
        self.current_kid = new
        return new

    def publish_raw(self, jwk: dict[str, Any]) -> None:
        """Add an arbitrary (possibly broken) entry to the served set."""
        with self._lock:
            self._published.append(jwk)

    def set_published(self, jwks: list[Any]) -> None:
        """Serve exactly these entries (which may be broken, or not even objects)."""
        with self._lock:
            self._published = list(jwks)

    def published(self) -> list[Any]:
        with self._lock:
            return copy.deepcopy(self._published)

    def private_key(self, kid: str | None = None) -> PrivateKey:
        return self._private[kid or self.current_kid]

    # -- behaviour ----------------------------------------------------------------

    def set_max_age(self, seconds: int | None) -> None:
        with self._lock:
            self._max_age = seconds

    def set_header(self, name: str, value: str) -> None:
        with self._lock:
            self._extra_headers[name] = value

    def go_down(self, mode: Mode = "500") -> None:
        with self._lock:
            self._mode = mode

    def come_back(self) -> None:
        with self._lock:
            self._mode = "up"

    def set_delay(self, seconds: float) -> None:
        with self._lock:
            self._delay = seconds

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._requests

    # -- tokens -------------------------------------------------------------------

    def sign(
        self,
        claims: Mapping[str, object],
        *,
        kid: str | object | None = None,
        key: PrivateKey | None = None,
        alg: str = "RS256",
        headers: Mapping[str, object] | None = None,
    ) -> str:
        """Mint a token. ``kid`` defaults to the current key; pass ``OMIT`` for none.

        ``key`` overrides the signing key (e.g. an attacker's key under a genuine kid).
        ``headers`` are merged into the JOSE header; a value of ``OMIT`` removes one.
        """
        chosen_kid = self.current_kid if kid is None else kid
        if key is None:
            assert isinstance(chosen_kid, str), "give a key when omitting the kid"
            key = self._private[chosen_kid]
        header: dict[str, object] = {"typ": "JWT"}
        if chosen_kid is not OMIT:
            header["kid"] = chosen_kid
        header.update(headers or {})
        if header.get("typ") is OMIT:
            header["typ"] = None  # PyJWT drops a falsy typ
        # The JWS layer, not jwt.encode: tests need claims PyJWT would refuse to write
        # (a non-string iss, NaN exp, ...).
        payload = json.dumps(_without_omitted(dict(claims)), separators=(",", ":")).encode()
        with warnings.catch_warnings():
            # Some tests sign with a deliberately short key to show it is refused.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return jwt.api_jws.encode(payload, key, algorithm=alg, headers=_without_omitted(header))

    # -- HTTP ---------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        with self._lock:
            self._requests += 1
            self.request_received.set()
            mode, delay = self._mode, self._delay
            max_age, extra = self._max_age, dict(self._extra_headers)
            document = {"keys": copy.deepcopy(self._published)}
        if delay and self._stopping.wait(delay):
            return  # stopping: drop the request
        try:
            if handler.path.split("?", 1)[0] != JWKS_PATH:
                self._send(handler, 404, b"not found", {})
            elif mode == "close":
                handler.close_connection = True  # hang up without an answer
            elif mode == "500":
                self._send(handler, 500, b"internal error", {})
            elif mode == "redirect":
                self._send(handler, 302, b"", {"Location": "http://127.0.0.1:9/elsewhere"})
            else:
                if mode == "bad_json":
                    body = b"<html>not json</html>"
                elif mode == "empty_set":
                    body = b'{"keys": []}'
                else:
                    body = json.dumps(document).encode()
                headers = {"Content-Type": "application/json; charset=UTF-8", **extra}
                if max_age is not None:
                    headers["Cache-Control"] = f"public, max-age={max_age}, must-revalidate"
                if mode == "trickle":
                    self._trickle(handler, body, headers)
                else:
                    self._send(handler, 200, body, headers)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout fired); nothing to do

    def _trickle(self, handler: _Handler, body: bytes, headers: Mapping[str, str]) -> None:
        # Each byte arrives well within any read timeout, the whole body does not.
        handler.send_response(200)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for index in range(len(body)):
            handler.wfile.write(body[index : index + 1])
            handler.wfile.flush()
            if self._stopping.wait(TRICKLE_INTERVAL):
                return

    @staticmethod
    def _send(handler: _Handler, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
