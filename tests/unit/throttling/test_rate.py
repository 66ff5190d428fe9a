"""RateLimit parsing: the shapes we accept, and a clear refusal for the rest."""

from __future__ import annotations

import pytest

from authgate.throttling import RateLimit


@pytest.mark.parametrize(
    ("text", "amount", "window"),
    [
        ("100/minute", 100, 60),
        ("10/15 minutes", 10, 900),
        ("10 per 15 minutes", 10, 900),
        ("20/hour", 20, 3600),
        ("1/second", 1, 1),
        ("5 / 2 days", 5, 172_800),
    ],
)
def test_parses_amount_and_window(text: str, amount: int, window: int) -> None:
    assert RateLimit.parse(text) == RateLimit(amount=amount, window_seconds=window)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is not a rate limit"),
        ("lots", "is not a rate limit"),
        ("100", "is not a rate limit"),
        ("-1/minute", "is not a rate limit"),
        ("10/fortnight", "is not a rate limit"),
        ("0/minute", "allows no requests"),
        ("5/0 minutes", "zero-length window"),
        ("1/second;5/minute", "lists several"),
        ("1/second, 5/minute", "lists several"),
    ],
)
def test_refuses_bad_strings_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        RateLimit.parse(text)
    assert repr(text) in str(caught.value)
    assert "100/minute" in str(caught.value) or problem == "allows no requests"


@pytest.mark.parametrize(("amount", "window"), [(0, 60), (-1, 60), (1, 0)])
def test_refuses_empty_limits_built_directly(amount: int, window: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RateLimit(amount=amount, window_seconds=window)
