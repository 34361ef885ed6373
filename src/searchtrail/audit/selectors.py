"""Which recorded calls go into which trail: event selectors, region and account rules.

Two independent questions decide whether a CloudTrail record lands in a trail's log files:

- ``trail_covers(trail, account, region, global_service)``: does the trail watch the account
  and Region the call was made in? A single-Region trail watches its home Region, a
  multi-Region trail every Region; both watch only the trail owner's account unless the
  trail is an organization trail (then every account of the installation). Global service
  events reach a trail only when it includes them and is multi-Region or lives in the
  partition's leader Region (us-east-1 for ``aws``).
- ``trail_wants(trail, record)``: do the trail's event selectors select the record? Basic
  selectors (``EventSelectors``) or advanced ones (``AdvancedEventSelectors``); a trail with
  neither logs every management event (the default a new trail gets).

Neither looks at ``IsLogging``: whether a trail is logging at all is the caller's check.

This runs for every recorded call, so selectors are compiled once into plain closures:
``compile_trail(trail)`` returns ``record -> bool``; ``trail_wants`` compiles through a small
cache keyed by the selectors themselves (hold on to ``compile_trail``'s result in hot loops).

``validate_event_selectors`` / ``validate_advanced_event_selectors`` check what
PutEventSelectors receives and raise ``InvalidEventSelectorsException`` (a ``ServiceError``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable, Iterable

import orjson

from searchtrail.arns import partition
from searchtrail.protocol.errors import ServiceError

Matcher = Callable[[dict[str, Any]], bool]

INVALID = "InvalidEventSelectorsException"

MAX_EVENT_SELECTORS = 5
MAX_DATA_RESOURCES = 250
MAX_ADVANCED_VALUES = 500
MAX_VALUE_LENGTH = 2048

READ_WRITE_TYPES = ("ReadOnly", "WriteOnly", "All")
DATA_RESOURCE_TYPES = ("AWS::S3::Object", "AWS::Lambda::Function", "AWS::DynamoDB::Table")
EXCLUDABLE_SOURCES = ("kms.amazonaws.com", "rdsdata.amazonaws.com")

# The selector a new trail has: every management event, reads and writes, no data events.
DEFAULT_EVENT_SELECTORS: list[dict[str, Any]] = [
    {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": [],
     "ExcludeManagementEventSources": []},
]

OPERATORS = ("Equals", "StartsWith", "EndsWith", "NotEquals", "NotStartsWith", "NotEndsWith")
ADVANCED_FIELDS = ("eventCategory", "resources.type", "readOnly", "eventSource", "eventName",
                   "eventType", "resources.ARN", "sessionCredentialFromConsole",
                   "userIdentity.arn", "errorCode", "vpcEndpointId")
EQUALS_ONLY_FIELDS = ("readOnly", "eventCategory", "resources.type")
EVENT_CATEGORIES = ("Management", "Data", "NetworkActivity")
# What a trail (unlike an event data store) may filter each category by: the AdvancedFieldSelector
# reference. Management events take eventSource only as NotEquals kms or rdsdata.
TRAIL_FIELDS_BY_CATEGORY = {
    "Management": ("eventCategory", "eventSource", "readOnly"),
    "Data": ("eventCategory", "resources.type", "resources.ARN", "readOnly", "eventName",
             "eventSource", "eventType", "sessionCredentialFromConsole", "userIdentity.arn"),
    "NetworkActivity": ("eventCategory", "eventSource", "eventName", "errorCode", "vpcEndpointId"),
}
RESOURCE_FIELDS = ("resources.type", "resources.ARN")
NETWORK_ERROR_CODES = ("VpceAccessDenied",)

_PARTITION = r"aws(?:-cn|-us-gov)?"
_PARTITION_LEADERS = {"aws": "us-east-1", "aws-cn": "cn-north-1", "aws-us-gov": "us-gov-west-1"}

# Basic DataResources values: "everything of this type" or a resource (prefix) ARN.
_ALL_OF_TYPE = {
    "AWS::S3::Object": re.compile(rf"arn:{_PARTITION}:s3(?::::)?"),
    "AWS::Lambda::Function": re.compile(rf"arn:{_PARTITION}:lambda"),
    "AWS::DynamoDB::Table": re.compile(rf"arn:{_PARTITION}:dynamodb"),
}
_RESOURCE_VALUE = {
    "AWS::S3::Object": re.compile(
        rf"arn:{_PARTITION}:s3:::[a-z0-9][a-z0-9.\-]{{1,61}}[a-z0-9](?:/.*)?", re.ASCII),
    "AWS::Lambda::Function": re.compile(
        rf"arn:{_PARTITION}:lambda:[a-z0-9\-]+:\d{{12}}:function:[A-Za-z0-9\-_]+(?::[A-Za-z0-9\-_$]+)?",
        re.ASCII),
    "AWS::DynamoDB::Table": re.compile(
        rf"arn:{_PARTITION}:dynamodb:[a-z0-9\-]+:\d{{12}}:table/[A-Za-z0-9_.\-]{{3,255}}", re.ASCII),
}


def _invalid(message: str) -> ServiceError:
    return ServiceError(INVALID, message, status=400)


# --- regions and accounts -------------------------------------------------------------------


def trail_account(trail: dict[str, Any]) -> str:
    """The owning account, read from the trail ARN (arn:p:cloudtrail:region:account:trail/n)."""
    return trail["TrailARN"].split(":", 5)[4]


def trail_covers(trail: dict[str, Any], account: str, region: str,
                 global_service: bool = False) -> bool:
    """Whether a call made by ``account`` in ``region`` falls inside the trail's reach.

    ``global_service``: the event comes from a global service (IAM, STS, CloudFront...),
    recorded in the partition leader Region; such events reach the trail only when it
    includes global service events and is multi-Region or homed in the leader Region.
    """
    if not trail.get("IsOrganizationTrail") and account != trail_account(trail):
        return False
    home = trail["HomeRegion"]
    multi = bool(trail.get("IsMultiRegionTrail"))
    if global_service:
        if not trail.get("IncludeGlobalServiceEvents", True):
            return False
        return multi or home == _PARTITION_LEADERS[partition(home)]
    return multi or region == home


# --- matching -------------------------------------------------------------------------------


def trail_wants(trail: dict[str, Any], record: dict[str, Any]) -> bool:
    """Whether the trail's selectors select the record (see the module docstring)."""
    return _compiled(_selectors_key(trail))(record)


