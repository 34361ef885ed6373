"""CloudTrail provider: LookupEvents over the event history and the trail API (see trails.py),
with CloudTrail's own errors for model violations."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

import orjson

from searchtrail.audit.query import LOOKUP_ATTRIBUTES, EventFilter, InvalidToken, utc
from searchtrail.audit.record import lookup_username
from searchtrail.auth.authorizer import resource_tag_keys
from searchtrail.protocol.errors import ServiceError
from searchtrail.services.call import Call
from searchtrail.services.registry import Preparer
from searchtrail.store import kinds

from .trails import BucketExists, TrailsHandlers

MAX_RESULTS = 50
MAX_ATTRIBUTE_VALUE = 2000  # counted as _counted_length does
# What a member account may ask of an organization trail, by its ARN.
ORGANIZATION_TRAIL_READS = frozenset({"GetTrail", "GetTrailStatus", "GetEventSelectors",
                                      "GetInsightSelectors", "ListTags"})
# The lookup attributes Insights events support (the LookupEvents documentation).
INSIGHT_ATTRIBUTES = ("EventId", "EventName", "EventSource")

# Model violations on these members become CloudTrail's modelled errors, not ValidationException.
_VIOLATION_ERRORS = {
    "LookupEvents": (
        ("LookupAttributes", "InvalidLookupAttributesException"),
        ("MaxResults", "InvalidMaxResultsException"),
        ("EventCategory", "InvalidEventCategoryException"),
        ("NextToken", "InvalidNextTokenException"),
    ),
    # A bad tag (key/value length) is InvalidTagParameter; too many tags is TagsLimitExceeded.
    "CreateTrail": (
        ("TagsList.", "InvalidTagParameterException"),
        ("TagsList", "TagsLimitExceededException"),
    ),
    "AddTags": (
        ("TagsList.", "InvalidTagParameterException"),
        ("TagsList", "TagsLimitExceededException"),
    ),
    "RemoveTags": (
        ("TagsList", "InvalidTagParameterException"),
    ),
    "PutEventSelectors": (
        ("EventSelectors", "InvalidEventSelectorsException"),
        ("AdvancedEventSelectors", "InvalidEventSelectorsException"),
    ),
}


class CloudTrailProvider:
    """``bucket_exists(bucket)`` backs CreateTrail/UpdateTrail's S3BucketDoesNotExistException;
    ``signing_keys(repo).public_keys(account, region, start, end, now)`` answers ListPublicKeys,
    with the keys kept in the calling unit's repository."""

    def __init__(self, bucket_exists: BucketExists | None = None, signing_keys: Any = None,
                 key_prefix_problem: Callable[[str], str | None] | None = None) -> None:
        self.trails = TrailsHandlers(bucket_exists=bucket_exists, signing_keys=signing_keys,
                                     key_prefix_problem=key_prefix_problem)

    def handlers(self) -> dict[str, Callable[[Call, dict], dict]]:
        return {"LookupEvents": self.lookup_events, **self.trails.handlers()}

    @staticmethod
    def resource_condition_keys(repo: Any, operation: str, params: dict[str, Any],
                                resource: str) -> list[dict[str, Any]]:
        """ServiceRegistry.resource_condition_keys: a trail's tags."""
        trail = _stored_trail(repo, resource)
        return [resource_tag_keys(trail.get("Tags"))] if trail else []

    @staticmethod
    def resource_grant(repo: Any, operation: str, resource: str, account: str) -> str | None:
        """ServiceRegistry.resource_grant: an organization trail may be read by every account
        of the organization (every account of the installation), by its ARN."""
        if operation not in ORGANIZATION_TRAIL_READS:
            return None
        trail = _stored_trail(repo, resource)
        return "account" if trail is not None and trail.get("IsOrganizationTrail") else None

    def preparers(self) -> dict[str, Preparer]:
        """Run before an operation's unit of work (ServiceRegistry.preparer)."""
        return self.trails.preparers()

    def violation_error(self, operation_name: str, violations: list[Any]) -> ServiceError | None:
        for prefix, code in _VIOLATION_ERRORS.get(operation_name, ()):
            for violation in violations:
                if violation.path.startswith(prefix):
                    return ServiceError(code, violation.message, status=400)
        return None

    def lookup_events(self, call: Call, params: dict) -> dict:
        attributes = params.get("LookupAttributes") or []
        if len(attributes) > 1:
            raise ServiceError("InvalidLookupAttributesException",
                               "You can specify only one lookup attribute.", status=400)
        attribute = None
        if attributes:
            key, value = attributes[0]["AttributeKey"], attributes[0]["AttributeValue"]
            if key not in LOOKUP_ATTRIBUTES:
                raise ServiceError("InvalidLookupAttributesException",
                                   f"Invalid attribute key: {key}. Valid keys are: "
                                   f"{', '.join(LOOKUP_ATTRIBUTES)}.", status=400)
            if _counted_length(value) > MAX_ATTRIBUTE_VALUE:
                raise ServiceError("InvalidLookupAttributesException",
                                   f"The attribute value must be at most {MAX_ATTRIBUTE_VALUE} "
                                   "characters long, counting each '_', ' ', ',' and newline "
                                   "as two.", status=400)
            attribute = (key, value)
        max_results = params.get("MaxResults", MAX_RESULTS)
        if not 1 <= max_results <= MAX_RESULTS:
            raise ServiceError("InvalidMaxResultsException",
                               f"MaxResults must be between 1 and {MAX_RESULTS}.", status=400)
        start = utc(params["StartTime"]) if "StartTime" in params else None
        end = utc(params["EndTime"]) if "EndTime" in params else None
        if start and end and start > end:
            raise ServiceError("InvalidTimeRangeException",
                               "Start time must be before end time.", status=400)
        if start and start > call.now:
            raise ServiceError("InvalidTimeRangeException",
                               "Start time must not be in the future.", status=400)
        if params.get("EventCategory") not in (None, "insight"):
            raise ServiceError("InvalidEventCategoryException",
                               "The only valid event category is insight.", status=400)
        if params.get("EventCategory") == "insight":
            if attribute is not None and attribute[0] not in INSIGHT_ATTRIBUTES:
                raise ServiceError("InvalidLookupAttributesException",
                                   f"Invalid attribute key for Insights events: {attribute[0]}. "
                                   f"Valid keys are: {', '.join(INSIGHT_ATTRIBUTES)}.", status=400)
            if params.get("NextToken") is not None:  # none is ever issued for Insights events
                raise ServiceError("InvalidNextTokenException", "The NextToken is invalid or "
                                   "was issued for other parameters.", status=400)
            return {"Events": []}  # no Insights events are produced
        flt = EventFilter(call.account_id, call.region, attribute, start, end)
        try:
            page = call.events.page(flt, limit=max_results, token=params.get("NextToken"),
                                    now=call.now)
        except InvalidToken:
            raise ServiceError("InvalidNextTokenException",
                               "The NextToken is invalid or was issued for other parameters.",
                               status=400) from None
        result: dict[str, Any] = {"Events": [_event_item(event.record) for event in page.events]}
        if page.next_token:
            result["NextToken"] = page.next_token
        return result


