"""Console passwords: IAM users' login profiles and the account root's password, stored only
as scrypt hashes (memory-hard), checked in constant time."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from searchtrail.auth.identities import (
    KIND_LOGIN_PROFILE,
    Identities,
    hash_password,
    iso,
    name_key,
    verify_password,
)
from searchtrail.auth.password_threads import PasswordThreads
from searchtrail.protocol.errors import ServiceError
from searchtrail.services.iam.users import check_password

ROOT_PASSWORD_KIND = "console-root-password"  # account scope, key "root": {PasswordHash, UpdateDate}
ROOT_KEY = "root"


def set_console_password(identities: Identities, account_id: str, user_name: str | None,
                         password: str, now: datetime) -> None:
    """Create or replace the console password of a user (its IAM login profile) or, with
    ``user_name`` None, of the account's root. IAM's default password policy applies."""
    identities.require_account(account_id)
    scope = identities.scope(account_id)
    if user_name is None:
        check_password(password, ROOT_KEY)
        scope.put(ROOT_PASSWORD_KIND, ROOT_KEY,
                  {"PasswordHash": hash_password(password), "UpdateDate": iso(now)})
        return
    user = identities.get_user(account_id, user_name)
    if user is None:
        raise ServiceError("NoSuchEntity", f"The user with name {user_name} cannot be found.",
                           status=404)
    check_password(password, user["UserName"])
    key = name_key(user["UserName"])
    profile = scope.get(KIND_LOGIN_PROFILE, key) or {
        "UserName": user["UserName"], "CreateDate": iso(now), "PasswordResetRequired": False}
    profile["PasswordHash"] = hash_password(password)
    scope.put(KIND_LOGIN_PROFILE, key, profile)


def stored_hash(identities: Identities, account_id: str,
                user: dict[str, Any] | None) -> dict[str, Any] | None:
    """The password hash to check: the user's login profile, or the root's (``user`` None)."""
    scope = identities.scope(account_id)
    if user is None:
        doc = scope.get(ROOT_PASSWORD_KIND, ROOT_KEY)
    else:
        doc = scope.get(KIND_LOGIN_PROFILE, name_key(user["UserName"]))
    return doc.get("PasswordHash") if doc else None


class PasswordCheck:
    """``matches(stored, password)``; with nothing stored it still spends one scrypt run
    (against a hash of a random password) so that timing does not tell who exists.
    ``check`` is the same on the password threads."""

    def __init__(self, threads: PasswordThreads) -> None:
        self._decoy: dict[str, Any] | None = None
        self._threads = threads

    async def check(self, stored: dict[str, Any] | None, password: str) -> bool:
        """``matches`` on a password thread (sign-ins beyond them wait their turn)."""
        return await self._threads.run(self.matches, stored, password)

    def matches(self, stored: dict[str, Any] | None, password: str) -> bool:
        # The decoy is made by the first check, whoever signs in, so that first check takes
        # as long either way; a server that never serves a sign-in never pays its scrypt run.
        # Two first checks at once may both make one: either is as good.
        if self._decoy is None:
            self._decoy = hash_password(secrets.token_urlsafe(24))
        if stored is None:
            verify_password(self._decoy, password)
            return False
        return verify_password(stored, password)