def compile_trail(trail: dict[str, Any]) -> Matcher:
    """The trail's selectors as one ``record -> bool`` function (cached by selector content)."""
    return _compiled(_selectors_key(trail))


def _selectors_key(trail: dict[str, Any]) -> bytes:
    advanced = trail.get("AdvancedEventSelectors")
    if advanced is not None:
        return b"A" + orjson.dumps(advanced)
    basic = trail.get("EventSelectors")
    return b"B" + (orjson.dumps(basic) if basic is not None else b"default")


@lru_cache(maxsize=512)
def _compiled(key: bytes) -> Matcher:
    kind, body = key[:1], key[1:]
    if kind == b"A":
        return compile_advanced(orjson.loads(body))
    if body == b"default":
        return compile_basic(DEFAULT_EVENT_SELECTORS)
    return compile_basic(orjson.loads(body))


def _never(record: dict[str, Any]) -> bool:
    return False


def _any_of(matchers: list[Matcher]) -> Matcher:
    if not matchers:
        return _never
    if len(matchers) == 1:
        return matchers[0]
    found = tuple(matchers)

    def any_matches(record: dict[str, Any]) -> bool:
        for matcher in found:
            if matcher(record):
                return True
        return False

    return any_matches


# Basic selectors ----------------------------------------------------------------------------


def compile_basic(selectors: Iterable[dict[str, Any]]) -> Matcher:
    """Basic selectors: management events by read/write type and source, data events by ARN."""
    management: list[Matcher] = []
    data: list[Matcher] = []
    for selector in selectors:
        read_write = selector.get("ReadWriteType", "All")
        wants_read = read_write in ("All", "ReadOnly")
        wants_write = read_write in ("All", "WriteOnly")
        if selector.get("IncludeManagementEvents", True):
            excluded = frozenset(selector.get("ExcludeManagementEventSources") or ())
            management.append(_basic_management(wants_read, wants_write, excluded))
        for resource in selector.get("DataResources") or ():
            data.append(_basic_data(wants_read, wants_write, resource.get("Type", ""),
                                    list(resource.get("Values") or ())))
    management_matcher = _any_of(management)
    data_matcher = _any_of(data)

    def basic(record: dict[str, Any]) -> bool:
        category = _category(record)
        if category == "Management":
            return management_matcher(record)
        if category == "Data":
            return data_matcher(record)
        return False  # network activity and Insights need advanced selectors

    return basic


