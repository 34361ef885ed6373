"""CloudTrail trails against the real SQLite store, with a controlled clock."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import botocore.session
import pytest

from searchtrail.audit.objectstore import ObjectStoreError
from searchtrail.protocol import serializer, validate
from searchtrail.protocol.errors import ServiceError
from searchtrail.services.call import Call
from searchtrail.services.cloudtrail.provider import CloudTrailProvider
from searchtrail.services.cloudtrail.trails import trail_status
from searchtrail.store.sqlite.resources import SqliteResources
from tests.unit.harness import ProviderHarness

ACCOUNT = "111122223333"
OTHER = "444455556666"
EAST, WEST = "us-east-1", "us-west-2"
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
MODEL = botocore.session.get_session().get_service_model("cloudtrail")
KMS = "arn:aws:kms:us-east-1:111122223333:key/93fd6da4-a317-4c17-bfe9-382b5d988b36"
LOG_GROUP = "arn:aws:logs:us-east-1:111122223333:log-group:trail-logs:*"
ROLE = "arn:aws:iam::111122223333:role/CloudTrail_CloudWatchLogs_Role"
DEFAULT_SELECTORS = [{"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": [],
                      "ExcludeManagementEventSources": []}]
AOSS_DATA = [{"Name": "aoss data", "FieldSelectors": [
    {"Field": "eventCategory", "Equals": ["Data"]},
    {"Field": "resources.type", "Equals": ["AWS::AOSS::Collection"]}]}]


def arn(name, region=EAST, account=ACCOUNT):
    return f"arn:aws:cloudtrail:{region}:{account}:trail/{name}"


@dataclass
class Key:
    fingerprint: str
    public_der: bytes
    valid_from: datetime
    valid_to: datetime


class StandInKeys:
    """Stand-in for audit.signing.SigningKeys: records its calls, returns fixed keys."""

    def __init__(self):
        self.calls = []
        self.keys = [Key("0123456789abcdef0123456789abcdef", b"\x30\x82\x01\x0a\x02\x82",
                         T0 - timedelta(days=30), T0 + timedelta(days=30))]

    def region_public_keys(self, accounts, account, region, start, end, now):
        self.calls.append((account, region, start, end, now))
        return self.keys


class TrailHarness(ProviderHarness):
    """CloudTrailProvider with a stand-in for S3 (`buckets`) and for the signing keys (`keys`).

    elsewhere() copies share both, as they share the provider, store and clock."""

    def __init__(self, conn, account=ACCOUNT, region=EAST, provider=None, clock=None, buckets=None):
        self.buckets = buckets if buckets is not None else {"trail-bucket", "other-bucket"}
        self.keys = StandInKeys()
        self.provider = provider or CloudTrailProvider(bucket_exists=self.buckets.__contains__,
                                                       signing_keys=lambda repo: self.keys)
        super().__init__(conn, "cloudtrail", self.provider.handlers(), account, region,
                         clock if clock is not None else [T0])

    # shortcuts
    def create(self, name, **params):
        params.setdefault("S3BucketName", "trail-bucket")
        return self("CreateTrail", Name=name, **params)

    def trail(self, name_or_arn):
        return self("GetTrail", Name=name_or_arn)["Trail"]

    def describe(self, **params):
        return [t["Name"] for t in self("DescribeTrails", **params)["trailList"]]

    def stored(self, trail_arn, account=None):
        return self.repo.scoped(account or self.account, "").get("cloudtrail.trail", trail_arn)

    def status(self, name_or_arn):
        return self("GetTrailStatus", Name=name_or_arn)


@pytest.fixture
def ct(conn):
    return TrailHarness(conn)


@pytest.fixture
def west(ct):
    return ct.elsewhere(region=WEST)


def make_management(conn, account=ACCOUNT):
    SqliteResources(conn, "", "").put("setting", "default-account", {"AccountId": account})


# --- CreateTrail ------------------------------------------------------------------------------


def test_create_returns_the_flat_shape_with_aws_defaults(ct):
    out = ct.create("main")
    assert out == {
        "Name": "main",
        "S3BucketName": "trail-bucket",
        "IncludeGlobalServiceEvents": True,
        "IsMultiRegionTrail": False,
        "TrailARN": arn("main"),
        "LogFileValidationEnabled": False,
        "IsOrganizationTrail": False,
        "RecursiveLogging": True,
    }
    assert ct.last.referenced_resources == [
        {"ARN": arn("main"), "accountId": ACCOUNT, "type": "AWS::CloudTrail::Trail"}]


def test_created_trail_is_stored_as_the_contract_says(ct):
    ct.create("main", TagsList=[{"Key": "team", "Value": "search"}, {"Key": "bare"}])
    doc = ct.stored(arn("main"))
    assert doc["TrailARN"] == arn("main") and doc["HomeRegion"] == EAST
    assert doc["IsLogging"] is False
    assert "StartLoggingTime" not in doc and "StopLoggingTime" not in doc
    assert doc["EventSelectors"] == DEFAULT_SELECTORS
    assert "AdvancedEventSelectors" not in doc
    assert doc["Tags"] == [{"Key": "team", "Value": "search"}, {"Key": "bare"}]
    assert doc["CreatedTime"] == T0.timestamp()
    assert doc["HasCustomEventSelectors"] is False and doc["HasInsightSelectors"] is False
    # account scope, region "": not in the regional scope
    assert SqliteResources(ct.conn, ACCOUNT, EAST).get("cloudtrail.trail", arn("main")) is None


def test_create_does_not_start_logging(ct):
    ct.create("main")
    assert ct.status("main") == {
        "IsLogging": False,
        "LatestDeliveryAttemptTime": "",
        "LatestNotificationAttemptTime": "",
        "LatestNotificationAttemptSucceeded": "",
        "LatestDeliveryAttemptSucceeded": "",
        "TimeLoggingStarted": "",
        "TimeLoggingStopped": "",
    }


def test_create_with_every_setting(ct):
    out = ct.create("full", S3KeyPrefix="p/q", SnsTopicName="trail-topic", IsMultiRegionTrail=True,
                    EnableLogFileValidation=True, KmsKeyId=KMS, CloudWatchLogsLogGroupArn=LOG_GROUP,
                    CloudWatchLogsRoleArn=ROLE, RecursiveLogging=False)
    assert out == {
        "Name": "full",
        "S3BucketName": "trail-bucket",
        "S3KeyPrefix": "p/q",
        "SnsTopicName": "trail-topic",
        "SnsTopicARN": "arn:aws:sns:us-east-1:111122223333:trail-topic",
        "IncludeGlobalServiceEvents": True,
        "IsMultiRegionTrail": True,
        "TrailARN": arn("full"),
        "LogFileValidationEnabled": True,
        "CloudWatchLogsLogGroupArn": LOG_GROUP,
        "CloudWatchLogsRoleArn": ROLE,
        "KmsKeyId": KMS,
        "IsOrganizationTrail": False,
        "RecursiveLogging": False,
    }


def test_sns_topic_given_as_arn_is_kept(ct):
    topic = "arn:aws:sns:eu-west-1:111122223333:elsewhere"
    out = ct.create("main", SnsTopicName=topic)
    assert out["SnsTopicName"] == topic and out["SnsTopicARN"] == topic


@pytest.mark.parametrize("given, stored", [
    (KMS, KMS),
    ("arn:aws:kms:us-east-1:111122223333:alias/trail", "arn:aws:kms:us-east-1:111122223333:alias/trail"),
    ("93fd6da4-a317-4c17-bfe9-382b5d988b36", KMS),
    ("alias/trail", "arn:aws:kms:us-east-1:111122223333:alias/trail"),
])
def test_kms_key_forms(ct, given, stored):
    assert ct.create("main", KmsKeyId=given)["KmsKeyId"] == stored


@pytest.mark.parametrize("name, message", [
    ("ab", "Trail name too short. Minimum allowed length: 3 characters. Specified name length: 2 characters."),
    ("a" * 129, "Trail name too long. Maximum allowed length: 128 characters. Specified name length: 129 characters."),
    ("-abc", "Trail name must starts with a letter or number."),
    ("abc_", "Trail name must ends with a letter or number."),
    ("my trail", "Trail name or ARN can only contain uppercase letters, lowercase letters, numbers, "
                 "periods (.), hyphens (-), and underscores (_)."),
    ("välue", "Trail name or ARN can only contain uppercase letters, lowercase letters, numbers, "
              "periods (.), hyphens (-), and underscores (_)."),
    ("my-_ns", None), ("my--ns", None), ("my..ns", None), ("a._b", None),
    ("192.168.5.4", None),
])
def test_invalid_trail_names(ct, name, message):
    error = ct.fail("CreateTrail", Name=name, S3BucketName="trail-bucket")
    assert error.code == "InvalidTrailNameException"
    if message:
        assert error.message == message
    assert ct("ListTrails")["Trails"] == []


@pytest.mark.parametrize("name", ["abc", "My.Trail-1_x", "1.2.3", "1.2.3.4.5", "a" * 128, "A-b.C_d"])
def test_valid_trail_names(ct, name):
    assert ct.create(name)["Name"] == name


def test_create_refuses_an_arn_as_name(ct):
    assert ct.fail("CreateTrail", Name=arn("main"), S3BucketName="trail-bucket").code == \
        "InvalidTrailNameException"


def test_multi_region_without_global_events_is_refused_before_the_bucket(ct):
    error = ct.fail("CreateTrail", Name="main", S3BucketName="missing-bucket",
                    IsMultiRegionTrail=True, IncludeGlobalServiceEvents=False)
    assert (error.code, error.message) == ("InvalidParameterCombinationException",
                                           "Multi-Region trail must include global service events.")


def test_single_region_trail_may_exclude_global_events(ct):
    assert ct.create("main", IncludeGlobalServiceEvents=False)["IncludeGlobalServiceEvents"] is False


def test_missing_bucket(ct):
    error = ct.fail("CreateTrail", Name="main", S3BucketName="missing-bucket")
    assert (error.code, error.message) == ("S3BucketDoesNotExistException",
                                           "S3 bucket missing-bucket does not exist!")
    assert ct("ListTrails")["Trails"] == []


def test_a_bucket_that_cannot_be_looked_up_is_a_503_that_changes_nothing(conn):
    def s3_away(bucket: str) -> bool:
        raise ObjectStoreError("ServiceUnavailable", "The S3 endpoint could not be reached")

    ct = TrailHarness(conn, provider=CloudTrailProvider(bucket_exists=s3_away))
    error = ct.fail("CreateTrail", Name="main", S3BucketName="trail-bucket")
    assert (error.code, error.status) == ("ServiceUnavailableException", 503)
    assert "trail-bucket" in error.message and "could not be reached" in error.message
    assert ct("ListTrails")["Trails"] == []


def test_the_bucket_is_looked_up_before_the_unit_of_work(conn):
    """The preparer's answer is what the handler uses, for the bucket it looked up."""
    looked_up = []
    provider = CloudTrailProvider(bucket_exists=lambda bucket: looked_up.append(bucket) or False)
    prepare = provider.preparers()["CreateTrail"]
    assert asyncio.run(prepare({"Name": "main"})) == {}  # no bucket named: nothing to look up
    prepared = asyncio.run(prepare({"Name": "main", "S3BucketName": "trail-bucket"}))
    assert looked_up == ["trail-bucket"]
    ct = TrailHarness(conn, provider=provider)
    ct.prepared = prepared
    error = ct.fail("CreateTrail", Name="main", S3BucketName="trail-bucket")
    assert error.code == "S3BucketDoesNotExistException" and looked_up == ["trail-bucket"]
    ct.fail("CreateTrail", Name="main", S3BucketName="other-bucket")
    assert looked_up == ["trail-bucket", "other-bucket"]  # another bucket: looked up again
    assert set(provider.preparers()) == {"CreateTrail", "UpdateTrail"}


