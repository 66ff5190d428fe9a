"""The JOSE header and the signature: algorithm rules, key selection, forgeries."""

from __future__ import annotations

import httpx
import jwt
import pytest

from authgate.clock import FrozenClock
from authgate.errors import InvalidIdToken
from authgate.identity import OidcVerifier, build_verifiers, generic_config
from tests.support.idp import (
    GOOGLE_ISSUER,
    OMIT,
    FakeIdp,
    google_claims,
    hs256_token,
    public_jwk,
    public_pem,
    raw_token,
    rsa_key,
)

from .constants import GOOGLE_WEB_CLIENT, Mint


def claims_now(clock: FrozenClock, **overrides: object) -> dict[str, object]:
    return google_claims(now=clock.now().timestamp(), client_id=GOOGLE_WEB_CLIENT, **overrides)


async def refused(verifier: OidcVerifier, token: str, *, nonce: str | None = None) -> str:
    with pytest.raises(InvalidIdToken) as caught:
        await verifier.verify(token, nonce=nonce)
    # The reason is for the log only; the client-facing message never varies.
    assert caught.value.message == InvalidIdToken.message
    return caught.value.detail_for_log or ""


def generic_verifier(
    idp: FakeIdp, http: httpx.AsyncClient, clock: FrozenClock, algorithms: tuple[str, ...]
) -> OidcVerifier:
    config = generic_config(
        "corp",
        GOOGLE_ISSUER,
        idp.jwks_url,
        [GOOGLE_WEB_CLIENT],
        algorithms,
        require_nonce=False,  # these tests are about algorithms; nonces: test_claims
    )
    return build_verifiers([config], http=http, clock=clock)["corp"]


async def test_wrong_signature_with_the_right_kid_is_refused(
    google: OidcVerifier, google_idp: FakeIdp, clock: FrozenClock
) -> None:
    forged = google_idp.sign(claims_now(clock), key=rsa_key("someone-else"))
    assert "signature" in await refused(google, forged)


async def test_tampered_payload_is_refused(
    google: OidcVerifier, google_token: Mint, clock: FrozenClock
) -> None:
    header, _, signature = google_token().split(".")
    other_payload = raw_token({}, claims_now(clock, sub="victim"), b"").split(".")[1]
    assert "signature" in await refused(google, f"{header}.{other_payload}.{signature}")


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_is_refused(
    google: OidcVerifier, google_idp: FakeIdp, clock: FrozenClock, alg: str
) -> None:
    # A non-empty "signature", so the header check is what refuses it...
    token = raw_token({"alg": alg, "kid": google_idp.current_kid}, claims_now(clock), b"x")
    assert "none" in await refused(google, token)
    # ...and an unsigned token (empty third part) is not even a compact JWS.
    unsigned = raw_token({"alg": alg, "kid": google_idp.current_kid}, claims_now(clock), b"")
    assert "compact" in await refused(google, unsigned)


@pytest.mark.parametrize(
    "spelling",
    [
        lambda t: t + "==",  # padded signature: PyJWT decodes it to the same bytes
        lambda t: t + "=",
        lambda t: t.replace(".", "=.", 1),  # padded header
        lambda t: t + "\n",
        lambda t: " " + t,
        lambda t: t[:-1] + "+",  # base64 (not base64url) alphabet
        lambda t: t[:-1] + "/",
        lambda t: t.replace(".", ".+", 1),
        lambda t: t[:-1] + "\u0101",  # not even ASCII
        lambda t: t + ".",
        lambda t: t + ".e30.e30",  # five parts: a JWE
    ],
)
async def test_only_the_compact_base64url_form_of_a_token_is_accepted(
    google: OidcVerifier, google_token: Mint, spelling: object
) -> None:
    token = google_token()
    assert (await google.verify(token, nonce=None)).subject  # the canonical form passes
    assert callable(spelling)
    variant = spelling(token)
    assert variant != token
    assert "compact" in await refused(google, variant)


async def test_hs256_with_the_public_key_pem_as_secret_is_refused(
    google: OidcVerifier, google_idp: FakeIdp, google_token: Mint, clock: FrozenClock
) -> None:
    await google.verify(google_token(), nonce=None)  # keys are cached, the attack is "ready"
    pem = public_pem(google_idp.private_key())
    token = hs256_token({"kid": google_idp.current_kid, "typ": "JWT"}, claims_now(clock), pem)
    assert "symmetric" in await refused(google, token)


async def test_rs256_only_provider_refuses_es256_even_with_a_published_ec_key(
    google: OidcVerifier,
    google_idp: FakeIdp,
    clock: FrozenClock,
    http: httpx.AsyncClient,
) -> None:
    ec_kid = google_idp.add_key("ec")
    token = google_idp.sign(claims_now(clock), kid=ec_kid, alg="ES256")

    assert "not allowed" in await refused(google, token)
    # The same token is fine where ES256 is allowed: the allowlist alone refused it.
    corp = generic_verifier(google_idp, http, clock, ("RS256", "ES256"))
    assert (await corp.verify(token, nonce=None)).subject


