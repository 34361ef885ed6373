"""Tags on aoss resources (collections, collection groups, ingestion jobs and streams),
addressed by ARN.

The tag list lives inside the tagged resource's own document, so deleting the resource
deletes its tags. Each resource family supplies a finder ``(call, match) -> TagTarget | None``
for the ARN resource paths it owns (`resolve` dispatches on them); this module knows only
the tag rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .common import (aoss_arn, conflict, not_found, parse_arn, quota_exceeded, reference,
                     validation)

MAX_TAGS = 50
RESERVED_PREFIX = "aws:"


@dataclass
class TagTarget:
    arn: str
    resource_type: str  # CloudTrail type, e.g. AWS::AOSS::Collection
    status: str
    tags: list[dict[str, str]]
    save: Callable[[list[dict[str, str]]], None]


Resolver = Callable[[Any, str], TagTarget]
Finder = Callable[[Any, "re.Match[str]"], "TagTarget | None"]


def resolve(call: Any, arn: str, finders: Sequence[tuple["re.Pattern[str]", Finder]]) -> TagTarget:
    """The live resource an ARN names in the caller's account and Region.

    A malformed ARN is a ValidationException; anything not found (unknown resource path,
    another account or Region, an unknown or deleted resource) a ResourceNotFoundException.
    """
    region, account, resource = parse_arn(arn)
    # Only the ARN the resource itself has names it: another partition's (arn:aws-cn:...) is
    # another resource, which a policy's Deny on the real ARN would not match.
    if aoss_arn(region, account, resource) == arn and (region, account) == (call.region,
                                                                             call.account_id):
        for pattern, find in finders:
            match = pattern.fullmatch(resource)
            if match is not None:
                target = find(call, match)
                if target is not None:
                    return target
                break
    raise not_found(f"Resource with ARN {arn} is not found")


def _check_keys(keys: list[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise validation(
                f"Duplicate tag key {key!r} in the request. All tag keys in the request must be "
                "unique."
            )
        seen.add(key)
        if key.lower().startswith(RESERVED_PREFIX):
            raise validation(
                f"Tag key {key!r} is not allowed: keys starting with 'aws:' are reserved for "
                "AWS use."
            )


def checked(tags: list[dict[str, str]]) -> list[dict[str, str]]:
    """Request tags as stored: unique keys, none reserved (the model caps the count at 50)."""
    _check_keys([tag["key"] for tag in tags])
    return [{"key": tag["key"], "value": tag["value"]} for tag in tags]


def _writable(target: TagTarget) -> None:
    if target.status == "DELETING":
        raise conflict(f"Resource {target.arn} is being deleted; its tags can't be changed")


def tag_resource(call: Any, params: dict[str, Any], resolve: Resolver) -> dict[str, Any]:
    target = resolve(call, params["resourceArn"])
    reference(call, target.arn, target.resource_type)
    new = checked(params["tags"])
    _writable(target)
    merged = {tag["key"]: tag["value"] for tag in target.tags}
    merged.update((tag["key"], tag["value"]) for tag in new)
    if len(merged) > MAX_TAGS:
        raise quota_exceeded(
            f"Tag limit exceeded: a resource can have at most {MAX_TAGS} tags, and this request "
            f"would leave {target.arn} with {len(merged)}.",
            resourceId=target.arn,
        )
    target.save([{"key": key, "value": value} for key, value in merged.items()])
    return {}


def untag_resource(call: Any, params: dict[str, Any], resolve: Resolver) -> dict[str, Any]:
    target = resolve(call, params["resourceArn"])
    reference(call, target.arn, target.resource_type)
    keys = list(params["tagKeys"])
    _check_keys(keys)
    _writable(target)
    removed = set(keys)
    remaining = [tag for tag in target.tags if tag["key"] not in removed]
    if len(remaining) != len(target.tags):
        target.save(remaining)
    return {}


def list_tags_for_resource(call: Any, params: dict[str, Any], resolve: Resolver) -> dict[str, Any]:
    target = resolve(call, params["resourceArn"])
    reference(call, target.arn, target.resource_type)
    return {"tags": [dict(tag) for tag in target.tags]}
