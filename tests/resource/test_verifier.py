"""TokenVerifier's checks, one by one, against static keys and a settable clock."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
import pytest

from authgate.resource import (
    Claims,
    InsufficientScope,
    InvalidToken,
    KeyLookup,
    StaticKeys,
    TokenVerifier,
    TrustedKey,
)
from tests.resource.support import (
    AUDIENCE,
    ISSUER,
    NOW,
    OMIT,
    Clock,
    SigningKey,
    claims,
    ec_key,
    ed_key,
    forge_payload,
    jwks,
    mint,
    rsa_key,
    rsa_private,
    with_s,
)

RSA = rsa_key()
EC = ec_key()
ED = ed_key()


def verifier(*keys: SigningKey, clock: Clock | None = None, **options: Any) -> TokenVerifier:
    options.setdefault("audience", AUDIENCE)
    return TokenVerifier(
        StaticKeys.from_jwks(jwks(*(keys or (RSA, EC, ED)))),
        issuer=ISSUER,
        now=clock or Clock(),
        **options,
    )


async def refused(v: TokenVerifier, token: Any, **kwargs: Any) -> str:
    with pytest.raises(InvalidToken) as caught:
        await v.verify(token, **kwargs)
    return caught.value.reason


@pytest.mark.parametrize("key", [RSA, EC, ED], ids=lambda k: k.algorithm)
async def test_a_valid_token_gives_its_claims(key: SigningKey) -> None:
    payload = claims(scope="orders:read orders:write", client_id="mobile", nbf=int(NOW) - 5)
    got = await verifier().verify(mint(key, payload))
    assert isinstance(got, Claims)
    assert got.sub == payload["sub"]
    assert got.sid == payload["sid"]
    assert got.iss == ISSUER
    assert got.aud == (AUDIENCE,)
    assert (got.exp, got.iat, got.nbf) == (payload["exp"], payload["iat"], payload["nbf"])
    assert got.jti == payload["jti"]
    assert got.email == "cow@cow.jp"
    assert got.client_id == "mobile"
    assert got.scopes == {"orders:read", "orders:write"}
    assert got.has_scopes("orders:read")
    assert got.raw["email"] == "cow@cow.jp"
    with pytest.raises(TypeError):
        got.raw["sub"] = "someone else"  # type: ignore[index]


async def test_typ_may_be_the_media_type_and_any_case() -> None:
    for typ in ("application/at+jwt", "AT+JWT"):
        await verifier().verify(mint(RSA, headers={"typ": typ}))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d.e",  # a JWE
        "a.b.c\n",  # $ in a regex would let this through
        " a.b.c",
        "a.b.c=",  # padding is not base64url in JWS
        "a.b.",
        "ä.b.c",
        '{"payload":"x"}',  # JSON serialization
    ],
)
async def test_anything_but_compact_form_is_refused_before_parsing(token: str) -> None:
    assert await refused(verifier(), token) in {"no token", "not a JWS in compact form"}


async def test_tokens_longer_than_the_cap_are_refused() -> None:
    token = mint(RSA, claims(padding="x" * 9000))
    assert "longer than" in await refused(verifier(), token)
    assert (await verifier(max_token_length=20_000).verify(token)).sub


async def test_a_non_string_token_is_refused() -> None:
    assert await refused(verifier(), None) == "no token"
    assert await refused(verifier(), b"a.b.c") == "no token"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"typ": "JWT"}, "is not at+jwt"),
        ({"typ": OMIT}, "is not at+jwt"),
        ({"typ": "id+jwt"}, "is not at+jwt"),
        ({"kid": OMIT}, "no kid"),
        ({"kid": "unknown"}, "no key 'unknown'"),
        ({"crit": ["exp"]}, "unreadable header"),  # PyJWT refuses crit itself
        ({"jku": "https://evil.example/jwks.json"}, "names its own key (jku)"),
        ({"x5u": "https://evil.example/cert.pem"}, "names its own key (x5u)"),
    ],
)
async def test_header_checks(headers: dict[str, Any], reason: str) -> None:
    assert reason in await refused(verifier(), mint(RSA, headers=headers))


async def test_a_token_carrying_its_own_key_is_refused() -> None:
    # The classic: sign with your own key, put it in the jwk header, name our kid.
    attacker = rsa_key("attacker")
    token = mint(attacker, headers={"kid": RSA.kid, "jwk": attacker.jwk()})
    assert "names its own key (jwk)" in await refused(verifier(), token)


async def test_alg_none_and_hmac_are_refused() -> None:
    unsigned = jwt.encode(
        claims(),
        None,  # type: ignore[arg-type]
        algorithm="none",
        headers=mint_headers(RSA),
    )
    assert unsigned.endswith(".")  # an empty signature: not even compact form
    assert await refused(verifier(), unsigned) == "not a JWS in compact form"
    assert jwt.get_unverified_header(unsigned + "AAAA")["alg"] == "none"
    assert "alg 'none' is not allowed" in await refused(verifier(), unsigned + "AAAA")
    # HS256 keyed with our public key (the RS/HS confusion attack).
    hs = jwt.encode(
        claims(),
        "public-key-as-secret-" * 3,
        algorithm="HS256",
        headers={"kid": RSA.kid, "typ": "at+jwt"},
    )
    assert "alg 'HS256' is not allowed" in await refused(verifier(), hs)


def test_hmac_and_none_cannot_be_allowed() -> None:
    for algorithms in (["HS256"], ["none"], ["RS256", "HS512"], []):
        with pytest.raises(ValueError, match="not allowed"):
            verifier(algorithms=algorithms)


async def test_an_alg_outside_the_allowlist_is_refused() -> None:
    only_rsa = verifier(algorithms=["RS256"])
    assert "alg 'ES256' is not allowed" in await refused(only_rsa, mint(EC))
    assert (await only_rsa.verify(mint(RSA))).sub


async def test_the_alg_must_fit_the_key_named_by_kid() -> None:
    # An ES256 token naming our RSA key's kid: no key of that kid fits ES256.
    token = mint(EC, headers={"kid": RSA.kid})
    assert await refused(verifier(), token) == f"no key '{RSA.kid}' for ES256"
    # RS384 signed by the right RSA key, but the JWK says RS256.
    rs384 = jwt.encode(claims(), RSA.private, algorithm="RS384", headers=mint_headers(RSA))
    both = verifier(algorithms=["RS256", "RS384"])
    assert await refused(both, rs384) == f"no key '{RSA.kid}' for RS384"


def mint_headers(key: SigningKey) -> dict[str, str]:
    return {"kid": key.kid, "typ": "at+jwt"}


async def test_a_jwk_whose_curve_does_not_fit_es256_is_never_trusted() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    p384 = ec_key("p384", ec.SECP384R1())
    document = {"keys": [{**p384.jwk(), "alg": "ES256"}]}
    with pytest.raises(ValueError, match="at least one key"):
        StaticKeys.from_jwks(document)  # PyJWK accepts it; key_fits does not


def test_short_rsa_keys_and_encryption_keys_are_skipped() -> None:
    short = rsa_key("short", bits=1024)
    document = {"keys": [short.jwk(), {**RSA.jwk(), "kid": "enc", "use": "enc"}, RSA.jwk()]}
    keys = StaticKeys.from_jwks(document)
    assert asyncio.run(keys.keys_for("short")) == ()
    assert asyncio.run(keys.keys_for("enc")) == ()
    assert len(asyncio.run(keys.keys_for(RSA.kid))) == 1


async def test_tampered_payload_and_signature_are_refused() -> None:
    token = mint(RSA)
    assert await refused(verifier(), forge_payload(token, sub="admin")) == (
        "signature does not verify"
    )
    head, payload, signature = token.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    assert await refused(verifier(), f"{head}.{payload}.{flipped}") == "signature does not verify"


async def test_a_key_we_do_not_hold_is_refused() -> None:
    stranger = rsa_key("stranger")
    assert await refused(verifier(), mint(stranger)) == "no key 'stranger' for RS256"
    # Same kid as ours, different key: the signature fails.
    impostor = SigningKey(RSA.kid, "RS256", rsa_key("impostor").private)
    assert await refused(verifier(), mint(impostor)) == "signature does not verify"


async def test_high_s_es256_signatures_are_refused() -> None:
    low = mint(EC)
    high = with_s(low, high=True)
    assert high != low
    # Both verify as ECDSA; the high-s twin is refused (authgate signs low-s only).
    for twin in (low, high):
        jwt.decode(
            twin,
            EC.private.public_key(),
            algorithms=["ES256"],
            options={"verify_aud": False, "verify_iat": False, "verify_exp": False},
        )
    assert await refused(verifier(), high) == "ES256 signature is not low-s"
    assert (await verifier().verify(low)).sub


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://evil.example"}, "is not ours"),
        ({"iss": ISSUER + "/"}, "is not ours"),
        ({"iss": OMIT}, "is not ours"),
        ({"aud": OMIT}, "aud missing"),
        ({"aud": []}, "aud missing"),
        ({"aud": [AUDIENCE, 7]}, "aud is not strings"),
        ({"aud": "billing"}, "audience"),
        ({"aud": ["billing", "reports"]}, "audience"),
        ({"exp": OMIT}, "no exp"),
        ({"exp": "1900000900"}, "exp is not a number"),
        ({"exp": True}, "exp is not a number"),
        ({"iat": OMIT}, "no iat"),
        ({"iat": int(NOW) + 61}, "issued in the future"),
        ({"nbf": int(NOW) + 1}, "not yet valid"),
        ({"nbf": "soon"}, "nbf is not a number"),
        ({"sub": OMIT}, "sub missing"),
        ({"sub": ""}, "sub missing"),
        ({"sub": 42}, "sub missing"),
        ({"sub": "x" * 256}, "sub missing"),
        ({"jti": OMIT}, "jti missing"),
        ({"sid": OMIT}, "not a user token"),
        ({"sid": 5}, "sid is not"),
        ({"client_id": ["a"]}, "client_id is not"),
        ({"scope": ["orders:read"]}, "scope is not a string"),
    ],
)
async def test_claim_checks(changes: dict[str, Any], reason: str) -> None:
    assert reason in await refused(verifier(), mint(RSA, claims(**changes)))


async def test_a_nan_exp_is_refused() -> None:
    token = mint(RSA, claims(exp=float("nan")))
    assert "exp is not a number" in await refused(verifier(), token)


async def test_audience_lists_and_several_accepted_audiences() -> None:
    token = mint(RSA, claims(aud=["billing", AUDIENCE]))
    assert (await verifier().verify(token)).aud == ("billing", AUDIENCE)
    both = verifier(audience=["reports", "billing"])
    assert (await both.verify(token)).sub
    assert "audience" in await refused(verifier(audience="reports"), token)


async def test_a_per_call_audience_replaces_the_verifiers() -> None:
    token = mint(RSA, claims(aud="billing"))
    assert (await verifier().verify(token, audience="billing")).sub
    assert "audience" in await refused(verifier(), mint(RSA), audience="billing")


async def test_expiry_and_nbf_follow_the_clock_and_the_leeway() -> None:
    clock = Clock()
    payload = claims(exp=int(NOW) + 100, nbf=int(NOW) + 50, iat=int(NOW))
    token = mint(RSA, payload)
    strict = verifier(clock=clock)
    lenient = verifier(clock=clock, leeway_seconds=10)
    assert "not yet valid" in await refused(strict, token)
    clock.value = NOW + 45
    assert "not yet valid" in await refused(strict, token)
    assert (await lenient.verify(token)).sub  # nbf - 5 s is inside 10 s of leeway
    clock.value = NOW + 50
    assert (await strict.verify(token)).sub
    clock.value = NOW + 99.9
    assert (await strict.verify(token)).sub
    clock.value = NOW + 100
    assert await refused(strict, token) == "expired"  # exp is exclusive (RFC 7519 §4.1.4)
    assert (await lenient.verify(token)).sub
    clock.value = NOW + 110
    assert await refused(lenient, token) == "expired"


async def test_a_cached_token_still_expires() -> None:
    clock = Clock()
    v = verifier(clock=clock)
    token = mint(RSA)
    assert (await v.verify(token)).sub
    assert (await v.verify(token)).sub  # from the cache
    clock.advance(900)
    assert await refused(v, token) == "expired"


async def test_service_tokens_pass_only_where_sessions_are_not_required() -> None:
    service = mint(RSA, claims(sub="billing-service", sid=OMIT, client_id="billing-service"))
    assert await refused(verifier(), service) == "no sid: not a user token"
    got = await verifier(require_session=False).verify(service)
    assert (got.sub, got.sid, got.client_id) == ("billing-service", None, "billing-service")


async def test_scopes() -> None:
    token = mint(RSA, claims(scope="orders:read"))
    v = verifier()
    assert (await v.verify(token, scopes=["orders:read"])).sub
    with pytest.raises(InsufficientScope) as caught:
        await v.verify(token, scopes=["orders:read", "orders:write"])
    assert caught.value.required == {"orders:read", "orders:write"}
    assert caught.value.granted == {"orders:read"}
    assert isinstance(caught.value, InvalidToken)  # fails closed for code catching only that
    assert "orders:write" in caught.value.reason


async def test_a_retired_key_stops_verifying_even_cached_tokens() -> None:
    ring = {RSA.kid: TrustedKey.from_jwk(RSA.jwk())}
    v = TokenVerifier(
        KeyLookup(lambda kid: [ring[kid]] if kid in ring else []),
        issuer=ISSUER,
        audience=AUDIENCE,
        now=Clock(),
    )
    token = mint(RSA)
    assert (await v.verify(token)).sub
    del ring[RSA.kid]
    assert await refused(v, token) == f"key '{RSA.kid}' is no longer trusted"
    assert await refused(v, token) == f"no key '{RSA.kid}' for RS256"


async def test_keys_from_pem() -> None:
    key = TrustedKey.from_pem(EC.public_pem(), kid=EC.kid, algorithm="ES256")
    v = TokenVerifier(StaticKeys([key]), issuer=ISSUER, audience=AUDIENCE, now=Clock())
    assert (await v.verify(mint(EC))).sub
    with pytest.raises(ValueError, match="does not fit"):
        TrustedKey.from_pem(EC.public_pem(), kid="x", algorithm="RS256")


def test_a_published_private_key_is_kept_public_only() -> None:
    import json

    from jwt.algorithms import RSAAlgorithm

    private_jwk = {**json.loads(RSAAlgorithm.to_jwk(rsa_private(RSA.kid))), "kid": "leaky"}
    private_jwk.pop("key_ops", None)
    key = TrustedKey.from_jwk(private_jwk)
    assert not hasattr(key.key, "private_bytes")


async def test_bad_settings_stop_start_up() -> None:
    keys = StaticKeys.from_jwks(jwks(RSA))
    with pytest.raises(ValueError, match="issuer"):
        TokenVerifier(keys, issuer="", audience=AUDIENCE)
    with pytest.raises(ValueError, match="audience"):
        TokenVerifier(keys, issuer=ISSUER, audience=[])
    with pytest.raises(ValueError, match="leeway"):
        TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE, leeway_seconds=-1)
    with pytest.raises(ValueError, match="introspect"):
        await TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE).verify("a.b.c", introspect=True)