@pytest.mark.parametrize("bucket", ["ab", "Upper-Case", "-start", "end-", "a..b", "192.168.1.1", "a_b"])
def test_invalid_bucket_name(ct, bucket):
    assert ct.fail("CreateTrail", Name="main", S3BucketName=bucket).code == "InvalidS3BucketNameException"


def test_prefix_length_limit(ct):
    assert ct.create("ok1", S3KeyPrefix="p" * 200)["S3KeyPrefix"] == "p" * 200
    error = ct.fail("CreateTrail", Name="bad", S3BucketName="trail-bucket", S3KeyPrefix="p" * 201)
    assert error.code == "InvalidS3PrefixException"


@pytest.mark.parametrize("topic", ["bad topic", "t" * 257, "arn:aws:sns:us-east-1:1:x", "dot.name"])
def test_invalid_sns_topic(ct, topic):
    assert ct.fail("CreateTrail", Name="main", S3BucketName="trail-bucket",
                   SnsTopicName=topic).code == "InvalidSnsTopicNameException"


def test_longest_sns_topic_name(ct):
    assert ct.create("main", SnsTopicName="t" * 256)["SnsTopicARN"].endswith(":" + "t" * 256)


@pytest.mark.parametrize("key", ["not a key", "arn:aws:kms:us-east-1:111122223333:thing/x", "1234"])
def test_invalid_kms_key(ct, key):
    assert ct.fail("CreateTrail", Name="main", S3BucketName="trail-bucket",
                   KmsKeyId=key).code == "InvalidKmsKeyIdException"


