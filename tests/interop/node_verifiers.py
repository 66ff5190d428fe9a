"""Node's JOSE libraries (tests/interop/node/verify.mjs), run as one process per job.

`make test` installs the packages with ``npm ci`` (a stamp file, like the Python
venv); nothing is installed from here. Without node or the installed packages the
Node checks skip locally but FAIL when CI=true (or AUTHGATE_TEST_REQUIRE_NODE=1),
as the MariaDB tests do: CI must never pass on a silent skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.interop.verifiers import Case

NODE_DIR = Path(__file__).resolve().parent / "node"
SCRIPT = NODE_DIR / "verify.mjs"
NODE_LIBRARIES = ("jose", "jsonwebtoken+jwks-rsa", "express-jwt")
MINIMUM_NODE = 20


def node_required() -> bool:
    return (
        os.environ.get("CI", "").lower() == "true"
        or os.environ.get("AUTHGATE_TEST_REQUIRE_NODE") == "1"
    )


def _missing() -> str | None:
    node = shutil.which("node")
    if node is None:
        return "node is not on PATH"
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout.strip()
    major = version.lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < MINIMUM_NODE:
        return f"node {version or '?'} is older than {MINIMUM_NODE}"
    lock = NODE_DIR / "node_modules" / ".package-lock.json"
    if not lock.exists():
        return f"the packages of {NODE_DIR} are not installed (make test runs npm ci there)"
    return None


def ensure_node() -> str:
    """The node binary, or skip (fail under CI) when Node or its packages are missing."""
    missing = _missing()
    if missing is not None:
        if node_required():
            pytest.fail(f"{missing} (CI=true: the Node interop tests are required)", pytrace=False)
        pytest.skip(missing)
    node = shutil.which("node")
    assert node is not None
    return node


def run_node_verifiers(jwks_url: str, cases: list[Case]) -> dict[str, dict[str, Any]]:
    """Every Node library on every case: {library: {case: {"ok", "sub" | "error"}}}."""
    node = ensure_node()
    job = {"jwksUrl": jwks_url, "cases": [case.as_json() for case in cases]}
    # The job (tokens included) goes on standard input, never into argv.
    result = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=NODE_DIR,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcomes: dict[str, dict[str, Any]] = json.loads(result.stdout)
    assert sorted(outcomes) == sorted(NODE_LIBRARIES)
    return outcomes