def _category(record: dict[str, Any]) -> str:
    category = record.get("eventCategory")
    if category is not None:
        return category
    return "Management" if record.get("managementEvent", True) else "Data"


def _read_write(wants_read: bool, wants_write: bool) -> Callable[[dict[str, Any]], bool]:
    if wants_read and wants_write:
        return lambda record: True
    if wants_read:
        return lambda record: record.get("readOnly") is True
    return lambda record: record.get("readOnly") is not True


def _basic_management(wants_read: bool, wants_write: bool, excluded: frozenset[str]) -> Matcher:
    read_write = _read_write(wants_read, wants_write)

    def management(record: dict[str, Any]) -> bool:
        return read_write(record) and record.get("eventSource") not in excluded

    return management


def _basic_data(wants_read: bool, wants_write: bool, resource_type: str, values: list[str]) -> Matcher:
    read_write = _read_write(wants_read, wants_write)
    arn_matches = _data_value_matcher(resource_type, values)

    def data(record: dict[str, Any]) -> bool:
        if not read_write(record):
            return False
        for resource in record.get("resources") or ():
            if resource.get("type") == resource_type and arn_matches(resource.get("ARN") or ""):
                return True
        return False

    return data


def _data_value_matcher(resource_type: str, values: list[str]) -> Callable[[str], bool]:
    """ARN test for one DataResource: 'all of type', S3 bucket/prefix, or a function/table."""
    everything = _ALL_OF_TYPE.get(resource_type)
    prefixes: list[str] = []
    exact: set[str] = set()
    for value in values:
        if everything is not None and everything.fullmatch(value):
            return lambda arn: True
        if resource_type == "AWS::S3::Object":
            # "arn:aws:s3:::bucket" means every object of that bucket, not "bucket*".
            prefixes.append(value if "/" in value else value + "/")
        else:
            exact.add(value)
            prefixes.append(value + ":")  # qualified versions of a function
    starts = tuple(prefixes)
    return lambda arn: arn in exact or arn.startswith(starts)


# Advanced selectors -------------------------------------------------------------------------


def _field_getter(field: str) -> Callable[[dict[str, Any]], Any]:
    if field == "readOnly":
        def read_only(record: dict[str, Any]) -> str | None:
            value = record.get("readOnly")
            return None if value is None else ("true" if value else "false")
        return read_only
    if field == "eventCategory":
        return _category
    if field == "userIdentity.arn":
        return lambda record: (record.get("userIdentity") or {}).get("arn")
    if field == "sessionCredentialFromConsole":
        def from_console(record: dict[str, Any]) -> str:
            value = record.get("sessionCredentialFromConsole")
            if value is None:
                return "false"  # only emitted when true
            if isinstance(value, bool):
                return "true" if value else "false"
            return str(value)
        return from_console
    if field == "resources.type":
        return lambda resource: resource.get("type")
    if field == "resources.ARN":
        return lambda resource: resource.get("ARN")
    return lambda record: record.get(field)


def _condition(field_selector: dict[str, Any]) -> Callable[[Any], bool]:
    """One field selector's test on the field's value: operators ANDed, values ORed.

    Positive operators need the value to be present; negative ones hold for a missing value.
    """
    tests: list[Callable[[Any], bool]] = []
    for operator in OPERATORS:
        values = field_selector.get(operator)
        if not values:
            continue
        if operator == "Equals":
            allowed = frozenset(values)
            tests.append(lambda v, s=allowed: v is not None and v in s)
        elif operator == "NotEquals":
            denied = frozenset(values)
            tests.append(lambda v, s=denied: v is None or v not in s)
        elif operator == "StartsWith":
            starts = tuple(values)
            tests.append(lambda v, t=starts: v is not None and v.startswith(t))
        elif operator == "NotStartsWith":
            starts = tuple(values)
            tests.append(lambda v, t=starts: v is None or not v.startswith(t))
        elif operator == "EndsWith":
            ends = tuple(values)
            tests.append(lambda v, t=ends: v is not None and v.endswith(t))
        else:  # NotEndsWith
            ends = tuple(values)
            tests.append(lambda v, t=ends: v is None or not v.endswith(t))
    if len(tests) == 1:
        return tests[0]
    all_tests = tuple(tests)
    return lambda v: all(test(v) for test in all_tests)


