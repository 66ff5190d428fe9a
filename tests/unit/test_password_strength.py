"""PasswordStrength: zxcvbn refuses common and user-derived passwords, fast."""

from __future__ import annotations

import secrets
import string
import time

import pytest

from authgate.errors import WeakPassword
from authgate.services.password_strength import (
    MIN_SCORED_PREFIX,
    SCORED_PREFIX,
    PasswordStrength,
    scored_prefix,
    user_inputs,
)

EMAIL = "melvin.friedman@example.com"
NAMES = ["Melvin", "Friedman"]
ALPHABET = string.ascii_letters + string.digits + "!#$%&*+-=?@^_~"
# Every l33t character zxcvbn knows: 256 substitution sets, 2.3 s unbounded.
L33T_HEAVY = ("4@8({[<3691!|0$5+%2" * 6)[:SCORED_PREFIX]


def random_password(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


@pytest.mark.parametrize(
    ("password", "warning"),
    [
        ("password", "This is a top-10 common password."),
        ("password1", "This is a very common password."),
        ("qwerty123", "This is a very common password."),
        ("iloveyou", "This is a top-100 common password."),
    ],
)
def test_refuses_common_passwords_with_zxcvbn_warning(password: str, warning: str) -> None:
    with pytest.raises(WeakPassword) as caught:
        PasswordStrength().check(password, email=EMAIL, names=NAMES)
    assert caught.value.message == f"This password is too easy to guess: {warning}"
    assert caught.value.code == "weak_password"


@pytest.mark.parametrize(
    "password",
    ["melvin.friedman2024", "Melvin.Friedman", "friedman1990", "MelvinFriedman!"],
)
def test_refuses_passwords_built_from_the_email_or_name(password: str) -> None:
    with pytest.raises(WeakPassword, match="built from your email address or name"):
        PasswordStrength().check(password, email=EMAIL, names=NAMES)


def test_refuses_the_users_name_even_when_not_in_the_email() -> None:
    with pytest.raises(WeakPassword, match="email address or name"):
        PasswordStrength().check(
            "Quetzalcoatl42", email="qc@example.com", names=["Quetzalcoatl", "Smith"]
        )
    # The same password is fine for someone with another name.
    PasswordStrength().check("Quetzalcoatl42", email="qc@example.com", names=["Ann", "Smith"])


@pytest.mark.parametrize(
    "password",
    ["correct horse battery staple", "xK9#mQ2$vL7@pR4!", random_password(16)],
    ids=["passphrase", "mixed 16", "random 16"],  # the same on every xdist worker
)
def test_accepts_strong_passwords_at_score_2(password: str) -> None:
    PasswordStrength(min_score=2).check(password, email=EMAIL, names=NAMES)


@pytest.mark.parametrize("password", ["password", "melvin.friedman2024", "a"])
def test_min_score_0_accepts_everything(password: str) -> None:
    PasswordStrength(min_score=0).check(password, email=EMAIL, names=NAMES)


def test_a_higher_score_refuses_more() -> None:
    PasswordStrength(min_score=2).check("Moo00!_*&x", email=EMAIL, names=NAMES)
    with pytest.raises(WeakPassword):
        PasswordStrength(min_score=4).check("Moo00!_*&x", email=EMAIL, names=NAMES)


@pytest.mark.parametrize("score", [-1, 5])
def test_min_score_out_of_range_is_refused(score: int) -> None:
    with pytest.raises(ValueError, match="between 0 and 4"):
        PasswordStrength(min_score=score)


@pytest.mark.parametrize(
    "password",
    [
        random_password(1024),
        L33T_HEAVY,
        "".join(secrets.choice(string.printable[:94]) for _ in range(100)),
    ],
    ids=["1024 random", "l33t heavy", "100 printable"],
)
@pytest.mark.serial  # asserts wall time
def test_long_strong_passwords_are_accepted_quickly(password: str) -> None:
    started = time.perf_counter()
    PasswordStrength().check(password, email=EMAIL, names=NAMES)
    # Typically under 10 ms; the bound is loose for slow CI machines. Unbounded,
    # zxcvbn takes seconds on these (and refuses over 72 characters by default).
    assert time.perf_counter() - started < 0.5


def test_scored_prefix_is_capped_and_shrinks_with_l33t_characters() -> None:
    words = "correct horse battery staple " * 10
    assert len(scored_prefix(words)) == 44
    assert scored_prefix("short") == "short"
    assert len(scored_prefix("a" * 1000)) <= SCORED_PREFIX
    assert scored_prefix(L33T_HEAVY) == L33T_HEAVY[:MIN_SCORED_PREFIX]


def test_length_alone_does_not_make_a_password_strong() -> None:
    with pytest.raises(WeakPassword, match="Repeats"):
        PasswordStrength().check("password1" * 20, email=EMAIL, names=NAMES)


def test_user_inputs_cover_email_parts_domain_and_names() -> None:
    assert user_inputs("Melvin.Friedman@acme.co.uk", ["Melvin", "Anna Maria"]) == [
        "Melvin.Friedman@acme.co.uk",
        "Melvin.Friedman",
        "Melvin",
        "Friedman",
        "MelvinFriedman",
        "acme",
        "Anna Maria",
        "Anna",
        "Maria",
        "MelvinAnnaMaria",
    ]


def test_user_inputs_skip_empty_and_single_letters() -> None:
    assert user_inputs("a@b", ["", " ", "J"]) == ["a@b"]
