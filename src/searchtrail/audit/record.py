"""The CloudTrail record builder: a chain of small pure enrichers over the request context.

Each enricher is ``(ctx, record) -> record`` and adds the fields it owns; the chain's order
is the key order AWS writes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable

import orjson

from searchtrail.audit.eventid import EventIdCodec, RandomPool
from searchtrail.gateway.context import RequestContext
from searchtrail.protocol.query import lower_camel, query_input_wire, query_output_wire
from searchtrail.store.sqlite.events import EventRow

EVENT_VERSION = "1.11"
HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
MAX_FIELD_BYTES = 100 * 1024  # requestParameters / responseElements are omitted beyond this
MAX_ERROR_CHARS = 1024

Enricher = Callable[[RequestContext, dict[str, Any]], dict[str, Any]]

EVENT_SOURCES = {
    "opensearchserverless": "aoss.amazonaws.com",
    "cloudtrail": "cloudtrail.amazonaws.com",
}


# RFC 4122 variant: the 17th hex digit's top two bits are 10 (8, 9, a or b).
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class EventIds:
    """uuid4 values from pooled randomness."""

    def __init__(self) -> None:
        self._randomness = RandomPool(16)

    def next(self) -> str:
        text = self._randomness.take().hex()
        # version 4 and the RFC 4122 variant set in the text, without building a uuid.UUID
        return (f"{text[:8]}-{text[8:12]}-4{text[13:16]}-{_VARIANT_DIGIT[text[16]]}"
                f"{text[17:20]}-{text[20:]}")


def event_version(ctx: RequestContext, record: dict[str, Any]) -> dict[str, Any]:
    record["eventVersion"] = EVENT_VERSION
    return record


def user_identity(ctx: RequestContext, record: dict[str, Any]) -> dict[str, Any]:
    record["userIdentity"] = ctx.principal.user_identity() if ctx.principal else {"type": "Unknown"}
    return record


def event_time(ctx: RequestContext, record: dict[str, Any]) -> dict[str, Any]:
    # isoformat is C all the way, several times cheaper than strftime on this path
    record["eventTime"] = ctx.event_time.replace(microsecond=0, tzinfo=None).isoformat() + "Z"
    return record


def source_and_name(ctx: RequestContext, record: dict[str, Any]) -> dict[str, Any]:
    record["eventSource"] = ctx.event_source
    record["eventName"] = ctx.operation_name
    record["awsRegion"] = ctx.region
    return record


def caller(ctx: RequestContext, record: dict[str, Any]) -> dict[str, Any]:
    record["sourceIPAddress"] = ctx.source_ip
    if ctx.user_agent:
        record["userAgent"] = ctx.user_agent[:1024]
    return record


def error_fields(ctx: RequestContext, record: dict[str, Any]) -> dict[str, Any]:
    if ctx.error is not None:
        record["errorCode"] = (ctx.error_code or ctx.error.code)[:MAX_ERROR_CHARS]
        record["errorMessage"] = ctx.error.message[:MAX_ERROR_CHARS]
    return record


# CloudTrail records its own calls' members in lower camel case (name, s3BucketName,
# trailARN), as it records IAM's and STS's, not as its JSON API spells them (Name).
CLOUDTRAIL_SOURCE = "cloudtrail.amazonaws.com"


def request_parameters(ctx: RequestContext, record: dict[str, Any]) -> dict[str, Any]:
    if ctx.event_source == CLOUDTRAIL_SOURCE and ctx.params is not None:
        params = query_input_wire(ctx.operation, ctx.params, HIDDEN) or None
    elif ctx.event_source == CLOUDTRAIL_SOURCE and ctx.wire_params:
        # refused by the model: as sent, but keyed as the accepted calls' records are
        params = redact(ctx.operation.input_shape, ctx.wire_params, camel=True)
    else:
        params = redact(ctx.operation.input_shape, ctx.wire_params) if ctx.wire_params else None
    if params is not None and ctx.event_source == "aoss.amazonaws.com":
        # AWS injects the caller's account into aoss requestParameters (see the seed example).
        params = {"accountId": ctx.principal.account_id, **params} if ctx.principal else params
    record["requestParameters"] = _within_limit(params)
    return record


# Read-only calls whose responses CloudTrail still records: the credentials STS issued
# (the secret key itself is never in a record).
RESPONSE_KEPT_WHEN_READ_ONLY = frozenset({
    ("sts", "AssumeRole"), ("sts", "AssumeRoleWithWebIdentity"), ("sts", "AssumeRoleWithSAML"),
    ("sts", "GetSessionToken"), ("sts", "GetFederationToken"),
})


def response_elements(ctx: RequestContext, record: dict[str, Any]) -> dict[str, Any]:
    # AWS leaves responseElements null on failures and on (most) read-only calls.
    kept = not ctx.read_only or (ctx.service_name, ctx.operation_name) in RESPONSE_KEPT_WHEN_READ_ONLY
    if ctx.error is None and kept and ctx.output_wire:
        shape = ctx.operation.output_shape
        record["responseElements"] = _within_limit(
            query_output_wire(ctx.operation, ctx.result, HIDDEN) or None
            if ctx.event_source == CLOUDTRAIL_SOURCE else
            java_dates(shape, redact(shape, ctx.output_wire))
            if ctx.event_source in JAVA_DATE_SOURCES else
            redact(shape, ctx.output_wire))
    else:
        record["responseElements"] = None
    return record


# IAM and STS records write a response's timestamps as Java prints a date in English
# ("Jul 1, 2026, 12:08:19 PM", UTC), as published AWS records show (an AssumeRole's
# credentials.expiration, a CreateUser's user.createDate), not as their API does.
JAVA_DATE_SOURCES = frozenset({"iam.amazonaws.com", "sts.amazonaws.com"})


def java_date(iso: str) -> str:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(timezone.utc)
    hour = moment.hour % 12 or 12
    return (f"{moment:%b} {moment.day}, {moment.year}, {hour}:{moment:%M:%S} "
            f"{'AM' if moment.hour < 12 else 'PM'}")


def java_dates(shape: Any, value: Any) -> Any:
    """``value`` (a response's wire form, lower camel keys) with its timestamps in Java's
    text; anything else as it is."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "timestamp" and isinstance(value, str):
        try:
            return java_date(value)
        except ValueError:
            return value
    if kind == "structure" and isinstance(value, dict):
        members = {lower_camel(name): member for name, member in shape.members.items()}
        return {key: java_dates(members.get(key), item) for key, item in value.items()}
    if kind == "list" and isinstance(value, list):
        return [java_dates(shape.member, item) for item in value]
    if kind == "map" and isinstance(value, dict):
        return {key: java_dates(shape.value, item) for key, item in value.items()}
    return value


def ids(ctx: RequestContext, record: dict[str, Any]) -> dict[str, Any]:
    record["requestID"] = ctx.request_id
    record["eventID"] = ctx.event_id
    record["readOnly"] = ctx.read_only
    return record


def resources(ctx: RequestContext, record: dict[str, Any]) -> dict[str, Any]:
    if ctx.referenced_resources:
        record["resources"] = [dict(item) for item in ctx.referenced_resources]
    return record


def classification(ctx: RequestContext, record: dict[str, Any]) -> dict[str, Any]:
    record["eventType"] = "AwsApiCall"
    record["managementEvent"] = True
    record["recipientAccountId"] = ctx.principal.account_id if ctx.principal else ""
    record["eventCategory"] = "Management"
    return record


def tls_details(ctx: RequestContext, record: dict[str, Any]) -> dict[str, Any]:
    if ctx.tls is not None:
        record["tlsDetails"] = {**ctx.tls, "clientProvidedHostHeader": ctx.host}
    return record


def console_session(ctx: RequestContext, record: dict[str, Any]) -> dict[str, Any]:
    """Calls made from the web console: AWS writes the flag as the string "true", last."""
    record["sessionCredentialFromConsole"] = "true"
    return record


ENRICHERS: tuple[Enricher, ...] = (
    event_version, user_identity, event_time, source_and_name, caller, error_fields,
    request_parameters, response_elements, ids, resources, classification, tls_details,
)
# The chain for calls the console makes on a signed-in user's behalf.
CONSOLE_ENRICHERS: tuple[Enricher, ...] = (*ENRICHERS, console_session)


class RecordBuilder:
    """Runs the enricher chain; owns the event id sources so ids never repeat in a process."""

    def __init__(self, enrichers: tuple[Enricher, ...] = ENRICHERS,
                 event_ids: EventIdCodec | None = None) -> None:
        self._enrichers = enrichers
        self._ids = EventIds()
        self._event_ids = event_ids

    def event_id(self, seq: int | None) -> str:
        """The eventID of the row ``seq`` (from the writer): one that encodes it, or, without
        a seq or a codec, a random one (found through an EventId lookup row)."""
        if seq is None or self._event_ids is None:
            return self._ids.next()
        return self._event_ids.encode(seq)

    def row_seq(self, seq: int) -> int | None:
        """``seq`` when this builder's eventIDs encode it, else None (the row then gets
        the next free seq and an EventId lookup row)."""
        return seq if self._event_ids is not None else None

    def build(self, ctx: RequestContext, seq: int | None = None) -> dict[str, Any]:
        ctx.event_id = self.event_id(seq)
        record: dict[str, Any] = {}
        for enrich in self._enrichers:
            record = enrich(ctx, record)
        return record

    def next_event_id(self) -> str:
        return self._ids.next()


def shared_copy(record: dict[str, Any], account: str, builder: RecordBuilder,
                seq: int | None = None) -> dict[str, Any]:
    """The copy of a record another account receives (cross-account calls), stored as row
    ``seq``.

    Both copies carry one sharedEventID; each has its own eventID and recipientAccountId.
    """
    shared = record.setdefault("sharedEventID", builder.next_event_id())
    copy = dict(record)
    copy["eventID"] = builder.event_id(seq)
    copy["recipientAccountId"] = account
    copy["sharedEventID"] = shared
    identity = record.get("userIdentity") or {}
    if identity.get("accountId") not in (None, account):
        # Another account's caller: its recipient sees the account and principal id only
        # (CloudTrail's AWSAccount identity), never the caller's name, ARN or access key.
        copy["userIdentity"] = {"type": "AWSAccount", "principalId": identity.get("principalId"),
                                "accountId": identity["accountId"]}
    return copy


def redact(shape: Any, value: Any, camel: bool = False) -> Any:
    """Replace members the model marks sensitive by AWS's placeholder; keep the keys, or with
    ``camel`` write the model's members in lower camel case (values stay as sent).

    A shape with nothing sensitive anywhere below it (most of them) returns ``value`` itself
    unless ``camel`` is set.
    """
    if shape is None or value is None or not (camel or _hides_anything(shape)):
        return value
    if _marked_sensitive(shape):
        return HIDDEN
    type_name = shape.type_name
    if type_name == "structure" and isinstance(value, dict):
        members = shape.members
        return {(lower_camel(key) if camel and key in members else key):
                redact(members.get(key), item, camel) for key, item in value.items()}
    if type_name == "list" and isinstance(value, list):
        return [redact(shape.member, item, camel) for item in value]
    if type_name == "map" and isinstance(value, dict):
        return {key: redact(shape.value, item, camel) for key, item in value.items()}
    return value


def _marked_sensitive(shape: Any) -> bool:
    return bool(getattr(shape, "serialization", {}).get("sensitive")
                or shape.metadata.get("sensitive"))


@lru_cache(maxsize=4096)
def _hides_anything(shape: Any) -> bool:
    """Whether the shape, or any shape under it, is marked sensitive (models are fixed)."""
    return _sensitive_below(shape, set())


def _sensitive_below(shape: Any, seen: set[int]) -> bool:
    if shape is None or id(shape) in seen:  # recursive shapes: each one is looked at once
        return False
    seen.add(id(shape))
    if _marked_sensitive(shape):
        return True
    type_name = shape.type_name
    if type_name == "structure":
        return any(_sensitive_below(member, seen) for member in shape.members.values())
    if type_name == "list":
        return _sensitive_below(shape.member, seen)
    if type_name == "map":
        return _sensitive_below(shape.value, seen)
    return False


def _within_limit(value: Any) -> Any:
    if value is None:
        return None
    try:
        size = len(orjson.dumps(value))
    except orjson.JSONEncodeError:  # nested past what orjson writes (the parsers refuse it)
        return {"omitted": True}
    if size > MAX_FIELD_BYTES:
        return {"omitted": True, "originalSize": size}
    return value


def lookup_username(identity: dict[str, Any]) -> str:
    """LookupEvents' Username: ``root``, the IAM user name, or the session / federated name."""
    if identity.get("type") == "Root":
        return "root"
    return identity.get("userName") or identity.get("arn", "").rsplit("/", 1)[-1]


def lookup_values(record: dict[str, Any], *, event_id: bool = True) -> tuple[tuple[str, str], ...]:
    """The LookupEvents attributes this record can be found by; without ``event_id`` when
    its eventID names its row (audit/eventid.py)."""
    username = lookup_username(record.get("userIdentity", {}))
    values = [("EventId", record["eventID"])] if event_id else []
    values += [
        ("EventName", record["eventName"]),
        ("ReadOnly", "true" if record.get("readOnly") else "false"),
        ("EventSource", record["eventSource"]),
    ]
    if username:
        values.append(("Username", username))
    access_key = record.get("userIdentity", {}).get("accessKeyId")
    if access_key:
        values.append(("AccessKeyId", access_key))
    for item in record.get("resources", ()):
        if item.get("type"):
            values.append(("ResourceType", item["type"]))
        if item.get("ARN"):
            values.append(("ResourceName", item["ARN"]))
    return tuple(values)


def event_row(ctx: RequestContext, record: dict[str, Any],
              deliveries: tuple[tuple[str, str], ...] = (), *, account: str | None = None,
              seq: int | None = None) -> EventRow:
    """The stored row; ``account`` is whose history it joins (the caller's by default);
    ``seq`` is given when the record's eventID encodes it."""
    return EventRow(
        account=account or (ctx.principal.account_id if ctx.principal else ""),
        region=ctx.region,
        event_time=int(ctx.event_time.timestamp()),
        record=orjson.dumps(record).decode(),
        lookup_values=lookup_values(record, event_id=seq is None),
        deliveries=deliveries,
        seq=seq,
    )