def _advanced_selector(selector: dict[str, Any]) -> Matcher:
    record_tests: list[tuple[Callable[[dict[str, Any]], Any], Callable[[Any], bool]]] = []
    resource_tests: list[tuple[Callable[[dict[str, Any]], Any], Callable[[Any], bool]]] = []
    for field_selector in selector.get("FieldSelectors") or ():
        field = field_selector.get("Field", "")
        pair = (_field_getter(field), _condition(field_selector))
        (resource_tests if field in RESOURCE_FIELDS else record_tests).append(pair)
    record_checks = tuple(record_tests)
    resource_checks = tuple(resource_tests)

    def advanced(record: dict[str, Any]) -> bool:
        for get, test in record_checks:
            if not test(get(record)):
                return False
        if not resource_checks:
            return True
        # Resource conditions must all hold for one and the same resource of the record.
        for resource in record.get("resources") or ():
            for get, test in resource_checks:
                if not test(get(resource)):
                    break
            else:
                return True
        return False

    return advanced


def compile_advanced(selectors: Iterable[dict[str, Any]]) -> Matcher:
    """Advanced selectors: ORed selectors, ANDed field selectors (see ``_condition``)."""
    return _any_of([_advanced_selector(selector) for selector in selectors])


# --- validation (PutEventSelectors) ----------------------------------------------------------


