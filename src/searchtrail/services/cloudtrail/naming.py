"""Trail names, ARNs and the settings CreateTrail/UpdateTrail check before touching storage.

Everything here is pure: each check returns the normalised value or raises the modelled
CloudTrail error. Texts marked "real" were observed from AWS (see the spec, section 3.5);
"moto" texts come from moto; the rest are ours.
"""

from __future__ import annotations

import re
from typing import Any

from searchtrail.arns import partition
from searchtrail.protocol.errors import ServiceError

MIN_NAME, MAX_NAME = 3, 128
MAX_PREFIX = 200
MAX_TOPIC = 256

PARTITION = r"aws(?:-cn|-us-gov)?"
_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]+", re.ASCII)
_ALNUM = re.compile(r"[A-Za-z0-9]", re.ASCII)
_ADJACENT_PUNCTUATION = re.compile(r"[._-]{2}")
_IP_ADDRESS = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}", re.ASCII)
TRAIL_ARN = re.compile(
    rf"arn:({PARTITION}):cloudtrail:([a-z]{{2}}(?:-[a-z]+)+-\d+):(\d{{12}}):trail/([A-Za-z0-9._-]+)",
    re.ASCII)
_ANY_ARN = re.compile(r"arn:([^:]*):([^:]*):([^:]*):([^:]*):(.+)", re.ASCII)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", re.ASCII)
_TOPIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}", re.ASCII)
_TOPIC_ARN = re.compile(rf"arn:{PARTITION}:sns:[a-z0-9-]+:\d{{12}}:[A-Za-z0-9_-]{{1,256}}", re.ASCII)
_KMS_ARN = re.compile(
    rf"arn:{PARTITION}:kms:[a-z0-9-]+:\d{{12}}:(?:key/[A-Za-z0-9-]+|alias/[A-Za-z0-9/_-]+)", re.ASCII)
_KMS_KEY_ID = re.compile(
    r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})", re.ASCII)
_KMS_ALIAS = re.compile(r"alias/[A-Za-z0-9/_-]{1,250}", re.ASCII)
_LOG_GROUP_ARN = re.compile(
    rf"arn:{PARTITION}:logs:[a-z0-9-]+:\d{{12}}:log-group:[A-Za-z0-9._/#-]{{1,512}}(?::\*)?", re.ASCII)
_ROLE_ARN = re.compile(rf"arn:{PARTITION}:iam::\d{{12}}:role/[A-Za-z0-9+=,.@_/-]{{1,512}}", re.ASCII)


def error(code: str, message: str) -> ServiceError:
    return ServiceError(code, message, status=400)


def trail_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:{partition(region)}:cloudtrail:{region}:{account_id}:trail/{name}"


def check_trail_name(name: str) -> None:
    """AWS's naming rules, in the order the messages (moto's wording) report them."""
    def invalid(message: str) -> ServiceError:
        return error("InvalidTrailNameException", message)

    if len(name) < MIN_NAME:
        raise invalid(f"Trail name too short. Minimum allowed length: {MIN_NAME} characters. "
                      f"Specified name length: {len(name)} characters.")
    if len(name) > MAX_NAME:
        raise invalid(f"Trail name too long. Maximum allowed length: {MAX_NAME} characters. "
                      f"Specified name length: {len(name)} characters.")
    if not _ALNUM.fullmatch(name[0]):
        raise invalid("Trail name must starts with a letter or number.")
    if not _ALNUM.fullmatch(name[-1]):
        raise invalid("Trail name must ends with a letter or number.")
    if not _NAME_CHARS.fullmatch(name):
        raise invalid("Trail name or ARN can only contain uppercase letters, lowercase letters, "
                      "numbers, periods (.), hyphens (-), and underscores (_).")
    if _ADJACENT_PUNCTUATION.search(name):
        raise invalid("Trail name cannot contain adjacent periods (.), hyphens (-), or "
                      f"underscores (_): {name}")
    if _IP_ADDRESS.fullmatch(name):
        raise invalid(f"Trail name cannot be formatted as an IP address: {name}")


def is_arn(identifier: str) -> bool:
    return identifier.startswith("arn:")


