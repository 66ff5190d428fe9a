"""authgate.resource is a public package: its names are published, and it stands alone.

In the style of httpx's tests/test_exported_members.py: ``__all__`` is exactly what
the package's modules define publicly, so nothing new slips out unexported (or stays
exported after it is gone).
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import authgate.resource

PACKAGE_DIR = Path(authgate.resource.__file__).parent


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
