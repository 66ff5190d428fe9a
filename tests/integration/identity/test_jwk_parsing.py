"""Which JWK Set entries become keys, and why the others are skipped."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from authgate.identity.jwks import UnusableJwk, parse_jwk
from tests.support.idp import b64url, ec_key, ed25519_key, public_jwk, rsa_key


def test_google_style_rsa_key_is_parsed_once_into_a_key_object() -> None:
    key = parse_jwk(public_jwk(rsa_key("parse"), "k1"))
    assert key.kid == "k1"
    assert isinstance(key.key, RSAPublicKey)
    # The JWK's own "alg" narrows the RSA family to that one algorithm (RFC 7517 §4.4).
    assert key.algorithms == frozenset({"RS256"})


def test_rsa_key_without_alg_member_fits_the_rsa_family() -> None:
    jwk = public_jwk(rsa_key("parse"), "k1")
    del jwk["alg"]
    assert parse_jwk(jwk).algorithms == frozenset(
        {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
    )


def test_a_declared_rsa_alg_narrows_the_family_to_it() -> None:
    jwk = {**public_jwk(rsa_key("parse"), "k1"), "alg": "PS256"}
    assert parse_jwk(jwk).algorithms == frozenset({"PS256"})


def test_ec_and_okp_keys_fit_only_their_algorithm() -> None:
    assert parse_jwk(public_jwk(ec_key("parse"), "e")).algorithms == frozenset({"ES256"})
    assert parse_jwk(public_jwk(ed25519_key("parse"), "o")).algorithms == frozenset({"EdDSA"})


def _leaked_private_rsa() -> dict[str, Any]:
    key = rsa_key("parse")
    numbers = key.private_numbers()
    return {
        **public_jwk(key, "leaked"),
        "d": b64url(numbers.d.to_bytes(256, "big")),
    }


@pytest.mark.parametrize(
    ("jwk", "reason"),
    [
        (_leaked_private_rsa(), "private"),
        ({"kty": "oct", "kid": "s", "k": "c2VjcmV0"}, "private/secret"),
        ({**public_jwk(rsa_key("short", bits=1024), "s")}, "too short"),
        ({**public_jwk(rsa_key("parse"), "a"), "alg": "ES256"}, "does not fit"),
        ({**public_jwk(rsa_key("parse"), "a"), "alg": "HS256"}, "does not fit"),
        ({**public_jwk(rsa_key("parse"), "a"), "alg": "none"}, "does not fit"),
        ({**public_jwk(ec_key("parse"), "e"), "alg": "ES384"}, "does not fit"),
        ({**public_jwk(ec_key("parse"), "e"), "crv": "P-384"}, "unparseable"),
        ({**public_jwk(rsa_key("parse"), "a"), "use": "enc"}, "use"),
        ({**public_jwk(rsa_key("parse"), "a"), "key_ops": ["encrypt"]}, "key_ops"),
        ({**public_jwk(rsa_key("parse"), "a"), "kid": ["x"]}, "kid"),
        ({**public_jwk(ec_key("parse"), "e"), "crv": "secp256k1"}, "curve"),
        ({"kty": "OKP", "crv": "X25519", "x": b64url(b"\x01" * 32)}, "curve"),
        ({"kty": "RSA", "n": "!!!", "e": "AQAB"}, "unparseable"),
        ({"kty": "XYZ"}, "kty"),
        ([], "object"),
    ],
)
def test_unusable_entries_are_skipped_with_a_reason(jwk: object, reason: str) -> None:
    with pytest.raises(UnusableJwk, match=reason):
        parse_jwk(jwk)