async def test_alg_must_fit_the_key_type(
    google_idp: FakeIdp, clock: FrozenClock, http: httpx.AsyncClient
) -> None:
    corp = generic_verifier(google_idp, http, clock, ("RS256", "ES256"))
    # ES256 claimed, but the kid names an RSA key.
    token = raw_token(
        {"alg": "ES256", "kid": google_idp.current_kid},
        claims_now(clock),
        b"\x00" * 64,
    )
    assert "does not fit" in await refused(corp, token)


async def test_jwk_alg_member_narrows_the_key_to_that_algorithm(
    google_idp: FakeIdp, clock: FrozenClock, http: httpx.AsyncClient
) -> None:
    # The RSA key is published with "alg": "RS256" (as Google and Apple do); a PS256
    # signature made with the very same private key must not be accepted (RFC 7517 §4.4).
    corp = generic_verifier(google_idp, http, clock, ("RS256", "PS256"))
    assert (await corp.verify(google_idp.sign(claims_now(clock)), nonce=None)).subject
    token = google_idp.sign(claims_now(clock), alg="PS256")
    assert "does not fit" in await refused(corp, token)


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "logout+jwt"])
async def test_access_token_typ_is_refused(
    google: OidcVerifier, google_token: Mint, typ: str
) -> None:
    token = google_token(sign={"headers": {"typ": typ}})
    assert "typ" in await refused(google, token)


async def test_jku_pointing_at_another_key_server_is_ignored(
    google: OidcVerifier, attacker_idp: FakeIdp, clock: FrozenClock
) -> None:
    token = attacker_idp.sign(
        claims_now(clock),
        headers={"jku": attacker_idp.jwks_url, "x5u": attacker_idp.jwks_url},
    )
    await refused(google, token)
    assert attacker_idp.request_count == 0


async def test_jku_with_a_genuine_kid_is_ignored(
    google: OidcVerifier, google_idp: FakeIdp, attacker_idp: FakeIdp, clock: FrozenClock
) -> None:
    token = google_idp.sign(
        claims_now(clock),
        kid=google_idp.current_kid,
        key=attacker_idp.private_key(),
        headers={"jku": attacker_idp.jwks_url},
    )
    assert "signature" in await refused(google, token)
    assert attacker_idp.request_count == 0


async def test_embedded_jwk_header_is_ignored(
    google: OidcVerifier, attacker_idp: FakeIdp, clock: FrozenClock
) -> None:
    attacker_key = attacker_idp.private_key()
    token = attacker_idp.sign(
        claims_now(clock),
        headers={"jwk": public_jwk(attacker_key, attacker_idp.current_kid)},
    )
    await refused(google, token)


async def test_crit_header_is_refused(
    google: OidcVerifier, google_idp: FakeIdp, clock: FrozenClock
) -> None:
    # RFC 7515 §4.1.11: we implement no extension, so any crit list is refused.
    header = {"alg": "RS256", "kid": google_idp.current_kid, "crit": ["b64"], "b64": True}
    assert "crit" in await refused(google, raw_token(header, claims_now(clock), b"x"))


async def test_token_without_kid_uses_the_only_key(
    google: OidcVerifier, google_idp: FakeIdp, clock: FrozenClock
) -> None:
    token = google_idp.sign(claims_now(clock), kid=OMIT, key=google_idp.private_key())
    assert (await google.verify(token, nonce=None)).subject


async def test_token_without_kid_is_refused_when_the_set_has_several_keys(
    google: OidcVerifier, google_idp: FakeIdp, clock: FrozenClock
) -> None:
    google_idp.add_key()
    token = google_idp.sign(claims_now(clock), kid=OMIT, key=google_idp.private_key())
    assert "no kid" in await refused(google, token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d.e",
        "é.é.é",
        "eyJhbGciOiJSUzI1NiJ9.e30.",
        "x" * 20_000,
        "!!!.!!!.!!!",
    ],
)
async def test_malformed_tokens_are_refused(google: OidcVerifier, token: str) -> None:
    await refused(google, token)


async def test_oversized_token_is_refused_even_if_correctly_signed(
    google: OidcVerifier, google_token: Mint
) -> None:
    assert "longer" in await refused(google, google_token(padding="x" * 20_000))


async def test_header_kid_that_is_not_a_string_is_refused(
    google: OidcVerifier, clock: FrozenClock
) -> None:
    await refused(google, raw_token({"alg": "RS256", "kid": 7}, claims_now(clock), b"x"))


async def test_valid_signature_over_a_non_object_payload_is_refused(
    google: OidcVerifier, google_idp: FakeIdp
) -> None:
    token = jwt.api_jws.encode(
        b"[1,2,3]",
        google_idp.private_key(),
        algorithm="RS256",
        headers={"kid": google_idp.current_kid},
    )
    assert "undecodable" in await refused(google, token)


async def test_eddsa_provider_is_supported(
    google_idp: FakeIdp, clock: FrozenClock, http: httpx.AsyncClient
) -> None:
    kid = google_idp.add_key("ed25519")
    corp = generic_verifier(google_idp, http, clock, ("EdDSA",))
    token = google_idp.sign(claims_now(clock), kid=kid, alg="EdDSA")
    assert (await corp.verify(token, nonce=None)).subject == "110169484474386276334"
