"""The console's password check: right and wrong passwords, and the decoy for unknown users."""

from __future__ import annotations

from searchtrail.auth.identities import hash_password
from searchtrail.console.passwords import PasswordCheck


def test_the_first_check_makes_the_decoy_whoever_signs_in() -> None:
    stored = hash_password("correct horse")
    for first in (stored, None):  # a known user first, then an unknown one first
        check = PasswordCheck()
        assert check._decoy is None  # a server start spends no scrypt run on it
        assert check.matches(first, "correct horse") is (first is not None)
        decoy = check._decoy
        assert decoy is not None and decoy["Algorithm"] == "scrypt"
        assert check.matches(None, "correct horse") is False
        assert check.matches(stored, "wrong") is False
        assert check.matches(stored, "correct horse") is True
        assert check._decoy is decoy  # made once
