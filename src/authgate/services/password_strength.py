"""Password strength: refuse passwords that are easy to guess, measured by zxcvbn.

Length alone (``PasswordPolicy``) lets through "password1" and the user's own
email address. zxcvbn estimates guessability against lists of common passwords,
words, names, keyboard patterns and dates, plus the user's own details (email,
names), which are the first thing a targeted guess tries (NIST SP 800-63B
§5.1.1.2 asks for exactly this: check against breached and context-specific words).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zxcvbn import matching, zxcvbn  # type: ignore[import-untyped]

from authgate.crypto.passwords import normalize_password
from authgate.errors import WeakPassword

DEFAULT_MIN_SCORE = 2
# zxcvbn's matching is superlinear in length (it refuses over 72 characters by
# default); Dropbox advises scoring a prefix. A long passphrase is judged by its
# start, which is already strong if the whole is.
SCORED_PREFIX = 100
# Even 100 characters are too many for the event loop: zxcvbn looks every substring
# up in every dictionary once per l33t substitution set (4 -> a, 1 -> i or l...), so
# its cost is about (substitution sets + 2) x length^2 look-ups. Measured: ~55 ms
# for 100 random letters, 2.3 s for 100 characters chosen to have 256 substitution
# sets, which any anonymous sign-up could send. The prefix is therefore shortened
# until that estimate fits MATCH_BUDGET (~10 ms at worst), but never below
# MIN_SCORED_PREFIX. Scoring fewer characters lowers the score if anything, so this
# errs towards refusing; 12 random characters already score 4, and a plain
# passphrase is scored on its first 44.
MATCH_BUDGET = 6_000
MIN_SCORED_PREFIX = 12

_TOO_EASY = "This password is too easy to guess"
_WORD_SPLIT = re.compile(r"[\W_]+")

# zxcvbn keeps the user inputs in a module-level dictionary while it scores, so two
# threads scoring at once could judge one user's password with another's email.
_zxcvbn_lock = threading.Lock()


@dataclass(frozen=True)
class PasswordStrength:
    """``min_score`` is zxcvbn's 0-4 scale; 2 refuses the guessable, 0 turns the check off."""

    min_score: int = DEFAULT_MIN_SCORE

    def __post_init__(self) -> None:
        if not 0 <= self.min_score <= 4:
            raise ValueError(f"min_score must be between 0 and 4, got {self.min_score}")

    def check(self, password: str, *, email: str, names: Sequence[str]) -> None:
        """Raise ``WeakPassword`` when zxcvbn scores ``password`` below ``min_score``."""
        if self.min_score == 0:
            return
        # Both the raw text and the form that is hashed (NFKC) are scored, and the
        # weaker result counts: NFKC turns one "\ufdfa" into 18 letters that score
        # 4, and turns a full-width "password" (which zxcvbn knows no word of)
        # into "password", which is how a guesser would type it. Most passwords are
        # already NFKC, so they are scored once.
        inputs = user_inputs(email, names)
        forms = dict.fromkeys((password, normalize_password(password)))
        result = min((_score(form, inputs) for form in forms), key=lambda r: int(r["score"]))
        if result["score"] < self.min_score:
            raise WeakPassword(_message(result))


def _score(password: str, inputs: list[str]) -> dict[str, Any]:
    scored = scored_prefix(password)
    with _zxcvbn_lock:
        result: dict[str, Any] = zxcvbn(scored, user_inputs=inputs, max_length=SCORED_PREFIX)
    return result


def scored_prefix(password: str) -> str:
    """The part of ``password`` zxcvbn is given: at most SCORED_PREFIX characters,
    fewer when its l33t characters would make matching exceed MATCH_BUDGET."""
    prefix = password[:SCORED_PREFIX]
    subtable = matching.relevant_l33t_subtable(prefix, matching.L33T_TABLE)
    # Product of the choices per letter: close to the number of substitution sets
    # zxcvbn enumerates, without paying for the enumeration (6 ms at worst).
    substitution_sets = math.prod(len(choices) for choices in subtable.values())
    fits = math.isqrt(MATCH_BUDGET // (substitution_sets + 2))
    return prefix[: max(MIN_SCORED_PREFIX, fits)]


def user_inputs(email: str, names: Sequence[str]) -> list[str]:
    """The user's own words: the whole email, its local part, its pieces and the
    pieces run together, the domain's name, each name, its words, and all the names'
    words run together ("MelvinFriedman!" scores 3 unless that is a single input)."""
    local, _, domain = email.strip().partition("@")
    local_pieces = _WORD_SPLIT.split(local)
    words = [email.strip(), local, *local_pieces, "".join(local_pieces)]
    if domain:
        # "acme" from "acme.co.uk": the organisation's name is a favourite password.
        words.append(domain.split(".")[0])
    name_words = [word for name in names for word in name.split()]
    words.extend([*(name.strip() for name in names), *name_words, "".join(name_words)])
    # zxcvbn lowercases these itself; single letters would only add noise.
    return list(dict.fromkeys(w for w in words if len(w) > 1))


def _message(result: dict[str, Any]) -> str:
    if any(match.get("dictionary_name") == "user_inputs" for match in result["sequence"]):
        return f"{_TOO_EASY}: it is built from your email address or name."
    feedback = result["feedback"]
    if feedback["warning"]:
        return f"{_TOO_EASY}: {feedback['warning']}"
    if feedback["suggestions"]:
        return f"{_TOO_EASY}. {feedback['suggestions'][0]}"
    return f"{_TOO_EASY}."