def parse_trail_arn(arn: str) -> tuple[str, str, str]:
    """(region, account, name) of a trail ARN; CloudTrailARNInvalidException when malformed."""
    match = TRAIL_ARN.fullmatch(arn)
    if match is None:
        raise error("CloudTrailARNInvalidException",
                    f"Invalid trail ARN: {arn}. The format of a trail ARN is "
                    "arn:aws:cloudtrail:us-east-2:123456789012:trail/MyTrail.")
    _, region, account, name = match.groups()
    return region, account, name


def parse_resource_arn(arn: str) -> tuple[str, str, str, str]:
    """(service, region, account, resource) of any ARN a tag operation may name."""
    match = _ANY_ARN.fullmatch(arn) if is_arn(arn) else None
    if match is None:
        raise error("CloudTrailARNInvalidException",
                    f"{arn} is not a valid ARN. The format of a trail ARN is "
                    "arn:aws:cloudtrail:us-east-2:123456789012:trail/MyTrail.")
    _, service, region, account, resource = match.groups()
    return service, region, account, resource


def unknown_trail(identifier_arn: str, account_id: str) -> ServiceError:
    """Real text: ``Unknown trail: <arn> for the user: <account>``."""
    return error("TrailNotFoundException", f"Unknown trail: {identifier_arn} for the user: {account_id}")


# --- settings ---------------------------------------------------------------------------------


def check_bucket_name(bucket: str) -> str:
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or _IP_ADDRESS.fullmatch(bucket) \
            or ".-" in bucket or "-." in bucket:
        raise error("InvalidS3BucketNameException", f"Bucket name is not valid: {bucket}")
    return bucket


def check_prefix(prefix: str) -> str:
    if len(prefix) > MAX_PREFIX:
        raise error("InvalidS3PrefixException",
                    f"S3 key prefix is too long: {len(prefix)} characters; the maximum is {MAX_PREFIX}.")
    return prefix


def topic_arn(topic: str, region: str, account_id: str) -> str:
    """The SnsTopicARN for a topic given as a name (in the trail's home Region) or an ARN."""
    if is_arn(topic):
        if not _TOPIC_ARN.fullmatch(topic):
            raise error("InvalidSnsTopicNameException", f"SNS topic ARN is not valid: {topic}")
        return topic
    if not _TOPIC_NAME.fullmatch(topic):
        raise error("InvalidSnsTopicNameException",
                    f"SNS topic name is not valid: {topic}. Topic names have 1 to {MAX_TOPIC} "
                    "characters: letters, numbers, underscores (_) and hyphens (-).")
    return f"arn:{partition(region)}:sns:{region}:{account_id}:{topic}"


def kms_key_arn(key: str, region: str, account_id: str) -> str:
    """A KMS key as CloudTrail stores it: ARNs as given; key ids and aliases made ARNs."""
    if is_arn(key):
        if not _KMS_ARN.fullmatch(key):
            raise error("InvalidKmsKeyIdException", f"KMS key ID is not valid: {key}")
        return key
    if _KMS_KEY_ID.fullmatch(key):
        return f"arn:{partition(region)}:kms:{region}:{account_id}:key/{key}"
    if _KMS_ALIAS.fullmatch(key):
        return f"arn:{partition(region)}:kms:{region}:{account_id}:{key}"
    raise error("InvalidKmsKeyIdException", f"KMS key ID is not valid: {key}")


def check_log_group_arn(arn: str) -> str:
    if not _LOG_GROUP_ARN.fullmatch(arn):
        raise error("InvalidCloudWatchLogsLogGroupArnException",
                    f"CloudWatch Logs log group ARN is not valid: {arn}")
    return arn


def check_role_arn(arn: str) -> str:
    if not _ROLE_ARN.fullmatch(arn):
        raise error("InvalidCloudWatchLogsRoleArnException",
                    f"CloudWatch Logs role ARN is not valid: {arn}")
    return arn


def check_tags(tags: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Request tags as stored ({Key[, Value]}); duplicate and reserved keys are refused."""
    seen: set[str] = set()
    out: list[dict[str, str]] = []
    for tag in tags:
        key = tag["Key"]
        if key in seen:
            raise error("InvalidTagParameterException", f"Duplicate tag key in the request: {key}")
        if key.lower().startswith("aws:"):
            raise error("InvalidTagParameterException",
                        f"Tag key {key} is not valid: keys starting with aws: are reserved.")
        seen.add(key)
        item = {"Key": key}
        if tag.get("Value") is not None:
            item["Value"] = tag["Value"]
        out.append(item)
    return out
