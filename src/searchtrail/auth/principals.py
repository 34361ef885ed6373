"""Who is calling: the principal behind a verified access key, and its CloudTrail userIdentity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. ``kind`` is CloudTrail's userIdentity type (Root, IAMUser)."""

    kind: str
    account_id: str
    arn: str
    principal_id: str
    access_key_id: str
    user_name: str | None = None

    def user_identity(self) -> dict[str, Any]:
        identity: dict[str, Any] = {
            "type": self.kind,
            "principalId": self.principal_id,
            "arn": self.arn,
            "accountId": self.account_id,
            "accessKeyId": self.access_key_id,
        }
        if self.kind == "IAMUser" and self.user_name:
            identity["userName"] = self.user_name
        return identity


def root_principal(account_id: str, access_key_id: str) -> Principal:
    return Principal("Root", account_id, f"arn:aws:iam::{account_id}:root", account_id, access_key_id)


def user_principal(account_id: str, user: dict[str, Any], access_key_id: str) -> Principal:
    return Principal("IAMUser", account_id, user["Arn"], user["UserId"], access_key_id,
                     user["UserName"])
