"""``authgate audit`` never prints a client's control characters to the operator's terminal."""

from __future__ import annotations

import json
import unicodedata

import pytest

from authgate.cli.audit import print_audit, printable
from tests.conftest import Api

HOSTILE_AGENTS = {
    "ESC sequence (clear screen, retitle)": "curl/8\x1b[2J\x1b]0;pwned\x07",
    "forged audit line": "ua\r\n2030-01-01T12:00:00+00:00 signin user_id=someone-else",
    "bidi override": "Mozilla \u202eriqmuc\u202c/5.0",
    "C1 control (8-bit CSI)": "ua\x9b31m red",
    "zero-width and separators": "a\u200db\u2028c\u2029d\ufeff",
    "backslash that imitates an escape": "ua\\x1b[2J",
}


def _unsafe(text: str) -> list[str]:
    return [c for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


@pytest.mark.parametrize("agent", list(HOSTILE_AGENTS.values()), ids=list(HOSTILE_AGENTS))
async def test_text_output_escapes_what_a_terminal_would_act_on(
    api: Api, agent: str, capsys: pytest.CaptureFixture[str]
) -> None:
    response = await api.client.post(
        "/api/v1/auth/credentials",
        json={"email": "cow@cow.jp", "password": "nope"},
        headers={b"user-agent": agent.encode("utf-8")},
    )
    assert response.status_code == 401
    assert await print_audit(api.settings, user=None, since=None, limit=10, as_json=False) == 0
    text = capsys.readouterr().out
    assert text.count("\n") == 1  # one event, one line: no forged second line
    assert _unsafe(text) == []
    assert "\x1b" not in text
    assert "\r" not in text

    # The JSON form was already safe (json.dumps escapes) and keeps the exact value.
    assert await print_audit(api.settings, user=None, since=None, limit=10, as_json=True) == 0
    stored = json.loads(capsys.readouterr().out)["user_agent"]
    assert stored
    assert printable(stored) in text


def test_printable_escapes_are_unambiguous() -> None:
    assert printable("Mozilla/5.0 (X11; Linux) caf\u00e9 \u7530\u4e2d") == (
        "Mozilla/5.0 (X11; Linux) caf\u00e9 \u7530\u4e2d"
    )
    assert printable("a\x1bb") == "a\\x1bb"
    assert printable("\u202e") == "\\u202e"
    assert printable("\U000e0041") == "\\U000e0041"  # a TAG character (Cf)
    # A literal backslash-x is doubled, so it cannot pass for an escaped ESC.
    assert printable("\\x1b") == "\\\\x1b"
    assert printable("\\x1b") != printable("\x1b")
