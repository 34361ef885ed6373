"""ConsoleLogin records (eventType AwsConsoleSignIn, signin.amazonaws.com): their own enricher
chain over a sign-in context, written by the gateway's record writer like any call's record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from searchtrail.audit.record import (
    HIDDEN,
    Enricher,
    caller,
    event_time,
    event_version,
    source_and_name,
    tls_details,
)
from searchtrail.gateway.context import RequestContext

SIGN_IN_SOURCE = "signin.amazonaws.com"
SIGN_IN_REGION = "us-east-1"  # sign-in is a global service: its events live in us-east-1
WRONG_PASSWORD = "Failed authentication"
UNKNOWN_USER = "No username found in supplied account"


@dataclass(frozen=True)
class SignInOperation:
    """Stands where a model operation would: sign-in has no API model."""

    name: str = "ConsoleLogin"
    input_shape: Any = None
    output_shape: Any = None


@dataclass
class SignInContext(RequestContext):
    identity: dict[str, Any] = field(default_factory=dict)  # userIdentity as AWS writes it
    login_to: str = ""  # additionalEventData.LoginTo: where the user was going
    success: bool = False
    failure: str = ""  # errorMessage of a failed attempt


def sign_in_identity(ctx: SignInContext, record: dict[str, Any]) -> dict[str, Any]:
    record["userIdentity"] = dict(ctx.identity)
    return record


def sign_in_outcome(ctx: SignInContext, record: dict[str, Any]) -> dict[str, Any]:
    if not ctx.success:
        record["errorMessage"] = ctx.failure or WRONG_PASSWORD
    record["requestParameters"] = None
    record["responseElements"] = {"ConsoleLogin": "Success" if ctx.success else "Failure"}
    record["additionalEventData"] = {"LoginTo": ctx.login_to, "MobileVersion": "No",
                                     "MFAUsed": "No"}
    return record


def sign_in_ids(ctx: SignInContext, record: dict[str, Any]) -> dict[str, Any]:
    record["eventID"] = ctx.event_id
    record["readOnly"] = False
    return record


def sign_in_classification(ctx: SignInContext, record: dict[str, Any]) -> dict[str, Any]:
    record["eventType"] = "AwsConsoleSignIn"
    record["managementEvent"] = True
    record["recipientAccountId"] = ctx.identity.get("accountId", "")
    record["eventCategory"] = "Management"
    return record


SIGN_IN_ENRICHERS: tuple[Enricher, ...] = (
    event_version, sign_in_identity, event_time, source_and_name, caller,  # type: ignore[has-type]
    sign_in_outcome, sign_in_ids, sign_in_classification, tls_details,  # type: ignore[has-type]
)


def root_identity(account_id: str) -> dict[str, Any]:
    return {"type": "Root", "principalId": account_id, "arn": f"arn:aws:iam::{account_id}:root",
            "accountId": account_id, "accessKeyId": ""}


def user_identity(account_id: str, user: dict[str, Any]) -> dict[str, Any]:
    return {"type": "IAMUser", "principalId": user["UserId"], "arn": user["Arn"],
            "accountId": account_id, "accessKeyId": "", "userName": user["UserName"]}


def unknown_user_identity(account_id: str) -> dict[str, Any]:
    """A user name that does not exist is not written down, as on AWS."""
    return {"type": "IAMUser", "accountId": account_id, "accessKeyId": "", "userName": HIDDEN}
