"""The console's password check: right and wrong passwords, the decoy for unknown users, and
the threads checks run on."""

from __future__ import annotations

import asyncio
import threading

from searchtrail.auth.identities import hash_password
from searchtrail.auth.password_threads import PASSWORD_THREADS, THREAD_NAME, PasswordThreads
from searchtrail.console.passwords import PasswordCheck


def test_the_first_check_makes_the_decoy_whoever_signs_in() -> None:
    stored = hash_password("correct horse")
    for first in (stored, None):  # a known user first, then an unknown one first
        check = PasswordCheck(PasswordThreads())
        assert check._decoy is None  # a server start spends no scrypt run on it
        assert check.matches(first, "correct horse") is (first is not None)
        decoy = check._decoy
        assert decoy is not None and decoy["Algorithm"] == "scrypt"
        assert check.matches(None, "correct horse") is False
        assert check.matches(stored, "wrong") is False
        assert check.matches(stored, "correct horse") is True
        assert check._decoy is decoy  # made once


def test_checks_at_once_share_the_checks_own_threads() -> None:
    """Each scrypt run's 16 MiB stays with the thread that ran it: only PASSWORD_THREADS may."""
    stored = hash_password("correct horse")
    check = PasswordCheck(PasswordThreads())

    async def at_once() -> list[bool]:
        return await asyncio.gather(*(check.check(stored, "correct horse" if n % 2 else "wrong")
                                      for n in range(12)))

    assert asyncio.run(at_once()) == [bool(n % 2) for n in range(12)]
    ran = {thread.name for thread in threading.enumerate()
           if thread.name.startswith(THREAD_NAME)}
    assert 1 <= len(ran) <= PASSWORD_THREADS == 2
