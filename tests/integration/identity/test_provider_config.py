"""Provider configuration is validated at construction, before any token is seen."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from authgate.clock import FrozenClock
from authgate.identity import (
    JwksCache,
    OidcProviderConfig,
    apple_config,
    build_verifiers,
    generic_config,
    google_config,
)

GOOD_URL = "https://login.corp.example/jwks"


@pytest.mark.parametrize(
    "url",
    [
        "http://www.googleapis.com/oauth2/v3/certs",
        "http://example.com/keys",
        "http://127.0.0.1.nip.io/keys",
        "http://localhost.evil.example/keys",
        "http://10.0.0.1/keys",
        "ftp://127.0.0.1/keys",
        "file:///etc/keys.json",
        "not a url",
        "https:///no-host",
    ],
)
async def test_insecure_jwks_url_is_refused_at_construction(
    url: str, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    with pytest.raises(ValueError, match=r"URL|host"):
        JwksCache(url, http=http, clock=clock)
    with pytest.raises(ValueError):
        google_config(["client"], jwks_url=url)
    with pytest.raises(ValueError):
        generic_config("corp", "https://login.corp.example", url, ["client"])


@pytest.mark.parametrize(
    "url",
    [
        "https://www.googleapis.com/oauth2/v3/certs",
        "http://127.0.0.1:8080/keys",
        "http://127.5.6.7/keys",
        "http://localhost:8080/keys",
        "http://[::1]:8080/keys",
    ],
)
async def test_https_and_loopback_http_jwks_urls_are_allowed(
    url: str, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    # Construction never touches the network.
    assert JwksCache(url, http=http, clock=clock).url == url


def test_presets_pin_the_documented_issuers_and_rs256() -> None:
    google = google_config("client-1")
    assert google.issuers == ("https://accounts.google.com", "accounts.google.com")
    assert google.audiences == ("client-1",)
    assert google.algorithms == ("RS256",)
    assert google.jwks_url == "https://www.googleapis.com/oauth2/v3/certs"

    apple = apple_config(["com.example.app", "com.example.web"])
    assert apple.issuers == ("https://appleid.apple.com",)
    assert apple.audiences == ("com.example.app", "com.example.web")
    assert apple.algorithms == ("RS256",)
    assert apple.jwks_url == "https://appleid.apple.com/auth/keys"


@pytest.mark.parametrize(
    "algorithms",
    [("HS256",), ("none",), ("RS256", "HS512"), ("ES512",), ("rs256",), ()],
)
def test_generic_provider_accepts_only_asymmetric_algorithms(
    algorithms: tuple[str, ...],
) -> None:
    with pytest.raises(ValueError):
        generic_config("corp", "https://login.corp.example", GOOD_URL, ["c"], algorithms)


def test_generic_provider_with_allowed_algorithms() -> None:
    config = generic_config(
        "corp_2-b",
        "https://login.corp.example",
        GOOD_URL,
        "client",
        ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"],
    )
    assert config.issuers == ("https://login.corp.example",)
    assert config.audiences == ("client",)


@pytest.mark.parametrize(
    "name", ["Corp", "credentials", "", "a b", "corp/1", "../x", "x" * 33, "ünï"]
)
def test_generic_provider_name_rules(name: str) -> None:
    with pytest.raises(ValueError):
        generic_config(name, "https://login.corp.example", GOOD_URL, ["c"])


@pytest.mark.parametrize("issuer", ["http://login.corp.example", "login.corp.example", ""])
def test_generic_provider_issuer_must_be_https(issuer: str) -> None:
    with pytest.raises(ValueError):
        generic_config("corp", issuer, GOOD_URL, ["c"])


@pytest.mark.parametrize("audiences", [(), ("",), (" padded",)])
def test_audiences_must_be_given(audiences: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        google_config(audiences)


def test_config_validates_even_without_the_helpers() -> None:
    with pytest.raises(ValueError):
        OidcProviderConfig(
            name="corp",
            issuers=("https://login.corp.example",),
            audiences=("c",),
            algorithms=("HS256",),
            jwks_url=GOOD_URL,
        )


async def test_build_verifiers_refuses_duplicate_names(
    http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    with pytest.raises(ValueError, match="twice"):
        build_verifiers([google_config("a"), google_config("b")], http=http, clock=clock)


async def test_build_verifiers_gives_one_verifier_and_key_cache_per_provider(
    http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    verifiers = build_verifiers([google_config("a"), apple_config("b")], http=http, clock=clock)
    assert sorted(verifiers) == ["apple", "google"]
    assert verifiers["google"].keys is not verifiers["apple"].keys
    assert verifiers["google"].name == "google"


@pytest.mark.parametrize(
    "options",
    [
        {"timeout_seconds": 0},
        {"min_ttl_seconds": 100, "max_ttl_seconds": 10},
        {"refetch_cooldown_seconds": -1},
    ],
)
async def test_cache_settings_are_validated(
    http: httpx.AsyncClient, clock: FrozenClock, options: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        JwksCache(GOOD_URL, http=http, clock=clock, **options)
