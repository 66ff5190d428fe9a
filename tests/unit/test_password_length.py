"""Password length and strength are judged on what was typed, not only on its NFKC form."""

from __future__ import annotations

import unicodedata

import pytest

from authgate.errors import WeakPassword
from authgate.services.password_policy import MAX_PASSWORD_LENGTH, PasswordPolicy, password_length
from authgate.services.password_strength import PasswordStrength

# One character that NFKC expands to 18 ("صلى الله عليه وسلم").
ARABIC_LIGATURE = "\ufdfa"


def test_the_ligature_really_expands() -> None:
    assert len(unicodedata.normalize("NFKC", ARABIC_LIGATURE)) == 18


@pytest.mark.parametrize(
    "password",
    [
        ARABIC_LIGATURE,
        ARABIC_LIGATURE * 2,
        "\u2163\u2163\u2163",  # Roman numeral four: "IV" each after NFKC
        "\u3393" * 4,  # SQUARE GHZ: "GHz" each
        "e\u0301" * 4,  # 8 raw code points, 4 after NFKC composes them
    ],
)
def test_short_passwords_are_short_in_either_form(password: str) -> None:
    assert password_length(password) < 8
    with pytest.raises(WeakPassword, match="at least 8"):
        PasswordPolicy(min_length=8).check(password)


def test_long_enough_in_both_forms_passes() -> None:
    PasswordPolicy(min_length=8).check("caf\u00e9 au lait")
    PasswordPolicy(min_length=8).check("\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17")


def test_the_upper_limit_is_on_the_raw_text() -> None:
    # 100 raw characters, 1800 after NFKC: allowed, the raw text is short.
    PasswordPolicy(min_length=8).check(ARABIC_LIGATURE * 100)
    with pytest.raises(WeakPassword, match="at most"):
        PasswordPolicy(min_length=8).check("a" * (MAX_PASSWORD_LENGTH + 1))


@pytest.mark.parametrize(
    "password",
    [
        ARABIC_LIGATURE,  # 18 letters of Arabic after NFKC: scored 4 before
        ARABIC_LIGATURE * 3,
        "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44",  # full-width "password"
    ],
)
def test_strength_is_the_weaker_of_the_raw_and_normalized_forms(password: str) -> None:
    with pytest.raises(WeakPassword):
        PasswordStrength(min_score=2).check(password, email="cow@cow.jp", names=["Melvin"])


def test_a_strong_password_with_nfkc_characters_still_passes() -> None:
    PasswordStrength(min_score=2).check(
        "Correct\u00a0horse battery st\u00e4ple", email="cow@cow.jp", names=["Melvin"]
    )
