"""Which database revisions a code revision serves (expand/contract window)."""

from __future__ import annotations

import pytest

from authgate.storage.migrate import head_revision
from authgate.storage.schema_window import declared_window, known_revisions, verdict

KNOWN = ("0007", "0008", "0009")


@pytest.mark.parametrize(
    ("database", "oldest", "ready", "words"),
    [
        ("0009", None, True, "as the code"),
        (None, None, False, "not migrated"),
        ("0008", None, False, "behind the code"),
        ("0010", "0009", True, "still serves code from 0009"),
        ("0010", "0008", True, "still serves code from 0008"),
        ("0011", "0010", False, "no longer serves code at 0009"),
        ("0010", None, False, "no longer serves"),
    ],
    ids=["same", "unmigrated", "behind", "ahead-in-window", "ahead-wide", "ahead-past", "no-row"],
)
def test_the_window_decides(
    database: str | None, oldest: str | None, ready: bool, words: str
) -> None:
    result = verdict(
        database_revision=database,
        oldest_code_served=oldest,
        code_revision="0009",
        known_revisions=KNOWN,
    )
    assert result.ready is ready
    assert words in result.reason
    assert result.action == ("" if ready else result.action)
    if not ready:
        assert result.action in (
            "run authgate migrate",
            "upgrade this instance to the release that migrated it",
        )


def test_every_revision_from_0009_declares_its_window() -> None:
    """A revision without OLDEST_CODE_SERVED would leave older instances guessing."""
    revisions = known_revisions()
    assert revisions[-1] == head_revision()
    for revision in revisions[revisions.index("0009") :]:
        oldest = declared_window(revision)
        assert oldest is not None, revision
        # The window reaches back, never forward.
        assert revisions.index(oldest) <= revisions.index(revision)