def test_cloudwatch_logs_settings_are_checked(ct):
    assert ct.fail("CreateTrail", Name="main", S3BucketName="trail-bucket",
                   CloudWatchLogsLogGroupArn=LOG_GROUP).code == "InvalidParameterCombinationException"
    assert ct.fail("CreateTrail", Name="main", S3BucketName="trail-bucket",
                   CloudWatchLogsLogGroupArn="group", CloudWatchLogsRoleArn=ROLE).code == \
        "InvalidCloudWatchLogsLogGroupArnException"
    assert ct.fail("CreateTrail", Name="main", S3BucketName="trail-bucket",
                   CloudWatchLogsLogGroupArn=LOG_GROUP, CloudWatchLogsRoleArn="role").code == \
        "InvalidCloudWatchLogsRoleArnException"


def test_duplicate_name_in_region(ct):
    ct.create("main")
    error = ct.fail("CreateTrail", Name="main", S3BucketName="trail-bucket")
    assert (error.code, error.message) == ("TrailAlreadyExistsException",
                                           "Trail main already exists for customer: 111122223333")


def test_same_name_in_two_regions_and_two_accounts(ct, west):
    ct.create("main")
    assert west.create("main")["TrailARN"] == arn("main", WEST)
    assert ct.elsewhere(account=OTHER).create("main")["TrailARN"] == arn("main", EAST, OTHER)


def test_multi_region_name_clashes_with_every_region(ct, west):
    ct.create("everywhere", IsMultiRegionTrail=True)
    assert west.fail("CreateTrail", Name="everywhere", S3BucketName="trail-bucket").code == \
        "TrailAlreadyExistsException"
    west.create("local")
    assert ct.fail("CreateTrail", Name="local", S3BucketName="trail-bucket",
                   IsMultiRegionTrail=True).code == "TrailAlreadyExistsException"


def test_five_trails_per_region(ct, west):
    for number in range(5):
        ct.create(f"trail{number}")
    error = ct.fail("CreateTrail", Name="trail5", S3BucketName="trail-bucket")
    assert (error.code, error.message) == ("MaximumNumberOfTrailsExceededException",
                                           "User: 111122223333 already has 5 trails in us-east-1.")
    west.create("trail5")  # the quota is per Region
    assert ct.elsewhere(account=OTHER).create("trail5")  # and per account


def test_multi_region_trails_count_in_every_region(ct, west):
    for number in range(4):
        west.create(f"west{number}")
    ct.create("everywhere", IsMultiRegionTrail=True)  # the 5th trail visible in us-west-2
    assert west.fail("CreateTrail", Name="west4", S3BucketName="trail-bucket").code == \
        "MaximumNumberOfTrailsExceededException"
    west("DeleteTrail", Name="west0")
    west.create("west4")
    # a new multi-Region trail needs room in every Region with trails
    assert ct.fail("CreateTrail", Name="everywhere2", S3BucketName="trail-bucket",
                   IsMultiRegionTrail=True).code == "MaximumNumberOfTrailsExceededException"
    ct.create("east-only")  # us-east-1 itself has room


def test_tags_on_create(ct):
    tags = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    ct.create("fifty", TagsList=tags)
    error = ct.fail("CreateTrail", Name="many", S3BucketName="trail-bucket",
                    TagsList=tags + [{"Key": "k50", "Value": "v"}])
    assert error.code == "TagsLimitExceededException"
    assert ct.fail("CreateTrail", Name="dup", S3BucketName="trail-bucket",
                   TagsList=[{"Key": "a"}, {"Key": "a", "Value": "x"}]).code == "InvalidTagParameterException"
    assert ct.fail("CreateTrail", Name="aws", S3BucketName="trail-bucket",
                   TagsList=[{"Key": "aws:x"}]).code == "InvalidTagParameterException"


def test_organization_trail_only_in_the_management_account(ct, conn):
    error = ct.fail("CreateTrail", Name="org", S3BucketName="trail-bucket", IsOrganizationTrail=True)
    assert error.code == "NotOrganizationMasterAccountException"  # no organization at all
    make_management(conn, OTHER)
    error = ct.fail("CreateTrail", Name="org", S3BucketName="trail-bucket", IsOrganizationTrail=True)
    assert error.code == "NotOrganizationMasterAccountException"
    out = ct.elsewhere(account=OTHER).create("org", IsOrganizationTrail=True, IsMultiRegionTrail=True)
    assert out["IsOrganizationTrail"] is True


def test_failed_create_references_nothing(ct):
    ct.fail("CreateTrail", Name="main", S3BucketName="missing-bucket")
    assert ct.last.referenced_resources == []


# --- GetTrail / DescribeTrails / ListTrails -------------------------------------------------


def test_get_trail_by_name_and_by_arn(ct):
    ct.create("main")
    expected = {
        "Name": "main", "S3BucketName": "trail-bucket", "IncludeGlobalServiceEvents": True,
        "IsMultiRegionTrail": False, "HomeRegion": EAST, "TrailARN": arn("main"),
        "LogFileValidationEnabled": False, "HasCustomEventSelectors": False,
        "HasInsightSelectors": False, "IsOrganizationTrail": False, "RecursiveLogging": True,
    }
    assert ct.trail("main") == expected
    assert ct.last.referenced_resources == [
        {"ARN": arn("main"), "accountId": ACCOUNT, "type": "AWS::CloudTrail::Trail"}]
    assert ct.trail(arn("main")) == expected


def test_get_unknown_trail(ct):
    error = ct.fail("GetTrail", Name="nope")
    assert (error.code, error.message) == (
        "TrailNotFoundException",
        "Unknown trail: arn:aws:cloudtrail:us-east-1:111122223333:trail/nope for the user: 111122223333")
    error = ct.fail("GetTrail", Name=arn("nope", WEST))
    assert error.message == f"Unknown trail: {arn('nope', WEST)} for the user: 111122223333"


def test_get_trail_with_bad_identifiers(ct):
    assert ct.fail("GetTrail", Name="arn:aws:cloudtrail:us-east-1:1:trail/x").code == \
        "CloudTrailARNInvalidException"
    assert ct.fail("GetTrail", Name="arn:aws:s3:::bucket").code == "CloudTrailARNInvalidException"
    assert ct.fail("GetTrail", Name="ab").code == "InvalidTrailNameException"