def _stored_trail(repo: Any, resource: str) -> dict[str, Any] | None:
    """The stored trail a resource ARN names, in its owner's account; None for another kind."""
    parts = resource.split(":", 5)
    if len(parts) != 6 or not parts[5].startswith("trail/"):
        return None
    return repo.scoped(parts[4], "").get(kinds.TRAIL, resource)


def _counted_length(value: str) -> int:
    """An attribute value's length as LookupEvents counts it: '_', ' ', ',' and '\n' twice."""
    return len(value) + sum(value.count(char) for char in "_ ,\n")


def _event_item(record_json: str) -> dict[str, Any]:
    record = orjson.loads(record_json)
    identity = record.get("userIdentity", {})
    item: dict[str, Any] = {
        "EventId": record["eventID"],
        "EventName": record["eventName"],
        "ReadOnly": "true" if record.get("readOnly") else "false",
        "EventTime": datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=timezone.utc),
        "EventSource": record["eventSource"],
        "Username": lookup_username(identity),
        "Resources": [{"ResourceType": r.get("type"), "ResourceName": r.get("ARN")}
                      for r in record.get("resources", ())],
        "CloudTrailEvent": record_json,
    }
    if identity.get("accessKeyId"):
        item["AccessKeyId"] = identity["accessKeyId"]
    return item