def validate_event_selectors(selectors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check basic selectors; return them normalised the way GetEventSelectors shows them."""
    if not selectors:
        raise _invalid("At least one event selector must be specified.")
    if len(selectors) > MAX_EVENT_SELECTORS:
        raise _invalid(f"A trail can have at most {MAX_EVENT_SELECTORS} event selectors; "
                       f"{len(selectors)} were specified.")
    total_values = 0
    normalised: list[dict[str, Any]] = []
    for selector in selectors:
        read_write = selector.get("ReadWriteType", "All")
        if read_write not in READ_WRITE_TYPES:
            raise _invalid(f"Value {read_write} for ReadWriteType is invalid. "
                           f"Valid values are: {', '.join(READ_WRITE_TYPES)}.")
        resources: list[dict[str, Any]] = []
        for resource in selector.get("DataResources") or ():
            resource_type = resource.get("Type")
            if resource_type not in DATA_RESOURCE_TYPES:
                raise _invalid(f"Value {resource_type} for DataResources.Type is invalid. Valid "
                               f"values are: {', '.join(DATA_RESOURCE_TYPES)}.")
            values = list(resource.get("Values") or ())
            if not values:
                raise _invalid(f"DataResources of type {resource_type} must specify at least one "
                               "value in DataResources.Values.")
            for value in values:
                if _ALL_OF_TYPE[resource_type].fullmatch(value):
                    continue  # "every resource of the type" is outside the quota (AWS)
                if not _RESOURCE_VALUE[resource_type].fullmatch(value):
                    raise _invalid(f"Value {value} for DataResources.Values is invalid.")
                total_values += 1
            resources.append({"Type": resource_type, "Values": values})
        excluded = list(selector.get("ExcludeManagementEventSources") or ())
        for source in excluded:
            if source not in EXCLUDABLE_SOURCES:
                raise _invalid(f"Value {source} for ExcludeManagementEventSources is invalid. "
                               f"Valid values are: {', '.join(EXCLUDABLE_SOURCES)}.")
        normalised.append({
            "ReadWriteType": read_write,
            "IncludeManagementEvents": bool(selector.get("IncludeManagementEvents", True)),
            "DataResources": resources,
            "ExcludeManagementEventSources": excluded,
        })
    if total_values > MAX_DATA_RESOURCES:
        raise _invalid(f"A trail can have at most {MAX_DATA_RESOURCES} data resources across all "
                       f"event selectors; {total_values} were specified.")
    return normalised


def validate_advanced_event_selectors(selectors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check advanced selectors for a trail; return them as given (without empty operators)."""
    if not selectors:
        raise _invalid("At least one advanced event selector must be specified.")
    total_values = 0
    cleaned: list[dict[str, Any]] = []
    for index, selector in enumerate(selectors):
        label = f"advanced event selector {selector.get('Name') or index + 1}"
        field_selectors = selector.get("FieldSelectors") or []
        if not field_selectors:
            raise _invalid(f"The {label} must have at least one field selector.")
        by_field: dict[str, list[dict[str, Any]]] = {}
        kept_fields: list[dict[str, Any]] = []
        for field_selector in field_selectors:
            field = field_selector.get("Field")
            if field not in ADVANCED_FIELDS:
                raise _invalid(f"Field {field} in the {label} is not valid for trails. Valid fields "
                               f"are: {', '.join(ADVANCED_FIELDS)}.")
            operators = {op: list(field_selector[op]) for op in OPERATORS if field_selector.get(op)}
            if not operators:
                raise _invalid(f"Field {field} in the {label} must have at least one operator "
                               f"({', '.join(OPERATORS)}) with at least one value.")
            if field in EQUALS_ONLY_FIELDS and set(operators) != {"Equals"}:
                raise _invalid(f"Field {field} in the {label} supports only the Equals operator.")
            for values in operators.values():
                for value in values:
                    if not isinstance(value, str) or not 1 <= len(value) <= MAX_VALUE_LENGTH:
                        raise _invalid(f"Values of field {field} in the {label} must be between 1 "
                                       f"and {MAX_VALUE_LENGTH} characters long.")
                total_values += len(values)
            by_field.setdefault(field, []).append(operators)
            kept_fields.append({"Field": field, **operators})
        _check_selector_fields(label, by_field)
        kept: dict[str, Any] = {}
        if selector.get("Name") is not None:
            kept["Name"] = selector["Name"]
        kept["FieldSelectors"] = kept_fields
        cleaned.append(kept)
    if total_values > MAX_ADVANCED_VALUES:
        raise _invalid(f"A trail can have at most {MAX_ADVANCED_VALUES} values across all conditions "
                       f"of its advanced event selectors; {total_values} were specified.")
    return cleaned


def _check_selector_fields(label: str, by_field: dict[str, list[dict[str, list[str]]]]) -> None:
    categories = [value for ops in by_field.get("eventCategory", ()) for value in ops["Equals"]]
    if not categories:
        raise _invalid(f"The {label} must include the field eventCategory with the Equals operator.")
    for category in categories:
        if category not in EVENT_CATEGORIES:
            raise _invalid(f"Value {category} for field eventCategory in the {label} is invalid. "
                           f"Valid values are: {', '.join(EVENT_CATEGORIES)}.")
    for ops in by_field.get("readOnly", ()):
        for value in ops["Equals"]:
            if value not in ("true", "false"):
                raise _invalid(f"Value {value} for field readOnly in the {label} is invalid. "
                               "Valid values are: true, false.")
    if "Data" in categories and "resources.type" not in by_field:
        raise _invalid(f"The {label} selects data events and must include the field "
                       "resources.type with the Equals operator.")
    for category in dict.fromkeys(categories):
        for field in by_field:
            if field not in TRAIL_FIELDS_BY_CATEGORY[category]:
                raise _invalid(f"Field {field} in the {label} is not valid for {category} events "
                               f"on a trail. Valid fields are: "
                               f"{', '.join(TRAIL_FIELDS_BY_CATEGORY[category])}.")
    if "Management" in categories:
        for ops in by_field.get("eventSource", ()):
            if set(ops) != {"NotEquals"} or not set(ops["NotEquals"]) <= set(EXCLUDABLE_SOURCES):
                raise _invalid(f"Field eventSource in the {label} can only exclude management "
                               f"events with NotEquals {' or '.join(EXCLUDABLE_SOURCES)}.")
    if "NetworkActivity" in categories:
        sources = by_field.get("eventSource", ())
        if not sources or any(set(ops) != {"Equals"} for ops in sources):
            raise _invalid(f"The {label} selects network activity events and must include the "
                           "field eventSource with the Equals operator.")
    if "errorCode" in by_field:
        for ops in by_field["errorCode"]:
            for values in ops.values():
                for value in values:
                    if value not in NETWORK_ERROR_CODES:
                        raise _invalid(f"Value {value} for field errorCode in the {label} is "
                                       f"invalid. Valid values are: {', '.join(NETWORK_ERROR_CODES)}.")