def test_another_accounts_trail_is_not_found_by_arn(ct):
    ct.elsewhere(account=OTHER).create("theirs")
    assert ct.fail("GetTrail", Name=arn("theirs", EAST, OTHER)).code == "TrailNotFoundException"


def test_multi_region_trail_shadows_in_other_regions(ct, west):
    ct.create("everywhere", IsMultiRegionTrail=True)
    ct.create("local")
    west.create("west-only")
    assert ct.describe() == ["everywhere", "local"]
    assert west.describe() == ["west-only", "everywhere"]
    assert west.describe(includeShadowTrails=False) == ["west-only"]
    assert ct.describe(includeShadowTrails=False) == ["everywhere", "local"]
    shadow = west("DescribeTrails")["trailList"][1]
    assert shadow == ct.trail("everywhere")  # same ARN, same HomeRegion
    assert shadow["HomeRegion"] == EAST and shadow["TrailARN"] == arn("everywhere")


def test_describe_with_names_and_arns(ct, west):
    ct.create("everywhere", IsMultiRegionTrail=True)
    ct.create("local")
    # names resolve only to trails homed in the calling Region
    assert west.describe(trailNameList=["everywhere"]) == []
    assert west.describe(trailNameList=["local"]) == []
    # ARNs resolve wherever the trail lives
    assert west.describe(trailNameList=[arn("everywhere"), arn("local")]) == ["everywhere", "local"]
    assert ct.describe(trailNameList=["local", "nope", arn("local")]) == ["local"]
    assert west.describe(trailNameList=[arn("everywhere")], includeShadowTrails=False) == ["everywhere"]


def test_describe_with_malformed_entries(ct):
    assert ct.fail("DescribeTrails", trailNameList=["a"]).code == "InvalidTrailNameException"
    assert ct.fail("DescribeTrails", trailNameList=["arn:aws:cloudtrail:x"]).code == \
        "CloudTrailARNInvalidException"


def test_describe_lists_string_members_only_when_set(ct):
    ct.create("plain")
    ct.create("rich", SnsTopicName="topic", KmsKeyId=KMS, S3KeyPrefix="pre")
    plain, rich = ct("DescribeTrails")["trailList"]
    for member in ("SnsTopicName", "SnsTopicARN", "KmsKeyId", "S3KeyPrefix",
                   "CloudWatchLogsLogGroupArn", "CloudWatchLogsRoleArn"):
        assert member not in plain
    assert rich["SnsTopicARN"] == "arn:aws:sns:us-east-1:111122223333:topic"
    assert rich["KmsKeyId"] == KMS and rich["S3KeyPrefix"] == "pre"
    assert ct.last.referenced_resources == []


def test_list_trails_spans_regions_and_pages(ct, west):
    ct.provider.trails.list_page_size = 2
    ct.create("aaa1")
    ct.create("aaa2", IsMultiRegionTrail=True)
    west.create("bbb1")
    west.create("bbb2")
    ct.elsewhere(region="eu-west-1").create("ccc1")
    ct.elsewhere(account=OTHER).create("theirs")
    seen, token, pages = [], None, 0
    while True:
        out = ct("ListTrails", **({"NextToken": token} if token else {}))
        pages += 1
        seen += out["Trails"]
        token = out.get("NextToken")
        if not token:
            break
    assert pages == 3
    assert {(t["Name"], t["HomeRegion"]) for t in seen} == {
        ("aaa1", EAST), ("aaa2", EAST), ("bbb1", WEST), ("bbb2", WEST), ("ccc1", "eu-west-1")}
    assert len(seen) == 5  # each trail once, shadows not repeated
    assert all(t["TrailARN"] == arn(t["Name"], t["HomeRegion"]) for t in seen)
    assert ct.last.referenced_resources == []


def test_list_trails_rejects_a_forged_token(ct):
    assert ct.fail("ListTrails", NextToken="garbage!").code == "InvalidNextTokenException"


# --- UpdateTrail --------------------------------------------------------------------------------


def test_update_changes_only_what_is_given(ct):
    ct.create("main", S3KeyPrefix="old", SnsTopicName="topic", KmsKeyId=KMS)
    out = ct("UpdateTrail", Name="main", S3BucketName="other-bucket", EnableLogFileValidation=True)
    assert out["S3BucketName"] == "other-bucket" and out["LogFileValidationEnabled"] is True
    assert out["S3KeyPrefix"] == "old" and out["SnsTopicName"] == "topic" and out["KmsKeyId"] == KMS
    assert "HomeRegion" not in out and "HasCustomEventSelectors" not in out
    assert ct.last.referenced_resources[0]["ARN"] == arn("main")


def test_update_with_empty_strings_removes_settings(ct):
    ct.create("main", S3KeyPrefix="old", SnsTopicName="topic", KmsKeyId=KMS,
              CloudWatchLogsLogGroupArn=LOG_GROUP, CloudWatchLogsRoleArn=ROLE)
    out = ct("UpdateTrail", Name=arn("main"), S3KeyPrefix="", SnsTopicName="", KmsKeyId="",
             CloudWatchLogsLogGroupArn="", CloudWatchLogsRoleArn="")
    for member in ("S3KeyPrefix", "SnsTopicName", "SnsTopicARN", "KmsKeyId",
                   "CloudWatchLogsLogGroupArn", "CloudWatchLogsRoleArn"):
        assert member not in out
        assert member not in ct.trail("main")


def test_update_keeps_state_that_is_not_settings(ct):
    ct.create("main", TagsList=[{"Key": "k", "Value": "v"}])
    ct("StartLogging", Name="main")
    ct("PutEventSelectors", TrailName="main", AdvancedEventSelectors=AOSS_DATA)
    ct("UpdateTrail", Name="main", S3KeyPrefix="new")
    doc = ct.stored(arn("main"))
    assert doc["IsLogging"] is True and doc["Tags"] == [{"Key": "k", "Value": "v"}]
    assert doc["AdvancedEventSelectors"] == AOSS_DATA and doc["CreatedTime"] == T0.timestamp()


def test_update_to_a_missing_bucket_changes_nothing(ct):
    ct.create("main")
    error = ct.fail("UpdateTrail", Name="main", S3BucketName="missing-bucket", S3KeyPrefix="x")
    assert error.code == "S3BucketDoesNotExistException"
    assert ct.trail("main")["S3BucketName"] == "trail-bucket" and "S3KeyPrefix" not in ct.trail("main")


def test_update_multi_region_needs_global_events(ct):
    ct.create("single", IncludeGlobalServiceEvents=False)
    assert ct.fail("UpdateTrail", Name="single", IsMultiRegionTrail=True).message == \
        "Multi-Region trail must include global service events."
    ct.create("multi", IsMultiRegionTrail=True)
    assert ct.fail("UpdateTrail", Name="multi", IncludeGlobalServiceEvents=False).code == \
        "InvalidParameterCombinationException"


