"""Report what the fuzzer tried, at the end of the run."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.fuzz.test_openapi import STATS

    if STATS["requests"]:
        by_class = ", ".join(f"{k}: {v}" for k, v in sorted(STATS.items()) if k != "requests")
        terminalreporter.write_line(
            f"fuzz: {STATS['requests']} requests, {STATS['5xx']} server errors ({by_class})"
        )
