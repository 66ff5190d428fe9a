"""What a password must be: long enough, not absurdly long. No composition rules
(NIST SP 800-63B §5.1.1.2): length is what makes a password hard to guess."""

from __future__ import annotations

from dataclasses import dataclass

from authgate.crypto.passwords import normalize_password
from authgate.errors import WeakPassword

# Refused before any hashing: argon2 cost does not depend on length, but parsing
# and normalizing megabytes of input on a public endpoint should not be free.
MAX_PASSWORD_LENGTH = 1024


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 8

    def check(self, password: str) -> None:
        # The raw text, before NFKC: normalizing can multiply the length by 18.
        if len(password) > MAX_PASSWORD_LENGTH:
            raise WeakPassword(f"The password must be at most {MAX_PASSWORD_LENGTH} characters.")
        if password_length(password) < self.min_length:
            raise WeakPassword(f"The password must be at least {self.min_length} characters.")


def password_length(password: str) -> int:
    """Code points of the raw text or of its NFKC form (what is hashed), the fewer.

    NFKC expands some single characters into many ("\ufdfa" is 18 code points after
    NFKC, "\u2163" is "IV") and composes others ("e" + U+0301 is one "\u00e9").
    Either form alone could let a short password pass; the smaller count cannot."""
    return min(len(password), len(normalize_password(password)))
