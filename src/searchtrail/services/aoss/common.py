"""Helpers shared by the aoss resource families: clock, ARNs, pagination tokens, errors.

Everything here is pure (no storage access) so the domain modules stay small.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from searchtrail.protocol.errors import ServiceError

SERVICE_CODE = "aoss"

# Storage kinds (all documents are scoped to the caller's account and region).
KIND_POLICY = "aoss.security-policy"  # key "<type>/<name>"
KIND_COLLECTION = "aoss.collection"  # key "<id>"
KIND_COLLECTION_NAME = "aoss.collection-name"  # key "<name>" -> {"id"}
KIND_COLLECTION_DELETING = "aoss.collection-deleting"  # key "<id>" -> {"id", "goneAt"}
KIND_IDEMPOTENCY = "aoss.idempotency"  # key "<operation>/<clientToken>"

# CloudTrail `resources[].type` values.
TYPE_COLLECTION = "AWS::AOSS::Collection"
TYPE_SECURITY_POLICY = "AWS::AOSS::SecurityPolicy"

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)


def epoch_ms(now: datetime) -> int:
    """Exact epoch milliseconds of an aware datetime (the model's `Long` dates)."""
    return (now - _EPOCH) // _ONE_MS


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def collection_arn(region: str, account_id: str, collection_id: str) -> str:
    return f"arn:{partition(region)}:aoss:{region}:{account_id}:collection/{collection_id}"


def security_policy_arn(region: str, account_id: str, policy_type: str, name: str) -> str:
    """ARN-like identifier for CloudTrail `resources` (AWS defines no ARN for these policies)."""
    return f"arn:{partition(region)}:aoss:{region}:{account_id}:security-policy/{policy_type}/{name}"


def reference(call: Any, arn: str, resource_type: str) -> None:
    """Record a touched resource for the CloudTrail record."""
    call.referenced_resources.append({"ARN": arn, "accountId": call.account_id, "type": resource_type})


def without_none(doc: dict[str, Any]) -> dict[str, Any]:
    """Output members that have no value are omitted, never sent as null."""
    return {key: value for key, value in doc.items() if value is not None}


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def conflict(message: str) -> ServiceError:
    return ServiceError("ConflictException", message)


def not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


def quota_exceeded(message: str, **fields: Any) -> ServiceError:
    return ServiceError("ServiceQuotaExceededException", message, serviceCode=SERVICE_CODE, **fields)


# --- pagination -------------------------------------------------------------------------
# A token is base64url(JSON) naming the operation it belongs to and the sort key of the
# last item returned (keyset pagination: stable under concurrent inserts and deletes).
# Clients must treat it as opaque; anything that does not decode is a ValidationException.


def encode_token(operation: str, after: list[str]) -> str:
    raw = orjson.dumps({"v": 1, "op": operation, "after": after})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(operation: str, token: str, width: int) -> list[str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        after = data["after"]
        if (
            data.get("v") != 1
            or data.get("op") != operation
            or not isinstance(after, list)
            or len(after) != width
            or not all(isinstance(part, str) for part in after)
        ):
            raise ValueError(token)
    except (ValueError, TypeError, KeyError, UnicodeEncodeError, binascii.Error, orjson.JSONDecodeError):
        raise validation(
            f"The nextToken is invalid. Pass the nextToken returned by a previous {operation} "
            "call, unchanged."
        ) from None
    return after


def page_size(params: dict[str, Any], default: int = 20) -> int:
    value = params.get("maxResults")
    return default if value is None else int(value)