def test_update_to_multi_region_and_back_moves_the_shadow(ct, west):
    ct.create("main")
    assert west.describe() == []
    ct("UpdateTrail", Name="main", IsMultiRegionTrail=True)
    assert west.describe() == ["main"]
    ct("UpdateTrail", Name="main", IsMultiRegionTrail=False)
    assert west.describe() == []


def test_update_to_multi_region_checks_names_elsewhere(ct, west):
    ct.create("main")
    west.create("main")
    assert ct.fail("UpdateTrail", Name="main", IsMultiRegionTrail=True).code == \
        "TrailAlreadyExistsException"


def test_update_to_organization_trail_needs_the_management_account(ct, conn):
    ct.create("main")
    assert ct.fail("UpdateTrail", Name="main", IsOrganizationTrail=True).code == \
        "NotOrganizationMasterAccountException"
    make_management(conn)
    assert ct("UpdateTrail", Name="main", IsOrganizationTrail=True)["IsOrganizationTrail"] is True


def test_update_validates_settings(ct):
    ct.create("main")
    assert ct.fail("UpdateTrail", Name="main", S3KeyPrefix="p" * 201).code == "InvalidS3PrefixException"
    assert ct.fail("UpdateTrail", Name="main", SnsTopicName="a b").code == "InvalidSnsTopicNameException"
    assert ct.fail("UpdateTrail", Name="main", KmsKeyId="nope").code == "InvalidKmsKeyIdException"
    assert ct.fail("UpdateTrail", Name="main", S3BucketName="").code == "InvalidS3BucketNameException"


# --- home Region rules --------------------------------------------------------------------------

CHANGES = [
    ("UpdateTrail", "Name", {"S3KeyPrefix": "x"}),
    ("DeleteTrail", "Name", {}),
    ("StartLogging", "Name", {}),
    ("StopLogging", "Name", {}),
    ("PutEventSelectors", "TrailName", {"EventSelectors": DEFAULT_SELECTORS}),
]


@pytest.mark.parametrize("operation, member, extra", CHANGES)
def test_changes_outside_the_home_region(ct, west, operation, member, extra):
    ct.create("everywhere", IsMultiRegionTrail=True)
    error = west.fail(operation, **{member: arn("everywhere")}, **extra)
    assert error.code == "InvalidHomeRegionException"
    assert "us-east-1" in error.message
    error = west.fail(operation, **{member: "everywhere"}, **extra)
    assert (error.code, error.message) == (
        "TrailNotFoundException",
        "Unknown trail: arn:aws:cloudtrail:us-west-2:111122223333:trail/everywhere "
        "for the user: 111122223333")
    assert ct.trail("everywhere")  # still there, unchanged
    assert ct.stored(arn("everywhere"))["IsLogging"] is False


@pytest.mark.parametrize("operation, member, extra", CHANGES)
def test_changes_in_the_home_region_by_arn(ct, operation, member, extra):
    ct.create("main")
    ct(operation, **{member: arn("main")}, **extra)
    assert ct.last.referenced_resources == [
        {"ARN": arn("main"), "accountId": ACCOUNT, "type": "AWS::CloudTrail::Trail"}]


def test_reads_of_a_shadow_need_its_arn(ct, west):
    ct.create("everywhere", IsMultiRegionTrail=True)
    ct("StartLogging", Name="everywhere")
    assert west.status(arn("everywhere"))["IsLogging"] is True
    assert west.trail(arn("everywhere"))["HomeRegion"] == EAST
    assert west("GetEventSelectors", TrailName=arn("everywhere"))["EventSelectors"] == DEFAULT_SELECTORS
    for operation, member in (("GetTrailStatus", "Name"), ("GetTrail", "Name"),
                              ("GetEventSelectors", "TrailName")):
        assert west.fail(operation, **{member: "everywhere"}).code == "TrailNotFoundException"


# --- DeleteTrail ------------------------------------------------------------------------------


def test_delete_removes_trail_and_status(ct, conn):
    ct.create("main")
    scope = SqliteResources(conn, ACCOUNT, "")
    scope.put("cloudtrail.trail-status", arn("main"), {"LatestDeliveryTime": 1.0})
    assert ct("DeleteTrail", Name="main") == {}
    assert ct.fail("GetTrail", Name="main").code == "TrailNotFoundException"
    assert scope.get("cloudtrail.trail-status", arn("main")) is None
    assert ct.fail("DeleteTrail", Name="main").code == "TrailNotFoundException"
    ct.create("main")  # the name is free again
    assert ct.status("main")["LatestDeliveryAttemptTime"] == ""


# --- logging and status -------------------------------------------------------------------------


def test_start_and_stop_logging(ct):
    ct.create("main")
    assert ct("StartLogging", Name="main") == {}
    status = ct.status("main")
    assert status["IsLogging"] is True
    assert status["StartLoggingTime"] == T0
    assert status["TimeLoggingStarted"] == "2025-03-01T12:00:00Z"
    assert status["TimeLoggingStopped"] == "" and "StopLoggingTime" not in status
    ct.advance(90)
    ct("StartLogging", Name="main")  # already logging: the start time stays
    assert ct.status("main")["StartLoggingTime"] == T0
    ct("StopLogging", Name="main")
    status = ct.status("main")
    assert status["IsLogging"] is False
    assert status["StopLoggingTime"] == T0 + timedelta(seconds=90)
    assert status["TimeLoggingStopped"] == "2025-03-01T12:01:30Z"
    assert status["TimeLoggingStarted"] == "2025-03-01T12:00:00Z"
    ct.advance(30)
    ct("StartLogging", Name="main")
    doc = ct.stored(arn("main"))
    assert doc["IsLogging"] is True and doc["StartLoggingTime"] == (T0 + timedelta(seconds=120)).timestamp()
    assert doc["StopLoggingTime"] == (T0 + timedelta(seconds=90)).timestamp()


