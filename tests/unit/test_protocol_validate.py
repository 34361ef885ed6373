"""Validator: every constraint kind, AWS wording, paths (``a.b``, lists as ``ids.0``)."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import re
import sys
import unicodedata

import pytest
from botocore.model import ServiceModel

from searchtrail.protocol.catalog import ServiceCatalog
from searchtrail.protocol.errors import ServiceError
from searchtrail.protocol.patches import python_pattern
from searchtrail.protocol.validate import Violation, find_violations, validate_params

CATALOG = ServiceCatalog.load()
AOSS = CATALOG.service("opensearchserverless")
CLOUDTRAIL = CATALOG.service("cloudtrail")


def aoss(name: str):
    return AOSS.operation_model(name)


def cloudtrail(name: str):
    return CLOUDTRAIL.operation_model(name)


def message_of(operation, params) -> str:
    with pytest.raises(ServiceError) as raised:
        validate_params(operation, params)
    assert raised.value.code == "ValidationException"
    assert raised.value.status == 400
    return raised.value.message


# --- each constraint kind, worded exactly -----------------------------------------------

def test_enum_violation_lists_the_allowed_values_in_model_order() -> None:
    message = message_of(aoss("CreateSecurityPolicy"), {"type": "x", "name": "good-name", "policy": "{}"})
    assert message == (
        "1 validation error detected: Value 'x' at 'type' failed to satisfy constraint: "
        "Member must satisfy enum value set: [encryption, network]"
    )


def test_missing_required_member_is_reported_as_null() -> None:
    message = message_of(aoss("CreateSecurityPolicy"), {"type": "network", "policy": "{}"})
    assert message == (
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_string_length_minimum_and_maximum() -> None:
    short = find_violations(aoss("GetSecurityPolicy"), {"type": "network", "name": "ab"})
    long = find_violations(aoss("GetSecurityPolicy"), {"type": "network", "name": "a" * 33})
    assert [v.message for v in short] == [
        "Value 'ab' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 3"
    ]
    assert [v.message for v in long] == [
        f"Value '{'a' * 33}' at 'name' failed to satisfy constraint: "
        "Member must have length less than or equal to 32"
    ]
    assert [v.constraint for v in short + long] == ["min", "max"]


def test_pattern_uses_full_match_semantics() -> None:
    # "abc!" starts with a valid name; only a whole-value match may accept it.
    found = find_violations(aoss("GetSecurityPolicy"), {"type": "network", "name": "abc!"})
    assert found == [
        Violation(
            "name",
            "pattern",
            "Value 'abc!' at 'name' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [a-z][a-z0-9-]+",
        )
    ]


def test_pattern_classes_are_ascii_only_like_java() -> None:
    # SecurityGroupId is [\w+\-]+ : Java's \w does not match "é".
    params = {"name": "endpoint", "vpcId": "vpc-1", "subnetIds": ["subnet-0123abcd"], "securityGroupIds": ["sgé"]}
    found = find_violations(aoss("CreateVpcEndpoint"), params)
    assert [(v.path, v.constraint) for v in found] == [("securityGroupIds.0", "pattern")]


def test_number_range_in_aws_wording() -> None:
    high = message_of(cloudtrail("LookupEvents"), {"MaxResults": 51})
    low = message_of(aoss("ListCollections"), {"maxResults": 0})
    assert high == (
        "1 validation error detected: Value '51' at 'MaxResults' failed to satisfy constraint: "
        "Member must have value less than or equal to 50"
    )
    assert low.endswith("Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1")


def test_list_length_is_checked_and_shown_as_a_java_list() -> None:
    found = find_violations(aoss("BatchGetCollection"), {"ids": []})
    too_many = find_violations(aoss("BatchGetCollection"), {"ids": ["abc"] * 101})
    assert [v.message for v in found] == [
        "Value '[]' at 'ids' failed to satisfy constraint: Member must have length greater than or equal to 1"
    ]
    assert [(v.path, v.constraint) for v in too_many] == [("ids", "max")]


# --- paths and several violations at once -------------------------------------------------

def test_nested_member_paths_join_with_dots() -> None:
    found = find_violations(aoss("ListCollections"), {"collectionFilters": {"name": "Bad", "status": "NOPE"}})
    assert [(v.path, v.constraint) for v in found] == [
        ("collectionFilters.name", "pattern"),
        ("collectionFilters.status", "enum"),
    ]


def test_list_members_are_addressed_by_zero_based_index() -> None:
    params = {"resourceArn": "arn:aws:aoss:us-east-1:123456789012:collection/abc", "tags": [
        {"key": "ok", "value": "v"},
        {"key": "", "value": "v"},
        {"value": "v"},
    ]}
    found = find_violations(aoss("TagResource"), params)
    assert [(v.path, v.constraint) for v in found] == [("tags.1.key", "min"), ("tags.2.key", "required")]


def test_several_violations_are_counted_and_joined_with_semicolons() -> None:
    message = message_of(aoss("CreateSecurityPolicy"), {"type": "bad", "name": "N", "policy": ""})
    assert message == (
        "5 validation errors detected: "
        "Value 'bad' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [encryption, network]; "
        "Value 'N' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 3; "
        "Value 'N' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z][a-z0-9-]+; "
        "Value '' at 'policy' failed to satisfy constraint: Member must have length greater than or equal to 1; "
        "Value '' at 'policy' failed to satisfy constraint: Member must satisfy regular expression pattern: "
        r".*[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]+.*"
    )


def test_map_keys_and_values_are_checked() -> None:
    widget = {"QueryStatement": "SELECT 1", "ViewProperties": {"ok-key": "fine value", "k!": "bad!"}}
    found = find_violations(cloudtrail("CreateDashboard"), {"Name": "board", "Widgets": [widget]})
    assert [(v.path, v.constraint) for v in found] == [
        ("Widgets.0.ViewProperties", "min"),
        ("Widgets.0.ViewProperties", "pattern"),
        ("Widgets.0.ViewProperties.k!", "pattern"),
    ]
    assert found[0].message == (
        "Value 'k!' at 'Widgets.0.ViewProperties' failed to satisfy constraint: "
        "Map keys must satisfy constraint: [Member must have length greater than or equal to 3]"
    )


def test_map_size_limits_apply() -> None:
    params = {"InsightSource": "arn:x", "DataType": "InsightsEvents", "Dimensions": {"EventId": "1", "EventName": "2"}}
    found = find_violations(cloudtrail("ListInsightsData"), params)
    assert [(v.path, v.constraint) for v in found] == [("Dimensions", "max")]


def test_valid_input_has_no_violations() -> None:
    params = {"type": "encryption", "name": "my-policy", "policy": '{"Rules":[]}', "clientToken": "t"}
    assert find_violations(aoss("CreateSecurityPolicy"), params) == []
    assert validate_params(aoss("CreateSecurityPolicy"), params) is None
    assert find_violations(aoss("ListCollections"), {}) == []


def test_violation_is_a_frozen_value() -> None:
    violation = Violation("a", "min", "m")
    with pytest.raises(dataclasses.FrozenInstanceError):
        violation.path = "b"  # type: ignore[misc]


# --- model quirks, with a small synthetic model -------------------------------------------

def synthetic_operation(input_members: dict, shapes: dict):
    model = ServiceModel({
        "metadata": {"protocol": "json", "jsonVersion": "1.0", "targetPrefix": "Test", "serviceId": "Test",
                     "endpointPrefix": "test", "apiVersion": "2024-01-01"},
        "operations": {"Op": {"name": "Op", "input": {"shape": "OpInput"}, "output": {"shape": "OpInput"}}},
        "shapes": {"OpInput": {"type": "structure", "members": input_members}, **shapes},
    }, service_name="test")
    return model.operation_model("Op")


def test_blob_length_and_union_and_sensitive_values() -> None:
    operation = synthetic_operation(
        {"data": {"shape": "Data"}, "secret": {"shape": "Secret"}, "choice": {"shape": "Choice"}},
        {
            "Data": {"type": "blob", "min": 2, "max": 4},
            "Secret": {"type": "string", "min": 8, "sensitive": True},
            "Choice": {"type": "structure", "union": True, "members": {"a": {"shape": "Text"}, "b": {"shape": "Text"}}},
            "Text": {"type": "string"},
        },
    )
    found = find_violations(operation, {"data": b"\x00", "secret": "hunter2", "choice": {"a": "x", "b": "y"}})
    assert [(v.path, v.constraint) for v in found] == [("data", "min"), ("secret", "min"), ("choice", "union")]
    assert "hunter2" not in found[1].message
    assert found[1].message == "Value at 'secret' failed to satisfy constraint: Member must have length greater than or equal to 8"
    assert find_violations(operation, {"data": b"abc", "choice": {"b": "y"}}) == []


def test_pattern_python_cannot_compile_is_logged_once_and_skipped(caplog) -> None:
    shapes = {"Weird": {"type": "string", "pattern": "(?<unbalanced", "min": 2}}
    first = synthetic_operation({"w": {"shape": "Weird"}}, shapes)
    second = synthetic_operation({"w": {"shape": "Weird"}, "v": {"shape": "Weird"}}, shapes)
    with caplog.at_level(logging.DEBUG, logger="searchtrail.protocol.validate"):
        found = find_violations(first, {"w": "x"}) + find_violations(second, {"w": "anything goes", "v": "x"})
    # The length rule still holds; only the pattern is skipped, with one log line in all.
    assert [(v.path, v.constraint) for v in found] == [("w", "min"), ("v", "min")]
    assert sum("(?<unbalanced" in record.getMessage() for record in caplog.records) == 1


def test_java_surrogate_pair_pattern_is_rewritten_and_enforced() -> None:
    java = r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*"
    operation = synthetic_operation({"name": {"shape": "PartitionKeyName"}},
                                    {"PartitionKeyName": {"type": "string", "pattern": java}})
    assert python_pattern(java) == r"[\u0020-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF\t]*"
    assert find_violations(operation, {"name": "emoji \U0001F600 ok"}) == []
    assert [v.constraint for v in find_violations(operation, {"name": "bell \x07"})] == ["pattern"]


def test_java_unicode_property_classes_are_enforced_as_java_does() -> None:
    r"""IAM, STS and Organizations tag keys: ``[\p{L}\p{Z}\p{N}_.:/=+\-@]+`` (a control
    character was stored, read back as U+FFFD and could then never be untagged)."""
    iam = ServiceCatalog.load(["iam"]).service("iam")
    java = iam.shape_for("tagKeyType").metadata["pattern"]
    assert "\\p{L}" in java
    pattern = re.compile(python_pattern(java), re.ASCII)
    extra = set("_.:/=+-@")
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        expected = unicodedata.category(char)[0] in "LZN" or char in extra
        assert bool(pattern.fullmatch(char)) == expected, hex(code)
    tag_user = iam.operation_model("TagUser")
    found = find_violations(tag_user, {"UserName": "u", "Tags": [{"Key": "k\x01", "Value": "v"}]})
    assert [v.constraint for v in found] == ["pattern"]
    assert find_violations(tag_user, {"UserName": "u", "Tags": [
        {"Key": "Kostenstelle ä 2", "Value": "日本"}]}) == []


# --- patterns that would backtrack catastrophically -------------------------------------------

def model_patterns_of_the_any_run_any_family() -> list[str]:
    patterns = {
        shape.metadata["pattern"]
        for service in CATALOG.services()
        for shape in (service.shape_for(name) for name in service.shape_names)
        if re.fullmatch(r"\.\*\[.+\]\+\.\*", shape.metadata.get("pattern", ""))
    }
    return sorted(patterns)


def test_the_any_run_any_family_is_present_in_the_models() -> None:
    assert r".*[\w+=,.@-]+.*" in model_patterns_of_the_any_run_any_family()
    assert len(model_patterns_of_the_any_run_any_family()) >= 2


@pytest.mark.parametrize("pattern", model_patterns_of_the_any_run_any_family())
def test_linear_rewrite_accepts_exactly_what_the_model_pattern_accepts(pattern: str) -> None:
    original = re.compile(pattern, re.ASCII)
    rewritten = re.compile(python_pattern(pattern), re.ASCII)
    assert rewritten.pattern != original.pattern
    # Every string up to 7 characters over an alphabet that exercises newlines, class
    # members and non-members: small enough for the original regex to answer quickly.
    for length in range(8):
        for chars in itertools.product("a\n\u0100!\t", repeat=length):
            text = "".join(chars)
            assert bool(rewritten.fullmatch(text)) == bool(original.fullmatch(text)), repr(text)


@pytest.mark.timeout(30)  # a safety bound, not a speed target: the model's regex takes hours
def test_a_hostile_policy_is_rejected() -> None:
    # With the model's regex as written this input takes hours to reject (70 s at 4 KB).
    hostile = "-" * 20000 + "\n\u0100\n"
    found = find_violations(aoss("CreateSecurityPolicy"), {"type": "network", "name": "abc", "policy": hostile})
    assert [(v.path, v.constraint) for v in found] == [("policy", "pattern")]


def test_an_over_long_value_reports_its_length_and_skips_the_regex() -> None:
    found = find_violations(aoss("CreateSecurityPolicy"), {"type": "network", "name": "abc", "policy": "\u0100" * 30000})
    assert [(v.path, v.constraint) for v in found] == [("policy", "max")]
