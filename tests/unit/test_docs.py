"""README and .env.example must name every setting the code reads, and no other."""

from __future__ import annotations

import re
from pathlib import Path

from authgate.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _setting_names() -> set[str]:
    return {(field.alias or name).upper() for name, field in Settings.model_fields.items()}


def test_env_example_documents_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert documented == _setting_names()


def test_readme_configuration_table_names_every_setting() -> None:
    text = (ROOT / "README.md").read_text()
    in_table = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", text, flags=re.MULTILINE))
    for row in re.findall(r"^\| ((?:`[A-Z][A-Z0-9_]+`,? ?)+) \|", text, flags=re.MULTILINE):
        in_table |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row))
    assert _setting_names() <= in_table
