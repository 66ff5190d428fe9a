"""authgate.resource is a public package: its names are published, and it stands alone.

In the style of httpx's tests/test_exported_members.py: ``__all__`` is exactly what
the package's modules define publicly, so nothing new slips out unexported (or stays
exported after it is gone). ``pip install authgate`` is this kit with three
dependencies; a process in which every other installed distribution is unimportable
still verifies a real token with it, and the ``authgate`` command there says how to
install the server.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import pkgutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jwt
from packaging.requirements import Requirement

import authgate.resource
from tests.resource.support import AUDIENCE, ISSUER, NOW, jwks, mint, rsa_key

PACKAGE_DIR = Path(authgate.resource.__file__).parent
ROOT = Path(__file__).resolve().parents[2]
# The kit's imports (besides the standard library and itself), by distribution.
KIT_DISTRIBUTIONS = {"httpx": "httpx", "jwt": "pyjwt", "cryptography": "cryptography"}


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _closure(names: set[str]) -> set[str]:
    """``names`` and every distribution they require (no extras), as installed here."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_name(line))
    return seen


def _blocked_modules() -> list[str]:
    """Top-level modules of every installed distribution the kit does not depend on:
    the server's extras (fastapi, starlette, sqlalchemy, pydantic, argon2, ...) and the
    test tools alike. coverage stays: it may be measuring the child process, and with
    ``concurrency = greenlet`` (pyproject.toml) it imports greenlet at start-up."""
    allowed = _closure(set(KIT_DISTRIBUTIONS.values())) | {"coverage", "greenlet"}
    blocked = {
        module
        for module, distributions in importlib.metadata.packages_distributions().items()
        if not {re.sub(r"[-_.]+", "-", d).lower() for d in distributions} & allowed
    }
    return sorted(blocked)


# Run in a child process before anything else: every blocked module is unimportable.
_BLOCKER = """
import importlib.abc, sys
BLOCKED = frozenset({blocked!r})
already = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not already, already

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
        return None

sys.meta_path.insert(0, Block())
"""


def _public_definitions(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    # A module's logger is its own, not part of the API.
    return {name for name in names if not name.startswith("_") and name != "logger"}


def test_every_public_definition_is_exported() -> None:
    modules = [info.name for info in pkgutil.iter_modules([str(PACKAGE_DIR)])]
    assert modules, "no modules found"
    defined: set[str] = set()
    for module in modules:
        defined |= _public_definitions(PACKAGE_DIR / f"{module}.py")
    defined.discard("__all__")
    assert set(authgate.resource.__all__) == defined


def test_every_exported_name_exists_once_and_sorted() -> None:
    exported = authgate.resource.__all__
    assert len(exported) == len(set(exported))
    assert exported == sorted(exported, key=lambda n: (not n.isupper(), n[0].islower(), n))
    for name in exported:
        assert getattr(authgate.resource, name) is not None
    namespace = {
        name
        for name, value in vars(authgate.resource).items()
        if not name.startswith("_") and not isinstance(value, type(authgate))
    }
    assert namespace == set(exported)


def test_importing_it_pulls_in_nothing_of_the_server() -> None:
    forbidden = (
        "authgate.web",
        "authgate.config",
        "authgate.storage",
        "authgate.services",
        "authgate.crypto",
        "authgate.identity",
        "sqlalchemy",
        "fastapi",
        "starlette",
        "pydantic",
        "uvicorn",
    )
    check = (
        "import authgate.resource, sys; "
        f"bad = sorted(m for m in sys.modules if m.startswith({forbidden!r})); "
        "assert not bad, bad"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_its_source_imports_only_what_the_kit_may_use() -> None:
    # The stdlib, httpx, PyJWT, cryptography, itself; fastapi only inside a function.
    allowed_roots = {"httpx", "jwt", "cryptography", "authgate"} | set(sys.stdlib_module_names)
    for path in PACKAGE_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots = {node.module.split(".")[0]}
                if node.module.startswith("authgate") and not node.module.startswith(
                    "authgate.resource"
                ):
                    roots.add("server side: " + node.module)
            else:
                continue
            assert roots <= allowed_roots, (path.name, roots - allowed_roots)


def _without_server(code: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    blocker = _BLOCKER.format(blocked=_blocked_modules())
    return subprocess.run(
        [sys.executable, "-c", blocker + code],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def test_the_blocked_set_holds_the_server_dependencies() -> None:
    blocked = set(_blocked_modules())
    server = {"fastapi", "starlette", "sqlalchemy", "alembic", "pydantic", "pydantic_settings"}
    server |= {"argon2", "structlog", "uvicorn", "limits", "zxcvbn", "jinja2", "bcrypt"}
    assert server <= blocked
    assert not blocked & {"jwt", "httpx", "cryptography", "httpcore", "anyio"}


def test_the_kit_verifies_a_real_token_without_the_server_dependencies() -> None:
    key = rsa_key("standalone")
    token = mint(key)
    code = """
import asyncio, json, sys
from authgate.resource import *
import authgate.resource
missing = [n for n in authgate.resource.__all__ if n not in globals()]
assert not missing, missing
given = json.load(sys.stdin)
verifier = TokenVerifier(
    StaticKeys.from_jwks(given["jwks"]),
    issuer=given["issuer"],
    audience=given["audience"],
    now=lambda: given["now"],
)
claims = asyncio.run(verifier.verify(given["token"]))
try:
    asyncio.run(verifier.verify(given["token"][:-4] + "AAAA"))
except InvalidToken:
    refused = True
assert refused
try:
    import fastapi  # noqa: F401
except ModuleNotFoundError:
    print(claims.sub, "no-fastapi")
"""
    given = {"jwks": jwks(key), "issuer": ISSUER, "audience": AUDIENCE, "now": NOW, "token": token}
    result = _without_server(code, json.dumps(given))
    assert result.returncode == 0, result.stderr
    subject = jwt.decode(token, options={"verify_signature": False})["sub"]
    assert result.stdout.split() == [subject, "no-fastapi"]


def test_the_authgate_command_without_the_server_says_how_to_install_it() -> None:
    code = """
import sys
from authgate.cli.launcher import main
sys.exit(main(["version"]))
"""
    result = _without_server(code)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("authgate: the authgate server is not installed: ")
    assert 'pip install "authgate[server]"' in lines[0]
    assert result.stdout == ""


def test_the_console_script_is_the_launcher_and_main_still_runs() -> None:
    scripts = _project()["scripts"]
    assert scripts == {"authgate": "authgate.cli.launcher:main"}
    result = subprocess.run(
        [sys.executable, "-m", "authgate", "version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_the_core_dependencies_are_exactly_the_kits() -> None:
    project = _project()
    core = {_name(line) for line in project["dependencies"]}
    assert core == set(KIT_DISTRIBUTIONS.values())
    extras = project["optional-dependencies"]
    assert set(extras) == {"server"}
    server = {_name(line) for line in extras["server"]}
    assert {"fastapi", "sqlalchemy", "pydantic-settings", "argon2-cffi"} <= server
    assert not server & core