def test_status_merges_the_delivery_document(ct, conn):
    ct.create("main")
    ct("StartLogging", Name="main")
    delivered = (T0 + timedelta(minutes=5, seconds=1, milliseconds=250)).timestamp()
    notified = delivered + 1
    digest = delivered + 2
    SqliteResources(conn, ACCOUNT, "").put("cloudtrail.trail-status", arn("main"), {
        "LatestDeliveryTime": delivered, "LatestDeliveryAttemptTime": delivered,
        "LatestNotificationTime": notified, "LatestNotificationAttemptTime": notified,
        "LatestDigestDeliveryTime": digest,
    })
    status = ct.status("main")
    assert status == {
        "IsLogging": True,
        "LatestDeliveryTime": datetime(2025, 3, 1, 12, 5, 1, 250000, tzinfo=timezone.utc),
        "LatestNotificationTime": datetime(2025, 3, 1, 12, 5, 2, 250000, tzinfo=timezone.utc),
        "LatestDigestDeliveryTime": datetime(2025, 3, 1, 12, 5, 3, 250000, tzinfo=timezone.utc),
        "StartLoggingTime": T0,
        "LatestDeliveryAttemptTime": "2025-03-01T12:05:01Z",
        "LatestDeliveryAttemptSucceeded": "2025-03-01T12:05:01Z",
        "LatestNotificationAttemptTime": "2025-03-01T12:05:02Z",
        "LatestNotificationAttemptSucceeded": "2025-03-01T12:05:02Z",
        "TimeLoggingStarted": "2025-03-01T12:00:00Z",
        "TimeLoggingStopped": "",
    }
    wire = serializer.to_wire(MODEL.operation_model("GetTrailStatus"), status)
    assert wire["LatestDeliveryTime"] == pytest.approx(delivered)  # epoch seconds
    assert wire["LatestDeliveryAttemptTime"] == "2025-03-01T12:05:01Z"  # deprecated: a string


def test_status_after_a_failed_delivery(ct, conn):
    ct.create("main")
    good = T0.timestamp() + 300
    bad = good + 300
    SqliteResources(conn, ACCOUNT, "").put("cloudtrail.trail-status", arn("main"), {
        "LatestDeliveryTime": good, "LatestDeliveryAttemptTime": bad,
        "LatestDeliveryError": "NoSuchBucket",
        "LatestNotificationAttemptTime": bad, "LatestNotificationError": "NotFound",
        "LatestDigestDeliveryError": "AccessDenied",
    })
    status = ct.status("main")
    assert status["LatestDeliveryError"] == "NoSuchBucket"
    assert status["LatestDeliveryTime"] == T0 + timedelta(seconds=300)
    assert status["LatestDeliveryAttemptTime"] == "2025-03-01T12:10:00Z"
    assert status["LatestDeliveryAttemptSucceeded"] == ""
    assert status["LatestNotificationError"] == "NotFound"
    assert status["LatestNotificationAttemptTime"] == "2025-03-01T12:10:00Z"
    assert status["LatestNotificationAttemptSucceeded"] == ""
    assert "LatestNotificationTime" not in status
    assert status["LatestDigestDeliveryError"] == "AccessDenied"


def test_status_without_an_attempt_time_uses_the_delivery_time():
    doc = {"IsLogging": True}
    out = trail_status(doc, {"LatestDeliveryTime": T0.timestamp()})
    assert out["LatestDeliveryAttemptTime"] == out["LatestDeliveryAttemptSucceeded"] == "2025-03-01T12:00:00Z"
    out = trail_status(doc, {"LatestDeliveryTime": T0.timestamp(),
                             "LatestDeliveryAttemptTime": T0.timestamp() - 60})
    assert out["LatestDeliveryAttemptTime"] == "2025-03-01T12:00:00Z"
    assert out["LatestDeliveryAttemptSucceeded"] == "2025-03-01T12:00:00Z"


def test_status_fills_all_seventeen_members_at_most(ct):
    op = MODEL.operation_model("GetTrailStatus")
    assert len(op.output_shape.members) == 17
    full = trail_status({"IsLogging": True, "StartLoggingTime": 1.0, "StopLoggingTime": 2.0}, {
        "LatestDeliveryTime": 3.0, "LatestDeliveryAttemptTime": 3.0, "LatestDeliveryError": "e",
        "LatestNotificationTime": 4.0, "LatestNotificationAttemptTime": 4.0,
        "LatestNotificationError": "e", "LatestDigestDeliveryTime": 5.0,
        "LatestDigestDeliveryError": "e", "LatestCloudWatchLogsDeliveryTime": 6.0,
        "LatestCloudWatchLogsDeliveryError": "e"})
    assert set(full) == set(op.output_shape.members)


# --- event selectors ------------------------------------------------------------------------------


def test_new_trail_has_the_default_selectors(ct):
    ct.create("main")
    assert ct("GetEventSelectors", TrailName="main") == {
        "TrailARN": arn("main"), "EventSelectors": DEFAULT_SELECTORS}
    assert ct.last.referenced_resources[0]["ARN"] == arn("main")


def test_put_basic_selectors_normalises_and_marks_custom(ct):
    ct.create("main")
    out = ct("PutEventSelectors", TrailName="main", EventSelectors=[
        {"ReadWriteType": "WriteOnly"},
        {"IncludeManagementEvents": False, "DataResources": [
            {"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::bucket/"]}]},
    ])
    expected = [
        {"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True, "DataResources": [],
         "ExcludeManagementEventSources": []},
        {"ReadWriteType": "All", "IncludeManagementEvents": False,
         "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::bucket/"]}],
         "ExcludeManagementEventSources": []},
    ]
    assert out == {"TrailARN": arn("main"), "EventSelectors": expected}
    assert ct("GetEventSelectors", TrailName=arn("main")) == out
    assert ct.trail("main")["HasCustomEventSelectors"] is True
    assert ct.stored(arn("main"))["EventSelectors"] == expected


def test_advanced_and_basic_selectors_replace_each_other(ct):
    ct.create("main")
    out = ct("PutEventSelectors", TrailName="main", AdvancedEventSelectors=AOSS_DATA)
    assert out == {"TrailARN": arn("main"), "AdvancedEventSelectors": AOSS_DATA}
    assert ct("GetEventSelectors", TrailName="main") == out
    assert "EventSelectors" not in ct.stored(arn("main"))
    ct("PutEventSelectors", TrailName="main", EventSelectors=DEFAULT_SELECTORS)
    doc = ct.stored(arn("main"))
    assert "AdvancedEventSelectors" not in doc and doc["EventSelectors"] == DEFAULT_SELECTORS
    assert ct("GetEventSelectors", TrailName="main") == {
        "TrailARN": arn("main"), "EventSelectors": DEFAULT_SELECTORS}


def test_put_selectors_needs_exactly_one_kind(ct):
    ct.create("main")
    both = ct.fail("PutEventSelectors", TrailName="main", EventSelectors=DEFAULT_SELECTORS,
                   AdvancedEventSelectors=AOSS_DATA)
    neither = ct.fail("PutEventSelectors", TrailName="main")
    assert both.code == neither.code == "InvalidEventSelectorsException"
    assert ct.trail("main")["HasCustomEventSelectors"] is False


