"""Helpers shared by the aoss resource families: clock, ARNs, ids, lifecycles, pagination,
batch lookups, policy versions, resource patterns, errors, and JSON policy documents.

Everything here is pure (no storage access, except `unused_id` which only reads) so the
domain modules stay small.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

import orjson

from searchtrail.arns import partition
from searchtrail.protocol.errors import ServiceError
from searchtrail.protocol.strictjson import DuplicateMember, unique_members

SERVICE_CODE = "aoss"

# Storage kinds (all documents are scoped to the caller's account and region).
KIND_POLICY = "aoss.security-policy"  # key "<type>/<name>"
KIND_ACCESS_POLICY = "aoss.access-policy"  # key "data/<name>"
KIND_LIFECYCLE_POLICY = "aoss.lifecycle-policy"  # key "retention/<name>"
KIND_SECURITY_CONFIG = "aoss.security-config"  # key "<type>/<account>/<name>" (the config id)
KIND_COLLECTION = "aoss.collection"  # key "<id>"
KIND_COLLECTION_NAME = "aoss.collection-name"  # key "<name>" -> {"id"}
KIND_COLLECTION_DELETING = "aoss.collection-deleting"  # key "<id>" -> {"id", "goneAt"}
KIND_COLLECTION_GROUP = "aoss.collection-group"  # key "<id>"
KIND_VPC_ENDPOINT = "aoss.vpc-endpoint"  # key "<id>"
KIND_ACCOUNT_SETTINGS = "aoss.account-settings"  # key "settings"
KIND_INDEX = "aoss.index"  # key "<collection id>/<index name>"
KIND_INGESTION_JOB = "aoss.ingestion-job"  # key "<collection id>/<job id>"
KIND_INGESTION_STREAM = "aoss.ingestion-stream"  # key "<collection id>/<stream id>"
KIND_IDEMPOTENCY = "aoss.idempotency"  # key "<day>/<operation>/<clientToken>"

# Documents that live inside a collection (key prefix "<collection id>/"): they go with it.
COLLECTION_CHILD_KINDS = (KIND_INDEX, KIND_INGESTION_JOB, KIND_INGESTION_STREAM)

# CloudTrail `resources[].type` values.
TYPE_COLLECTION = "AWS::AOSS::Collection"
TYPE_SECURITY_POLICY = "AWS::AOSS::SecurityPolicy"
TYPE_ACCESS_POLICY = "AWS::AOSS::AccessPolicy"
TYPE_LIFECYCLE_POLICY = "AWS::AOSS::LifecyclePolicy"
TYPE_SECURITY_CONFIG = "AWS::AOSS::SecurityConfig"
TYPE_COLLECTION_GROUP = "AWS::AOSS::CollectionGroup"
TYPE_VPC_ENDPOINT = "AWS::AOSS::VpcEndpoint"
TYPE_INDEX = "AWS::AOSS::Index"
TYPE_INGESTION_JOB = "AWS::AOSS::IngestionJob"
TYPE_INGESTION_STREAM = "AWS::AOSS::IngestionStream"

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)


# --- clock ------------------------------------------------------------------------------


def epoch_ms(now: datetime) -> int:
    """Exact epoch milliseconds of an aware datetime (the model's `Long` dates)."""
    return (now - _EPOCH) // _ONE_MS


def from_epoch_ms(ms: int) -> datetime:
    """The aware datetime of an epoch-millisecond date (for the model's `Timestamp` members)."""
    return _EPOCH + ms * _ONE_MS


def later_ms(previous_ms: int, now: datetime) -> int:
    """A modification time strictly after `previous_ms`, so every change is visible."""
    return max(epoch_ms(now), previous_ms + 1)


class Timing:
    """How long asynchronous resources stay in their transitional states, in milliseconds.

    `create_ms` covers CREATING/PENDING (collections, VPC endpoints, ingestion jobs and
    streams) and an ingestion job's run; `delete_ms` covers DELETING/CANCELLING.
    """

    def __init__(self, create_seconds: float, delete_seconds: float) -> None:
        self.create_ms = max(0, round(create_seconds * 1000))
        self.delete_ms = max(0, round(delete_seconds * 1000))


def lifecycle_status(
    stored: dict[str, Any], now_ms: int, pending: str, active: str = "ACTIVE",
    deleting: str = "DELETING",
) -> str | None:
    """Status derived from `activeAt`/`goneAt` (never written by a background task).

    `pending` before `activeAt`, then `active`; once deletion was asked for (`goneAt` set),
    `deleting` before `goneAt`, then None: the resource is gone.
    """
    gone_at = stored.get("goneAt")
    if gone_at is not None:
        return None if now_ms >= gone_at else deleting
    return active if now_ms >= stored["activeAt"] else pending


def collection_status(stored: dict[str, Any], now_ms: int) -> str | None:
    """A collection's status (CREATING, ACTIVE, DELETING), or None once it is gone."""
    return lifecycle_status(stored, now_ms, "CREATING")


# --- ARNs -------------------------------------------------------------------------------

ARN_PATTERN = re.compile(r"arn:([a-z0-9-]+):aoss:([a-z0-9-]+):(\d{12}):([a-z-]+/.+)")


def aoss_arn(region: str, account_id: str, resource: str) -> str:
    return f"arn:{partition(region)}:aoss:{region}:{account_id}:{resource}"


def collection_arn(region: str, account_id: str, collection_id: str) -> str:
    return aoss_arn(region, account_id, f"collection/{collection_id}")


def parse_arn(arn: str) -> tuple[str, str, str]:
    """(region, account, resource) of an aoss ARN, or the ValidationException AWS gives."""
    match = ARN_PATTERN.fullmatch(arn)
    if match is None:
        raise validation(
            f"Invalid resource ARN: {arn}. Expected "
            "arn:aws:aoss:<region>:<account-id>:collection/<collection-id>."
        )
    _, region, account, resource = match.groups()
    return region, account, resource


def reference(call: Any, arn: str, resource_type: str) -> None:
    """Record a touched resource for the CloudTrail record (once, however often touched)."""
    entry = {"ARN": arn, "accountId": call.account_id, "type": resource_type}
    if entry not in call.referenced_resources:
        call.referenced_resources.append(entry)


# --- ids --------------------------------------------------------------------------------

ID_ALPHABET = string.ascii_lowercase + string.digits
HEX_ALPHABET = "0123456789abcdef"


def random_id(length: int, alphabet: str = ID_ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def unused_id(call: Any, kind: str, make: Callable[[], str], key: Callable[[str], str] = str) -> str:
    """A fresh id whose storage key (`key(id)`) is not taken yet."""
    while True:
        candidate = make()
        if call.resources.get(kind, key(candidate)) is None:
            return candidate


# --- output -----------------------------------------------------------------------------


def without_none(doc: dict[str, Any]) -> dict[str, Any]:
    """Output members that have no value are omitted, never sent as null."""
    return {key: value for key, value in doc.items() if value is not None}


# --- errors -----------------------------------------------------------------------------


def validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def conflict(message: str) -> ServiceError:
    return ServiceError("ConflictException", message)


def not_found(message: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


def quota_exceeded(message: str, **fields: Any) -> ServiceError:
    return ServiceError("ServiceQuotaExceededException", message, serviceCode=SERVICE_CODE, **fields)


# --- pagination -------------------------------------------------------------------------
# A token is base64url(JSON) naming the operation it belongs to (and the policy type, for
# the policy lists), and the sort key of the last item returned (keyset pagination: stable
# under concurrent inserts and deletes). Clients must treat it as opaque; anything that does
# not decode, or belongs to another listing, is a ValidationException.


def encode_token(operation: str, after: list[str], listing: str | None = None) -> str:
    raw = orjson.dumps({"v": 1, "op": operation, "after": after,
                        **({"of": listing} if listing is not None else {})})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(operation: str, token: str, width: int, listing: str | None = None) -> list[str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        after = data["after"]
        if (
            data.get("v") != 1
            or data.get("op") != operation
            or data.get("of") != listing
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


def paginate(
    operation: str, params: dict[str, Any], rows: Iterable[tuple[tuple[str, ...], Any]],
    width: int, default: int = 20, listing: str | None = None,
) -> tuple[list[Any], str | None]:
    """One page of `rows` ((sort key, item) pairs, any order) after the request's nextToken.

    Returns the page's items in sort-key order and the token for the next page (None on the
    last page). The token is checked before anything else, even when there are no rows;
    `listing` (a policy type) binds it to the listing it pages through.
    """
    after = None
    if params.get("nextToken") is not None:
        after = tuple(decode_token(operation, params["nextToken"], width, listing))
    ordered = sorted((row for row in rows if after is None or row[0] > after), key=lambda row: row[0])
    limit = page_size(params, default)
    token = (encode_token(operation, list(ordered[limit - 1][0]), listing)
             if len(ordered) > limit else None)
    return [item for _, item in ordered[:limit]], token


def listed(member: str, items: list[Any], token: str | None) -> dict[str, Any]:
    """A List* output: the items under `member`, plus `nextToken` when there is more."""
    output: dict[str, Any] = {member: items}
    if token is not None:
        output["nextToken"] = token
    return output


# --- batch lookups ----------------------------------------------------------------------


def ids_or_names(params: dict[str, Any]) -> tuple[str, list[str]]:
    """("id", ids) or ("name", names) of a BatchGet request that takes either, not both."""
    ids, names = params.get("ids"), params.get("names")
    if ids and names:
        raise validation(
            "You need to provide IDs or names. You can't provide both IDs and names in the "
            "same request"
        )
    if not ids and not names:
        raise validation("You need to provide IDs or names.")
    return ("id", ids) if ids else ("name", names)


def not_found_detail(what: str, **identity: Any) -> dict[str, Any]:
    """A BatchGet error entry: the asked-for identity plus NOT_FOUND."""
    return {**identity, "errorCode": "NOT_FOUND", "errorMessage": f"The specified {what} is not found."}


# --- policy and config versions ---------------------------------------------------------


def policy_version(modified_ms: int) -> str:
    """`policyVersion`/`configVersion`: base64 of "<lastModifiedDate ms>_1"."""
    return base64.b64encode(f"{modified_ms}_1".encode()).decode()


def new_version(stored: dict[str, Any], now: datetime, version_member: str) -> None:
    """Mark a versioned document changed: a strictly later lastModifiedDate and the version
    derived from it, so every change yields a new policyVersion/configVersion."""
    modified = later_ms(stored["lastModifiedDate"], now)
    stored["lastModifiedDate"] = modified
    stored[version_member] = policy_version(modified)


# --- resource patterns ------------------------------------------------------------------
# Policy resources are "<type>/<part>" (collection/...) or "<type>/<part>/<part>" (index/...)
# where each part is a name, a prefix ending in `*`, or `*` alone.


# `collection/<name>`, `collection/<prefix>*` or `collection/*`: the wildcard only at the end.
COLLECTION_RESOURCE = re.compile(r"collection/(?:[^*\s/]+\*?|\*)")
COLLECTION_RESOURCE_TEXT = (
    "collection/<collection name> or collection/<prefix>* (the wildcard * is allowed only at "
    "the end)"
)
# `index/<collection>/<index>`, each part a name, a prefix ending in `*`, or `*`.
INDEX_RESOURCE = re.compile(r"index/(?:[^*\s/]+\*?|\*)/(?:[^*\s/]+\*?|\*)")
INDEX_RESOURCE_TEXT = (
    "index/<collection name or prefix*>/<index name or prefix*> (the wildcard * is allowed "
    "only at the end of each part)"
)


def patterns_overlap(first: str, second: str) -> bool:
    """Whether two patterns (`*` only at the end) can name a common string."""
    first_prefix, first_wild = (first[:-1], True) if first.endswith("*") else (first, False)
    second_prefix, second_wild = (second[:-1], True) if second.endswith("*") else (second, False)
    if first_wild and second_wild:
        return first_prefix.startswith(second_prefix) or second_prefix.startswith(first_prefix)
    if first_wild:
        return second_prefix.startswith(first_prefix)
    if second_wild:
        return first_prefix.startswith(second_prefix)
    return first == second


def resources_overlap(first: str, second: str) -> bool:
    """Whether two resource patterns can name a common resource, part by part."""
    first_parts, second_parts = first.split("/"), second.split("/")
    if first_parts[0] != second_parts[0] or len(first_parts) != len(second_parts):
        return False
    if len(first_parts) == 2:  # a trailing `*` may swallow nothing else: compare whole
        return patterns_overlap(first, second)
    return all(patterns_overlap(a, b) for a, b in zip(first_parts[1:], second_parts[1:]))


def match_specificity(pattern: str, name: str) -> tuple[int, int] | None:
    """How specifically `pattern` names `name`: exact beats any prefix, longer prefix wins."""
    if pattern == name:
        return (1, len(pattern))
    if pattern.endswith("*") and name.startswith(pattern[:-1]):
        return (0, len(pattern) - 1)
    return None


def resource_specificity(pattern: str, resource: str) -> tuple[tuple[int, int], ...] | None:
    """`match_specificity` part by part (collection first), or None when it does not match."""
    pattern_parts, resource_parts = pattern.split("/"), resource.split("/")
    if pattern_parts[0] != resource_parts[0] or len(pattern_parts) != len(resource_parts):
        return None
    scores = []
    for part, actual in zip(pattern_parts[1:], resource_parts[1:]):
        score = match_specificity(part, actual)
        if score is None:
            return None
        scores.append(score)
    return tuple(scores)


# --- JSON policy documents --------------------------------------------------------------
# Policy documents arrive as strings and are stored (and returned) as parsed JSON. They are
# checked against a small declarative schema; every problem found is reported in one
# ValidationException, worded like AWS's JSON-schema messages:
# ``Policy json is invalid, error: [$.Rules: is missing but it is required, ...]``.


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class Schema:
    type_name = ""

    def check(self, value: Any, path: str, errors: list[str]) -> None:
        found = _json_type(value)
        if found != self.type_name:
            errors.append(f"{path}: {found} found, {self.type_name} expected")
            return
        self.check_value(value, path, errors)

    def check_value(self, value: Any, path: str, errors: list[str]) -> None:
        pass


class Boolean(Schema):
    type_name = "boolean"


@dataclass
class String(Schema):
    pattern: re.Pattern[str] | None = None
    enum: tuple[str, ...] = ()
    describe: str = ""  # what a valid value looks like, for the message
    type_name = "string"

    def check_value(self, value: str, path: str, errors: list[str]) -> None:
        if self.enum and value not in self.enum:
            errors.append(
                f"{path}: does not have a value in the enumeration [{', '.join(self.enum)}]"
            )
        elif self.pattern is not None and not self.pattern.fullmatch(value):
            errors.append(f"{path}: {value} is not valid; expected {self.describe}")


@dataclass
class Array(Schema):
    items: Schema
    min_items: int = 0
    type_name = "array"

    def check_value(self, value: list[Any], path: str, errors: list[str]) -> None:
        if len(value) < self.min_items:
            errors.append(f"{path}: there must be a minimum of {self.min_items} items in the array")
        for index, item in enumerate(value):
            self.items.check(item, f"{path}[{index}]", errors)


@dataclass
class Object(Schema):
    properties: dict[str, Schema]
    required: tuple[str, ...] = ()
    rules: tuple[Callable[[dict[str, Any], str, list[str]], None], ...] = field(default=())
    type_name = "object"

    def check_value(self, value: dict[str, Any], path: str, errors: list[str]) -> None:
        for name in self.required:
            if name not in value:
                errors.append(f"{path}.{name}: is missing but it is required")
        for name, item in value.items():
            schema = self.properties.get(name)
            if schema is None:
                errors.append(
                    f"{path}.{name}: is not defined in the schema and the schema does not "
                    "allow additional properties"
                )
            else:
                schema.check(item, f"{path}.{name}", errors)
        for rule in self.rules:
            rule(value, path, errors)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every policy text (json.loads would build one, with its scanner, a call).
_POLICY_DECODER = json.JSONDecoder(object_pairs_hook=unique_members,
                                   parse_constant=_reject_constant)


def invalid_policy(errors: list[str]) -> ServiceError:
    return validation(f"Policy json is invalid, error: [{', '.join(errors)}]")


def parse_document(text: str, schema: Schema) -> Any:
    """The policy text as JSON, or a ValidationException that says what is wrong with it."""
    try:
        if text.startswith("\ufeff"):  # refused as json.loads refuses it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        doc = _POLICY_DECODER.decode(text)
    except DuplicateMember as exc:
        raise invalid_policy([f"duplicate key {exc.args[0]!r}"]) from None
    except json.JSONDecodeError as exc:
        raise invalid_policy([f"{exc.msg} at line {exc.lineno} column {exc.colno}"]) from None
    except (ValueError, RecursionError) as exc:
        raise invalid_policy([str(exc)]) from None
    errors: list[str] = []
    schema.check(doc, "$", errors)
    if errors:
        raise invalid_policy(errors)
    return doc
