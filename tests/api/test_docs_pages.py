"""/docs, /redoc and /openapi.json: on in development, off in production unless
DOCS_ENABLED=true, and served without any CDN (the pages work offline)."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from authgate.clock import FrozenClock
from authgate.config import Settings, load_settings
from tests.conftest import Api, start_api

DOC_PATHS = ("/docs", "/redoc", "/openapi.json")


def _settings(tmp_path: Path, key_pair: tuple[Path, Path], **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'docs.db'}",
        "jwt_private_key_path": key_pair[0],
        "jwt_public_key_path": key_pair[1],
        "authgate_data_dir": tmp_path / "data",
        "public_url": "https://auth.example.test",
        "secret_key": secrets.token_urlsafe(32),
        "smtp_host": "smtp.example.test",
        "email_verify_url": "https://app.example.test/verify?token={token}",
        "password_reset_url": "https://app.example.test/reset?token={token}",
        **overrides,
    }
    return load_settings(**values)


async def _statuses(api: Api) -> dict[str, int]:
    return {path: (await api.client.get(path)).status_code for path in DOC_PATHS}


@pytest.mark.parametrize(
    ("environment", "docs_enabled", "expected"),
    [
        ("development", None, 200),
        ("development", False, 404),
        ("production", None, 404),
        ("production", True, 200),
    ],
)
async def test_docs_follow_the_environment_and_docs_enabled(
    tmp_path: Path,
    key_pair: tuple[Path, Path],
    clock: FrozenClock,
    environment: str,
    docs_enabled: bool | None,
    expected: int,
) -> None:
    settings = _settings(tmp_path, key_pair, authgate_env=environment, docs_enabled=docs_enabled)
    async for api in start_api(settings, clock):
        assert await _statuses(api) == dict.fromkeys(DOC_PATHS, expected)
        # The API itself is there either way.
        assert (await api.client.get("/.well-known/jwks.json")).status_code == 200


@pytest.mark.parametrize(
    ("page", "types"),
    [
        (
            "/docs",
            {
                "swagger-ui-bundle.js": "text/javascript",
                "swagger-ui.css": "text/css",
                "favicon.png": "image/png",
            },
        ),
        ("/redoc", {"redoc.standalone.js": "text/javascript", "favicon.png": "image/png"}),
    ],
)
async def test_doc_pages_load_only_same_origin_assets(
    tmp_path: Path,
    key_pair: tuple[Path, Path],
    clock: FrozenClock,
    page: str,
    types: dict[str, str],
) -> None:
    async for api in start_api(_settings(tmp_path, key_pair), clock):
        response = await api.client.get(page)
        assert response.status_code == 200
        html = response.text
        # Nothing absolute: no CDN, no Google Fonts, no FastAPI favicon.
        assert "http://" not in html
        assert "https://" not in html
        referenced = set(re.findall(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""", html))
        assets = {url for url in referenced if url.startswith("/docs/assets/")}
        assert {url.rsplit("/", 1)[1] for url in assets} == set(types)
        assert referenced - assets <= {"/openapi.json"}
        for url in assets:
            assert urlsplit(urljoin("http://authgate.test/", url)).netloc == "authgate.test"
            asset = await api.client.get(url)
            assert asset.status_code == 200, url
            assert asset.headers["content-type"].startswith(types[url.rsplit("/", 1)[1]])
            assert len(asset.content) > 1_000
        assert "'/openapi.json'" in html or '"/openapi.json"' in html


async def test_assets_outside_the_package_directory_are_not_served(
    tmp_path: Path, key_pair: tuple[Path, Path], clock: FrozenClock
) -> None:
    async for api in start_api(_settings(tmp_path, key_pair), clock):
        for path in ("/docs/assets/../__init__.py", "/docs/assets/%2e%2e/core.py", "/docs/assets/"):
            assert (await api.client.get(path)).status_code == 404, path


async def test_every_operation_has_its_own_id(
    tmp_path: Path, key_pair: tuple[Path, Path], clock: FrozenClock
) -> None:
    # Code generators name client methods by operationId: a duplicate (FastAPI gives
    # one route with two methods one id) makes one method shadow the other.
    async for api in start_api(_settings(tmp_path, key_pair), clock):
        schema = (await api.client.get("/openapi.json")).json()
        ids = [
            operation["operationId"]
            for item in schema["paths"].values()
            for operation in item.values()
            if isinstance(operation, dict) and "operationId" in operation
        ]
        assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
        assert {"secure_get", "secure_post"} <= set(ids)