@pytest.mark.parametrize("selectors_param, fragment", [
    ({"EventSelectors": [{}] * 6}, "at most 5 event selectors"),
    ({"EventSelectors": []}, "At least one"),
    ({"EventSelectors": [{"ReadWriteType": "read-only"}]}, "ReadWriteType"),
    ({"EventSelectors": [{"DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::*"]}]}]},
     "Value arn:aws:s3:::* for DataResources.Values is invalid."),
    ({"EventSelectors": [{"DataResources": [{"Type": "AWS::AOSS::Collection", "Values": ["arn:aws:aoss"]}]}]},
     "DataResources.Type"),
    ({"EventSelectors": [{"ExcludeManagementEventSources": ["s3.amazonaws.com"]}]},
     "ExcludeManagementEventSources"),
    ({"EventSelectors": [{"DataResources": [{"Type": "AWS::S3::Object",
                                             "Values": [f"arn:aws:s3:::bucket{i:03d}/" for i in range(126)]}]},
                         {"DataResources": [{"Type": "AWS::S3::Object",
                                             "Values": [f"arn:aws:s3:::other{i:03d}/" for i in range(125)]}]}]},
     "at most 250 data resources"),
    ({"AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "eventTime", "Equals": ["x"]}]}]},
     "Field eventTime"),
    ({"AdvancedEventSelectors": [{"FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Management"]},
        {"Field": "readOnly", "StartsWith": ["t"]}]}]}, "supports only the Equals operator"),
    ({"AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "readOnly", "Equals": ["true"]}]}]},
     "must include the field eventCategory"),
    ({"AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]}]}]},
     "resources.type"),
    ({"AdvancedEventSelectors": [{"FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Data"]},
        {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
        {"Field": "resources.ARN", "StartsWith": [f"arn:aws:s3:::b{i}/" for i in range(499)]}]}]},
     "at most 500 values"),
])
def test_invalid_selectors(ct, selectors_param, fragment):
    ct.create("main")
    error = ct.fail("PutEventSelectors", TrailName="main", **selectors_param)
    assert error.code == "InvalidEventSelectorsException"
    assert fragment in error.message
    assert ct("GetEventSelectors", TrailName="main")["EventSelectors"] == DEFAULT_SELECTORS


