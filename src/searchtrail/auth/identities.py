"""Accounts, IAM users and access keys, kept as global documents in the resource store."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from searchtrail.protocol.errors import ServiceError
from searchtrail.store.api import Conflict, ResourceRepository

GLOBAL = ("", "")  # (account, region) scope of the access-key index and the account list
_KEY_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    secret_access_key: str
    account_id: str
    user_name: str | None  # None: the account's root
    status: str = "Active"

    def as_doc(self, created: datetime) -> dict[str, Any]:
        return {
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "AccountId": self.account_id,
            "UserName": self.user_name,
            "Status": self.status,
            "CreateDate": created.isoformat(),
        }

    @staticmethod
    def from_doc(doc: dict[str, Any]) -> "AccessKey":
        return AccessKey(doc["AccessKeyId"], doc["SecretAccessKey"], doc["AccountId"],
                         doc.get("UserName"), doc.get("Status", "Active"))


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_access_key_id(prefix: str = "AKIA") -> str:
    return prefix + _random(_KEY_ALPHABET, 16)


def new_account_id() -> str:
    return str(secrets.randbelow(9 * 10**11) + 10**11)


class Identities:
    """Creates and finds accounts, users and keys; every method runs in the caller's unit."""

    def __init__(self, repo: ResourceRepository) -> None:
        self._global = repo.scoped(*GLOBAL)
        self._repo = repo

    def _account_scope(self, account_id: str) -> ResourceRepository:
        return self._repo.scoped(account_id, "")

    def default_account(self) -> str | None:
        doc = self._global.get("setting", "default-account")
        return doc["AccountId"] if doc else None

    def accounts(self) -> list[str]:
        return [doc["AccountId"] for doc in self._global.list("account")]

    def create_account(self, now: datetime, *, account_id: str | None = None,
                       make_default: bool = False) -> str:
        account_id = account_id or new_account_id()
        self._global.insert("account", account_id,
                            {"AccountId": account_id, "CreateDate": now.isoformat()})
        if make_default:
            self._global.put("setting", "default-account", {"AccountId": account_id})
        return account_id

    def require_account(self, account_id: str) -> None:
        if self._global.get("account", account_id) is None:
            raise ServiceError("NoSuchEntity", f"The account {account_id} does not exist.", status=404)

    def create_user(self, account_id: str, user_name: str, now: datetime, path: str = "/") -> dict:
        self.require_account(account_id)
        user = {
            "UserName": user_name,
            "UserId": "AIDA" + _random(_KEY_ALPHABET, 17),
            "Arn": f"arn:aws:iam::{account_id}:user{path}{user_name}",
            "Path": path,
            "CreateDate": now.isoformat(),
        }
        try:
            self._account_scope(account_id).insert("iam-user", user_name, user)
        except Conflict:
            raise ServiceError("EntityAlreadyExists",
                               f"User with name {user_name} already exists.", status=409) from None
        return user

    def get_user(self, account_id: str, user_name: str) -> dict | None:
        return self._account_scope(account_id).get("iam-user", user_name)

    def create_access_key(self, account_id: str, user_name: str | None, now: datetime) -> AccessKey:
        self.require_account(account_id)
        if user_name is not None and self.get_user(account_id, user_name) is None:
            raise ServiceError("NoSuchEntity",
                               f"The user with name {user_name} cannot be found.", status=404)
        key = AccessKey(new_access_key_id(), _random(_SECRET_ALPHABET, 40), account_id, user_name)
        self._global.insert("access-key", key.access_key_id, key.as_doc(now))
        return key

    def find_access_key(self, access_key_id: str) -> AccessKey | None:
        doc = self._global.get("access-key", access_key_id)
        return AccessKey.from_doc(doc) if doc else None
