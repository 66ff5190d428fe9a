"""deploy/aws/template.yaml: cfn-lint passes, and what it names exists in authgate
(handlers, settings), so the example deploys what this checkout is."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from authgate.config import Settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "aws" / "template.yaml"
AUTHORIZER_VARIABLES = {"JWT_ISSUER", "JWT_AUDIENCE", "JWKS_URL", "AUTHORIZER_ROUTES"}


def cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    code = "import sys; from cfnlint.runner import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _functions() -> dict[str, dict[str, Any]]:
    # cfn-lint's own reader: it understands !Ref, !Sub and !GetAtt.
    document, problems = decode(str(TEMPLATE))
    assert not problems
    return {
        name: resource["Properties"]
        for name, resource in document["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def test_cfn_lint_passes() -> None:
    result = cfn_lint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "template.yaml"
    broken.write_text(TEMPLATE.read_text().replace("CodeUri: build/server/", "CodeUrl: x", 1))
    result = cfn_lint(broken)
    assert result.returncode != 0
    assert "CodeUrl" in result.stdout


@pytest.mark.parametrize("name", ["AuthgateFunction", "AuthorizerFunction", "TasksFunction"])
def test_each_function_names_a_real_handler_and_real_settings(name: str) -> None:
    function = _functions()[name]
    module, _, attribute = function["Handler"].rpartition(".")
    assert callable(getattr(importlib.import_module(module), attribute))
    variables = set(function["Environment"]["Variables"])
    if name == "AuthorizerFunction":
        assert variables <= AUTHORIZER_VARIABLES
        assert "SECRET_KEY" not in variables  # it needs no secret of the server
    else:
        settings = {(field.alias or key).upper() for key, field in Settings.model_fields.items()}
        assert variables <= settings, variables - settings


def test_the_schedule_and_the_seed_layout() -> None:
    functions = _functions()
    events = functions["AuthgateFunction"]["Events"]
    paths = {event["Properties"]["Path"] for event in events.values()}
    assert {"/register", "/login", "/refreshToken", "/revokeToken", "/secure"} <= paths
    secure = next(e for e in events.values() if e["Properties"]["Path"] == "/secure")
    assert secure["Properties"]["Auth"] == {"Authorizer": "TokenAuthorizer"}
    (schedule,) = functions["TasksFunction"]["Events"].values()
    assert schedule["Type"] == "Schedule"
