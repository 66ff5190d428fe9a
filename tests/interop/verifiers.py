"""Python's third-party JOSE libraries, each used as a resource server would use it.

Each verifier takes a :class:`Case` (a token and what to pin: issuer, audience,
algorithm allowlist) and the JWKS URL, fetches the key set over HTTP, and returns
the verified ``sub`` or raises. PyJWT's ``PyJWKClient`` fetches the JWKS itself; the
other libraries have no JWKS client, so the document is fetched with httpx and
given to the library's own key-set import (which then picks the key by ``kid``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt as pyjwt
from authlib.deprecate import AuthlibDeprecationWarning
from jose import jwt as python_jose_jwt
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import KeySet as JoserfcKeySet
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jwt as jwcrypto_jwt

with warnings.catch_warnings():
    # Authlib 1.x warns that authlib.jose moves to joserfc in 2.0; its many users
    # still verify with it, so it stays in the matrix until then. (Importing
    # authlib.deprecate first: it installs an "always" filter of its own.)
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.jose import JsonWebKey, JsonWebToken


@dataclass(frozen=True)
class Case:
    """One verification: the token, the issuer, audience and algorithms pinned, and
    whether it must verify."""

    name: str
    token: str
    issuer: str
    audience: str
    algorithms: tuple[str, ...]
    accept: bool  # whether every library that knows the algorithm must verify it

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "token": self.token,
            "issuer": self.issuer,
            "audience": self.audience,
            "algorithms": list(self.algorithms),
        }


Verifier = Callable[[Case, str], str]


def run_python_verifier(verify: Verifier, case: Case, jwks_url: str) -> dict[str, Any]:
    """One case as the Node side reports it: {"ok", "sub", "warnings"} or {"ok", "error"}.

    Warnings are recorded, not raised (a service runs with the default filters), so
    the matrix can say which library verifies but warns.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sub = verify(case, jwks_url)
    except Exception as error:  # every library has its own exception family
        return {"ok": False, "error": f"{type(error).__name__}: {error}"}
    seen = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    return {"ok": True, "sub": sub, "warnings": seen}


def _jwks(url: str) -> dict[str, Any]:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def pyjwt_jwks_client(case: Case, jwks_url: str) -> str:
    signing_key = pyjwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(case.token)
    claims = pyjwt.decode(
        case.token,
        signing_key.key,
        algorithms=list(case.algorithms),
        issuer=case.issuer,
        audience=case.audience,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    return str(claims["sub"])


def joserfc(case: Case, jwks_url: str) -> str:
    key_set = JoserfcKeySet.import_key_set(_jwks(jwks_url))  # type: ignore[arg-type]
    token = joserfc_jwt.decode(case.token, key_set, algorithms=list(case.algorithms))
    registry = joserfc_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": case.issuer},
        aud={"essential": True, "value": case.audience},
        exp={"essential": True},
        sub={"essential": True},
    )
    registry.validate(token.claims)
    return str(token.claims["sub"])


def authlib(case: Case, jwks_url: str) -> str:
    key_set = JsonWebKey.import_key_set(_jwks(jwks_url))
    claims = JsonWebToken(list(case.algorithms)).decode(
        case.token,
        key_set,
        claims_options={
            "iss": {"essential": True, "value": case.issuer},
            "aud": {"essential": True, "value": case.audience},
            "exp": {"essential": True},
            "sub": {"essential": True},
        },
    )
    claims.validate()
    return str(claims["sub"])


def jwcrypto(case: Case, jwks_url: str) -> str:
    key_set = jwcrypto_jwk.JWKSet.from_json(json.dumps(_jwks(jwks_url)))
    token = jwcrypto_jwt.JWT(
        jwt=case.token,
        key=key_set,
        algs=list(case.algorithms),
        check_claims={"iss": case.issuer, "aud": case.audience, "exp": None, "sub": None},
    )
    return str(json.loads(token.claims)["sub"])


def python_jose(case: Case, jwks_url: str) -> str:
    claims = python_jose_jwt.decode(
        case.token,
        _jwks(jwks_url),
        algorithms=list(case.algorithms),
        issuer=case.issuer,
        audience=case.audience,
        options={"require_exp": True, "require_sub": True, "require_iss": True},
    )
    return str(claims["sub"])


PYTHON_VERIFIERS: dict[str, Verifier] = {
    "PyJWT": pyjwt_jwks_client,
    "joserfc": joserfc,
    "Authlib": authlib,
    "jwcrypto": jwcrypto,
    "python-jose": python_jose,
}