def test_limits_are_inclusive(ct):
    ct.create("main")
    ct("PutEventSelectors", TrailName="main", EventSelectors=[{"ReadWriteType": "All"}] * 5)
    ct("PutEventSelectors", TrailName="main", EventSelectors=[{"DataResources": [
        {"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::bucket{i:03d}/" for i in range(250)]}]}])
    ct("PutEventSelectors", TrailName="main", AdvancedEventSelectors=[{"FieldSelectors": [
        {"Field": "eventCategory", "Equals": ["Data"]},
        {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
        {"Field": "resources.ARN", "StartsWith": [f"arn:aws:s3:::b{i}/" for i in range(498)]}]}])


# --- model violations become CloudTrail's own errors ------------------------------------------


def violation_code(provider, operation, params):
    violations = validate.find_violations(MODEL.operation_model(operation), params)
    assert violations
    mapped = provider.violation_error(operation, violations)
    return mapped.code if mapped else None


def test_model_violations_map_to_cloudtrail_errors(ct):
    p = ct.provider
    many = [{"Key": f"k{i}"} for i in range(201)]
    assert violation_code(p, "CreateTrail", {"Name": "x", "S3BucketName": "b", "TagsList": many}) == \
        "TagsLimitExceededException"
    assert violation_code(p, "CreateTrail", {"Name": "x", "S3BucketName": "b",
                                             "TagsList": [{"Key": ""}]}) == "InvalidTagParameterException"
    assert violation_code(p, "AddTags", {"ResourceId": "r", "TagsList": [{"Key": "k", "Value": ""}]}) == \
        "InvalidTagParameterException"
    assert violation_code(p, "RemoveTags", {"ResourceId": "r", "TagsList": many}) == \
        "InvalidTagParameterException"
    assert violation_code(p, "PutEventSelectors", {"TrailName": "t", "EventSelectors": [
        {"ReadWriteType": "Sometimes"}]}) == "InvalidEventSelectorsException"
    assert violation_code(p, "PutEventSelectors", {"TrailName": "t", "AdvancedEventSelectors": [
        {"FieldSelectors": [{"Field": "a b", "Equals": ["x"]}]}]}) == "InvalidEventSelectorsException"
    assert violation_code(p, "LookupEvents", {"MaxResults": 0}) == "InvalidMaxResultsException"


# --- tags ---------------------------------------------------------------------------------------


def test_add_list_remove_tags(ct):
    ct.create("main", TagsList=[{"Key": "a", "Value": "1"}])
    ct.create("second")
    assert ct("AddTags", ResourceId=arn("main"), TagsList=[{"Key": "a", "Value": "2"}, {"Key": "b"}]) == {}
    assert ct.last.referenced_resources == [
        {"ARN": arn("main"), "accountId": ACCOUNT, "type": "AWS::CloudTrail::Trail"}]
    out = ct("ListTags", ResourceIdList=[arn("main"), arn("second")])
    assert out == {"ResourceTagList": [
        {"ResourceId": arn("main"), "TagsList": [{"Key": "a", "Value": "2"}, {"Key": "b"}]},
        {"ResourceId": arn("second"), "TagsList": []}]}
    assert [r["ARN"] for r in ct.last.referenced_resources] == [arn("main"), arn("second")]
    ct("RemoveTags", ResourceId=arn("main"), TagsList=[{"Key": "a"}, {"Key": "absent"}])
    assert ct("ListTags", ResourceIdList=[arn("main")])["ResourceTagList"][0]["TagsList"] == [{"Key": "b"}]


def test_tag_limit_counts_existing_tags(ct):
    ct.create("main", TagsList=[{"Key": f"k{i}", "Value": "v"} for i in range(49)])
    ct("AddTags", ResourceId=arn("main"), TagsList=[{"Key": "k0", "Value": "new"}, {"Key": "k49"}])
    error = ct.fail("AddTags", ResourceId=arn("main"), TagsList=[{"Key": "k50"}])
    assert error.code == "TagsLimitExceededException"
    assert len(ct("ListTags", ResourceIdList=[arn("main")])["ResourceTagList"][0]["TagsList"]) == 50


def test_tag_errors(ct, west):
    ct.create("main", IsMultiRegionTrail=True)
    error = west.fail("ListTags", ResourceIdList=[arn("main")])  # a shadow's ARN elsewhere
    assert (error.code, error.message) == (
        "CloudTrailARNInvalidException",
        "Region in ARN is wrong, you can only access resources in region us-west-2.")
    assert west.fail("AddTags", ResourceId=arn("main"), TagsList=[{"Key": "k"}]).code == \
        "CloudTrailARNInvalidException"
    assert ct.fail("AddTags", ResourceId="main", TagsList=[{"Key": "k"}]).code == \
        "CloudTrailARNInvalidException"
    assert ct.fail("AddTags", ResourceId=arn("nope"), TagsList=[{"Key": "k"}]).code == \
        "ResourceNotFoundException"
    assert ct.fail("ListTags", ResourceIdList=[arn("main"), arn("nope")]).code == "ResourceNotFoundException"
    assert ct.fail("AddTags", ResourceId=arn("main"), TagsList=[{"Key": "aws:x"}]).code == \
        "InvalidTagParameterException"
    assert ct.fail("AddTags", ResourceId="arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/x",
                   TagsList=[{"Key": "k"}]).code == "EventDataStoreNotFoundException"
    assert ct.fail("AddTags", ResourceId="arn:aws:s3:us-east-1:111122223333:bucket",
                   TagsList=[{"Key": "k"}]).code == "ResourceTypeNotSupportedException"
    assert ct.fail("ListTags", ResourceIdList=[arn("main")], NextToken="x").code == "InvalidTokenException"
    too_many = ct.fail("ListTags", ResourceIdList=[arn("main")] * 21)
    assert too_many.code == "InvalidParameterException" and too_many.status == 400
    assert "at most 20 ARNs; 21 were given" in too_many.message
    assert len(ct("ListTags", ResourceIdList=[arn("main")] * 20)["ResourceTagList"]) == 20
    assert ct("ListTags", ResourceIdList=[arn("main")])["ResourceTagList"][0]["TagsList"] == []


def test_another_accounts_trail_cannot_be_tagged(ct):
    ct.elsewhere(account=OTHER).create("theirs")
    assert ct.fail("AddTags", ResourceId=arn("theirs", EAST, OTHER), TagsList=[{"Key": "k"}]).code == \
        "ResourceNotFoundException"


# --- organization trails seen from a member account --------------------------------------------


def test_member_account_sees_the_organization_trail_read_only(ct, conn):
    make_management(conn, OTHER)
    management = ct.elsewhere(account=OTHER)
    management.create("org", IsOrganizationTrail=True, IsMultiRegionTrail=True)
    management("StartLogging", Name="org")
    ct.create("mine")
    org_arn = arn("org", EAST, OTHER)
    assert ct.describe() == ["mine", "org"]
    assert ct.describe(includeShadowTrails=False) == ["mine"]
    assert ct.elsewhere(region=WEST).describe() == ["org"]
    assert ct.trail(org_arn)["IsOrganizationTrail"] is True
    assert ct.last.referenced_resources == [
        {"ARN": org_arn, "accountId": OTHER, "type": "AWS::CloudTrail::Trail"}]
    assert ct.status(org_arn)["IsLogging"] is True
    assert ct.fail("GetTrail", Name="org").code == "TrailNotFoundException"
    assert ct.fail("StopLogging", Name=org_arn).code == "NotOrganizationMasterAccountException"
    assert ct.fail("DeleteTrail", Name=org_arn).code == "NotOrganizationMasterAccountException"
    assert management.status("org")["IsLogging"] is True
    assert [t["Name"] for t in ct("ListTrails")["Trails"]] == ["mine"]


def test_a_plain_trail_of_the_management_account_stays_private(ct, conn):
    make_management(conn, OTHER)
    ct.elsewhere(account=OTHER).create("private")
    assert ct.describe() == []
    assert ct.fail("GetTrail", Name=arn("private", EAST, OTHER)).code == "TrailNotFoundException"


# --- ListPublicKeys -------------------------------------------------------------------------------


def test_list_public_keys(ct):
    start, end = T0 - timedelta(hours=3), T0 - timedelta(hours=1)
    out = ct("ListPublicKeys", StartTime=start, EndTime=end)
    key = ct.keys.keys[0]
    assert out == {"PublicKeyList": [{
        "Value": key.public_der, "ValidityStartTime": key.valid_from,
        "ValidityEndTime": key.valid_to, "Fingerprint": key.fingerprint}]}
    assert ct.keys.calls == [(ACCOUNT, EAST, start, end, T0)]
    wire = serializer.to_wire(MODEL.operation_model("ListPublicKeys"), out)
    assert wire["PublicKeyList"][0]["Value"] == base64.b64encode(key.public_der).decode()  # once
    assert ct.last.referenced_resources == []


def test_list_public_keys_defaults_to_now(ct):
    ct("ListPublicKeys")
    assert ct.keys.calls == [(ACCOUNT, EAST, T0, T0, T0)]
    ct("ListPublicKeys", StartTime=T0 - timedelta(days=1))
    assert ct.keys.calls[-1][2:4] == (T0 - timedelta(days=1), T0)


def test_list_public_keys_errors(ct):
    error = ct.fail("ListPublicKeys", StartTime=T0, EndTime=T0 - timedelta(seconds=1))
    assert error.code == "InvalidTimeRangeException"
    assert ct.fail("ListPublicKeys", NextToken="x").code == "InvalidTokenException"
    assert ct.keys.calls == []


def test_list_public_keys_without_signing_keys(conn):
    harness = TrailHarness(conn, provider=CloudTrailProvider())
    assert harness("ListPublicKeys") == {"PublicKeyList": []}


def test_default_provider_accepts_any_bucket(conn):
    harness = TrailHarness(conn, provider=CloudTrailProvider())
    assert harness.create("main", S3BucketName="whatever-bucket")["S3BucketName"] == "whatever-bucket"


# --- robustness: what the gateway would hand over never becomes a 500 ----------------------------


def test_sample_inputs_only_ever_raise_modelled_errors(ct):
    from tests.samples import sample_value

    ct.create("main")
    for operation in sorted(set(ct.handlers) - {"LookupEvents"}):
        op = MODEL.operation_model(operation)
        for params in ({}, sample_value(op.input_shape)):
            violations = validate.find_violations(op, params)
            if violations:
                continue  # the gateway answers these before any handler runs
            call = Call(account_id=ACCOUNT, region=EAST, now=T0, request_id="r", resources=ct.repo,
                        operation=operation)
            ct.conn.execute("BEGIN IMMEDIATE")
            try:
                output = ct.handlers[operation](call, params)
                serializer.to_wire(op, output)
            except ServiceError as error:
                modelled = {shape.name for shape in op.error_shapes}
                assert error.code in modelled | {"InvalidNextTokenException"}, (operation, error.code)
            finally:
                ct.conn.execute("ROLLBACK")
