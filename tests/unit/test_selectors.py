"""Trail selection: region/account reach, basic and advanced event selectors, validation."""

from __future__ import annotations


import pytest

from searchtrail.audit.selectors import (
    DEFAULT_EVENT_SELECTORS,
    compile_trail,
    trail_covers,
    trail_wants,
    validate_advanced_event_selectors,
    validate_event_selectors,
)
from searchtrail.protocol.errors import ServiceError

ACCOUNT = "111122223333"
OTHER = "444455556666"
COLLECTION = "arn:aws:aoss:us-east-1:111122223333:collection/abcdefghij0123456789"
ROLE_SESSION = "arn:aws:sts::111122223333:assumed-role/Admin/alice"


def trail(home="us-east-1", account=ACCOUNT, multi=False, global_events=True, org=False, **extra):
    doc = {"Name": "t", "HomeRegion": home, "TrailARN": f"arn:aws:cloudtrail:{home}:{account}:trail/t",
           "IsMultiRegionTrail": multi, "IncludeGlobalServiceEvents": global_events,
           "IsOrganizationTrail": org}
    doc.update(extra)
    return doc


def management(name="CreateCollection", read_only=False, source="aoss.amazonaws.com", **extra):
    record = {"eventSource": source, "eventName": name, "readOnly": read_only,
              "eventType": "AwsApiCall", "managementEvent": True, "eventCategory": "Management",
              "userIdentity": {"type": "AssumedRole", "arn": ROLE_SESSION},
              "resources": [{"ARN": COLLECTION, "accountId": ACCOUNT, "type": "AWS::AOSS::Collection"}]}
    record.update(extra)
    return record


def data(name="Search", read_only=True, resources=None, source="aoss.amazonaws.com", **extra):
    record = {"eventSource": source, "eventName": name, "readOnly": read_only,
              "eventType": "AwsApiCall", "managementEvent": False, "eventCategory": "Data",
              "userIdentity": {"type": "AssumedRole", "arn": ROLE_SESSION},
              "resources": resources if resources is not None else
              [{"type": "AWS::AOSS::Collection", "ARN": COLLECTION}]}
    record.update(extra)
    return record


def s3_object(key, read_only=False, bucket="bucket"):
    return data(name="PutObject", read_only=read_only, source="s3.amazonaws.com", resources=[
        {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
        {"type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}])


def field(name, **operators):
    return {"Field": name, **operators}


COLLECTIONS = field("resources.type", Equals=["AWS::AOSS::Collection"])


def advanced(*field_selectors, name=None):
    selector = {"FieldSelectors": list(field_selectors)}
    if name:
        selector["Name"] = name
    return selector


# --- region and account reach --------------------------------------------------------------------


def test_single_region_trail_covers_its_home_region_and_account_only():
    t = trail("us-west-2")
    assert trail_covers(t, ACCOUNT, "us-west-2")
    assert not trail_covers(t, ACCOUNT, "us-east-1")
    assert not trail_covers(t, OTHER, "us-west-2")


def test_multi_region_trail_covers_every_region_of_its_account():
    t = trail("us-west-2", multi=True)
    for region in ("us-west-2", "us-east-1", "eu-central-1", "ap-southeast-2"):
        assert trail_covers(t, ACCOUNT, region)
    assert not trail_covers(t, OTHER, "us-east-1")


def test_organization_trail_covers_other_accounts():
    assert trail_covers(trail(org=True, multi=True), OTHER, "eu-west-1")
    assert trail_covers(trail(org=True), OTHER, "us-east-1")
    assert not trail_covers(trail(org=True), OTHER, "eu-west-1")  # single-Region org trail


@pytest.mark.parametrize("t, expected", [
    (trail("us-east-1"), True),
    (trail("us-east-1", global_events=False), False),
    (trail("us-west-2"), False),
    (trail("us-west-2", multi=True), True),
    (trail("cn-north-1"), True),
    (trail("cn-northwest-1"), False),
    (trail("us-gov-west-1"), True),
])
def test_global_service_events(t, expected):
    assert trail_covers(t, ACCOUNT, "us-east-1", global_service=True) is expected


def test_global_service_events_respect_the_account():
    assert not trail_covers(trail("us-east-1"), OTHER, "us-east-1", global_service=True)


# --- default selectors ---------------------------------------------------------------------------


@pytest.mark.parametrize("t", [trail(), trail(EventSelectors=DEFAULT_EVENT_SELECTORS)])
def test_default_selects_every_management_event_and_nothing_else(t):
    assert trail_wants(t, management(read_only=False))
    assert trail_wants(t, management(read_only=True))
    assert trail_wants(t, management(source="kms.amazonaws.com"))
    assert not trail_wants(t, data())
    assert not trail_wants(t, management(eventCategory="NetworkActivity", managementEvent=False))
    assert not trail_wants(t, management(eventCategory="Insight"))


def test_record_without_event_category_falls_back_to_management_event():
    record = management()
    del record["eventCategory"]
    assert trail_wants(trail(), record)
    record["managementEvent"] = False
    assert not trail_wants(trail(), record)


# --- basic selectors -----------------------------------------------------------------------------


def basic(*selectors):
    return trail(EventSelectors=list(selectors))


def test_read_write_type():
    reads = basic({"ReadWriteType": "ReadOnly"})
    writes = basic({"ReadWriteType": "WriteOnly"})
    assert trail_wants(reads, management(read_only=True))
    assert not trail_wants(reads, management(read_only=False))
    assert trail_wants(writes, management(read_only=False))
    assert not trail_wants(writes, management(read_only=True))


def test_include_management_events_false_drops_management_events():
    t = basic({"IncludeManagementEvents": False})
    assert not trail_wants(t, management())
    assert not trail_wants(t, management(read_only=True))


def test_excluded_management_event_sources():
    t = basic({"ExcludeManagementEventSources": ["kms.amazonaws.com"]})
    assert not trail_wants(t, management(source="kms.amazonaws.com", name="Decrypt"))
    assert trail_wants(t, management(source="aoss.amazonaws.com"))


def test_selectors_are_ored():
    t = basic({"ReadWriteType": "ReadOnly"},
              {"ReadWriteType": "WriteOnly", "ExcludeManagementEventSources": ["kms.amazonaws.com"]})
    assert trail_wants(t, management(read_only=True, source="kms.amazonaws.com"))
    assert not trail_wants(t, management(read_only=False, source="kms.amazonaws.com"))
    assert trail_wants(t, management(read_only=False))


def test_s3_data_resources_by_bucket_and_prefix():
    t = basic({"IncludeManagementEvents": False, "DataResources": [
        {"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::bucket/logs/", "arn:aws:s3:::whole"]}]})
    assert trail_wants(t, s3_object("logs/a.txt"))
    assert not trail_wants(t, s3_object("other/a.txt"))
    assert trail_wants(t, s3_object("any/key", bucket="whole"))
    assert not trail_wants(t, s3_object("any/key", bucket="wholesale"))  # a bucket, not a prefix
    assert not trail_wants(t, management())


@pytest.mark.parametrize("everything", ["arn:aws:s3", "arn:aws:s3:::"])
def test_all_s3_objects(everything):
    t = basic({"DataResources": [{"Type": "AWS::S3::Object", "Values": [everything]}]})
    assert trail_wants(t, s3_object("x", bucket="any-bucket"))
    assert not trail_wants(t, data())  # aoss data events are not S3 objects


def test_data_resources_respect_read_write_type():
    t = basic({"ReadWriteType": "WriteOnly",
               "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]})
    assert trail_wants(t, s3_object("k", read_only=False))
    assert not trail_wants(t, s3_object("k", read_only=True))


def test_lambda_functions_exact_or_qualified():
    fn = "arn:aws:lambda:us-east-1:111122223333:function:hello"
    t = basic({"DataResources": [{"Type": "AWS::Lambda::Function", "Values": [fn]}]})

    def invoke(arn):
        return data(name="Invoke", source="lambda.amazonaws.com",
                    resources=[{"type": "AWS::Lambda::Function", "ARN": arn}])

    assert trail_wants(t, invoke(fn))
    assert trail_wants(t, invoke(fn + ":3"))
    assert not trail_wants(t, invoke(fn + "-world"))


# --- advanced selectors --------------------------------------------------------------------------


def adv(*selectors):
    return trail(AdvancedEventSelectors=list(selectors))


AOSS_DATA = advanced(field("eventCategory", Equals=["Data"]),
                     field("resources.type", Equals=["AWS::AOSS::Collection"]))


def test_aoss_data_events_selector():
    t = adv(AOSS_DATA)
    assert trail_wants(t, data())
    assert not trail_wants(t, management())
    assert not trail_wants(t, s3_object("k"))


def test_advanced_selectors_are_ored_and_fields_anded():
    t = adv(AOSS_DATA, advanced(field("eventCategory", Equals=["Management"]),
                                field("readOnly", Equals=["false"])))
    assert trail_wants(t, data())
    assert trail_wants(t, management(read_only=False))
    assert not trail_wants(t, management(read_only=True))


@pytest.mark.parametrize("operator, values, matching, not_matching", [
    ("Equals", ["Search", "Get"], ["Search", "Get"], ["Searches", "search"]),
    ("StartsWith", ["Se"], ["Search", "Send"], ["Get", "ASearch"]),
    ("EndsWith", ["rch"], ["Search"], ["Searches"]),
    ("NotEquals", ["Search", "Get"], ["Put", "Searches"], ["Search", "Get"]),
    ("NotStartsWith", ["Se", "Ge"], ["Put"], ["Search", "GetDocument"]),
    ("NotEndsWith", ["rch"], ["Searches"], ["Search"]),
])
def test_operators_on_event_name(operator, values, matching, not_matching):
    t = adv(advanced(field("eventCategory", Equals=["Data"]),
                     field("resources.type", Equals=["AWS::AOSS::Collection"]),
                     field("eventName", **{operator: values})))
    for name in matching:
        assert trail_wants(t, data(name=name)), (operator, name)
    for name in not_matching:
        assert not trail_wants(t, data(name=name)), (operator, name)


def test_several_operators_in_one_field_selector_are_anded():
    t = adv(advanced(field("eventCategory", Equals=["Data"]), COLLECTIONS,
                     field("eventName", StartsWith=["Create"], NotEndsWith=["Policy"])))
    assert trail_wants(t, data(name="CreateIndex"))
    assert not trail_wants(t, data(name="CreateIndexPolicy"))
    assert not trail_wants(t, data(name="DeleteIndex"))


def test_user_identity_arn_and_event_source():
    t = adv(advanced(field("eventCategory", Equals=["Data"]), COLLECTIONS,
                     field("userIdentity.arn", StartsWith=["arn:aws:sts::111122223333:assumed-role/Admin/"]),
                     field("eventSource", Equals=["aoss.amazonaws.com"])))
    assert trail_wants(t, data())
    assert not trail_wants(t, data(userIdentity={"type": "IAMUser",
                                                 "arn": "arn:aws:iam::111122223333:user/bob"}))
    assert not trail_wants(t, data(userIdentity={"type": "AWSService"}))  # no arn
    assert not trail_wants(t, data(source="cloudtrail.amazonaws.com"))


def test_missing_fields_fail_positive_and_pass_negative_operators():
    network = {"eventCategory": "NetworkActivity", "managementEvent": False}
    equals = adv(advanced(field("eventCategory", Equals=["NetworkActivity"]),
                          field("vpcEndpointId", Equals=["vpce-1"])))
    not_equals = adv(advanced(field("eventCategory", Equals=["NetworkActivity"]),
                              field("vpcEndpointId", NotEquals=["vpce-1"])))
    assert not trail_wants(equals, data(**network))
    assert trail_wants(not_equals, data(**network))
    assert trail_wants(equals, data(vpcEndpointId="vpce-1", **network))
    assert not trail_wants(not_equals, data(vpcEndpointId="vpce-1", **network))


def test_session_credential_from_console_is_false_when_absent():
    console = adv(advanced(field("eventCategory", Equals=["Data"]), COLLECTIONS,
                           field("sessionCredentialFromConsole", Equals=["true"])))
    api = adv(advanced(field("eventCategory", Equals=["Data"]), COLLECTIONS,
                       field("sessionCredentialFromConsole", Equals=["false"])))
    assert not trail_wants(console, data())
    assert trail_wants(api, data())
    assert trail_wants(console, data(sessionCredentialFromConsole="true"))
    assert not trail_wants(api, data(sessionCredentialFromConsole="true"))


def test_event_type_and_read_only():
    t = adv(advanced(field("eventCategory", Equals=["Data"]), COLLECTIONS,
                     field("eventType", NotEquals=["AwsServiceEvent"]),
                     field("readOnly", Equals=["true"])))
    assert trail_wants(t, data(read_only=True))
    assert not trail_wants(t, data(read_only=True, eventType="AwsServiceEvent"))
    assert not trail_wants(t, data(read_only=False))


def test_resource_conditions_hold_for_the_same_resource():
    t = adv(advanced(field("eventCategory", Equals=["Data"]),
                     field("resources.type", Equals=["AWS::S3::Object"]),
                     field("resources.ARN", StartsWith=["arn:aws:s3:::bucket/logs/"])))
    assert trail_wants(t, s3_object("logs/x"))
    assert not trail_wants(t, s3_object("data/x"))
    mixed = data(resources=[{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::bucket/data/x"},
                            {"type": "AWS::AOSS::Collection", "ARN": "arn:aws:s3:::bucket/logs/"}])
    assert not trail_wants(t, mixed)
    assert not trail_wants(t, data(resources=[]))


def test_resource_arn_negative_operator():
    t = adv(advanced(field("eventCategory", Equals=["Data"]),
                     field("resources.type", Equals=["AWS::AOSS::Collection"]),
                     field("resources.ARN", NotEndsWith=["/abcdefghij0123456789"])))
    assert not trail_wants(t, data())
    assert trail_wants(t, data(resources=[{"type": "AWS::AOSS::Collection",
                                           "ARN": COLLECTION.replace("0123456789", "zzzzzzzzzz")}]))


def test_network_activity_only_through_advanced_selectors():
    record = data(eventCategory="NetworkActivity", eventType="AwsVpceEvent",
                  errorCode="VpceAccessDenied", managementEvent=False)
    t = adv(advanced(field("eventCategory", Equals=["NetworkActivity"]),
                     field("eventSource", Equals=["aoss.amazonaws.com"]),
                     field("errorCode", Equals=["VpceAccessDenied"])))
    assert trail_wants(t, record)
    assert not trail_wants(trail(), record)
    assert not trail_wants(t, data(eventCategory="NetworkActivity"))  # no error code


def test_empty_advanced_list_selects_nothing():
    assert not trail_wants(adv(), management())


def test_compiled_matchers_are_cached_by_selector_content():
    first = compile_trail(adv(AOSS_DATA))
    again = compile_trail(trail("eu-west-1", AdvancedEventSelectors=[AOSS_DATA]))
    assert first is again
    assert compile_trail(trail()) is compile_trail(trail(EventSelectors=None)) is not first
    assert compile_trail(basic({"ReadWriteType": "ReadOnly"})) is not compile_trail(trail())


def test_advanced_selectors_win_over_basic_ones_if_both_are_stored():
    t = trail(EventSelectors=DEFAULT_EVENT_SELECTORS, AdvancedEventSelectors=[AOSS_DATA])
    assert trail_wants(t, data()) and not trail_wants(t, management())


def test_a_compiled_matcher_decides_many_records_alike():
    matcher = compile_trail(adv(AOSS_DATA, advanced(
        field("eventCategory", Equals=["Management"]), field("readOnly", Equals=["false"]),
        field("eventSource", NotEquals=["kms.amazonaws.com"]))))
    records = [data(), management(), management(read_only=True), s3_object("k")] * 25_000
    hits = sum(1 for record in records if matcher(record))
    assert hits == 50_000  # speed is measured by the benchmarks, not asserted here


# --- validation ------------------------------------------------------------------------------------


def invalid(function, selectors) -> str:
    with pytest.raises(ServiceError) as info:
        function(selectors)
    assert info.value.code == "InvalidEventSelectorsException"
    assert info.value.status == 400
    return info.value.message


def test_basic_validation_fills_defaults():
    assert validate_event_selectors([{}]) == DEFAULT_EVENT_SELECTORS
    assert validate_event_selectors([{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": False,
                                      "DataResources": [{"Type": "AWS::DynamoDB::Table",
                                                         "Values": ["arn:aws:dynamodb"]}],
                                      "ExcludeManagementEventSources": ["rdsdata.amazonaws.com"]}]) == [
        {"ReadWriteType": "ReadOnly", "IncludeManagementEvents": False,
         "DataResources": [{"Type": "AWS::DynamoDB::Table", "Values": ["arn:aws:dynamodb"]}],
         "ExcludeManagementEventSources": ["rdsdata.amazonaws.com"]}]


@pytest.mark.parametrize("value", [
    "arn:aws:s3:::bucket/", "arn:aws:s3:::bucket/prefix", "arn:aws:s3:::bucket", "arn:aws:s3",
    "arn:aws:s3:::", "arn:aws-cn:s3:::bucket/",
])
def test_valid_s3_values(value):
    validate_event_selectors([{"DataResources": [{"Type": "AWS::S3::Object", "Values": [value]}]}])


@pytest.mark.parametrize("resource_type, value", [
    ("AWS::S3::Object", "arn:aws:s3:::*"),
    ("AWS::S3::Object", "bucket/"),
    ("AWS::S3::Object", "arn:aws:s3:::Bad_Bucket/"),
    ("AWS::Lambda::Function", "arn:aws:lambda:*"),
    ("AWS::Lambda::Function", "arn:aws:lambda:us-east-1:111122223333:layer:x"),
    ("AWS::DynamoDB::Table", "arn:aws:dynamodb:us-east-1:111122223333:stream/x"),
])
def test_invalid_data_resource_values(resource_type, value):
    message = invalid(validate_event_selectors,
                      [{"DataResources": [{"Type": resource_type, "Values": [value]}]}])
    assert message == f"Value {value} for DataResources.Values is invalid."


def test_basic_validation_errors():
    assert "at most 5" in invalid(validate_event_selectors, [{}] * 6)
    assert "At least one" in invalid(validate_event_selectors, [])
    assert "ReadWriteType" in invalid(validate_event_selectors, [{"ReadWriteType": "Read"}])
    assert "DataResources.Type" in invalid(validate_event_selectors, [
        {"DataResources": [{"Type": "AWS::AOSS::Collection", "Values": ["arn:aws:aoss"]}]}])
    assert "at least one value" in invalid(validate_event_selectors, [
        {"DataResources": [{"Type": "AWS::S3::Object", "Values": []}]}])
    assert "ExcludeManagementEventSources" in invalid(validate_event_selectors, [
        {"ExcludeManagementEventSources": ["iam.amazonaws.com"]}])
    many = [{"DataResources": [{"Type": "AWS::S3::Object",
                                "Values": [f"arn:aws:s3:::bucket{i:03d}/" for i in range(51)]}]}] * 5
    assert "at most 250 data resources" in invalid(validate_event_selectors, many)


def test_advanced_validation_keeps_what_was_given():
    given = [advanced(field("eventCategory", Equals=["Data"]),
                      field("resources.type", Equals=["AWS::AOSS::Collection"]),
                      field("eventName", NotEquals=["Search"]), name="no searches")]
    assert validate_advanced_event_selectors(given) == given


@pytest.mark.parametrize("selectors, fragment", [
    ([], "At least one"),
    ([advanced()], "at least one field selector"),
    ([advanced(field("eventTime", Equals=["x"]))], "Field eventTime"),
    ([advanced(field("eventCategory", Equals=["Data"]), COLLECTIONS, field("eventName"))],
     "at least one operator"),
    ([advanced(field("eventCategory", StartsWith=["Man"]))], "only the Equals operator"),
    ([advanced(field("eventCategory", Equals=["Data"]), field("resources.type", NotEquals=["x"]))],
     "only the Equals operator"),
    ([advanced(field("eventCategory", Equals=["Management"]), field("readOnly", Equals=["yes"]))],
     "Value yes for field readOnly"),
    ([advanced(field("eventCategory", Equals=["Insight"]))], "Value Insight for field eventCategory"),
    ([advanced(field("eventName", Equals=["Search"]))], "must include the field eventCategory"),
    ([advanced(field("eventCategory", Equals=["Data"]))], "must include the field resources.type"),
    ([advanced(field("eventCategory", Equals=["Management"]),
               field("resources.ARN", StartsWith=["arn:aws:aoss"]))],
     "Field resources.ARN in the advanced event selector 1 is not valid for Management events"),
    *[([advanced(field("eventCategory", Equals=["Management"]), field(name, Equals=["x"]))],
       f"Field {name} in the advanced event selector 1 is not valid for Management events on a trail")
      for name in ("eventName", "eventType", "userIdentity.arn", "sessionCredentialFromConsole",
                   "vpcEndpointId")],
    ([advanced(field("eventCategory", Equals=["Management"]),
               field("eventSource", Equals=["aoss.amazonaws.com"]))],
     "can only exclude management events with NotEquals kms.amazonaws.com or rdsdata"),
    ([advanced(field("eventCategory", Equals=["Management"]),
               field("eventSource", NotEquals=["iam.amazonaws.com"]))], "can only exclude"),
    ([advanced(field("eventCategory", Equals=["Management", "Data"]), COLLECTIONS)],
     "Field resources.type in the advanced event selector 1 is not valid for Management events"),
    ([advanced(field("eventCategory", Equals=["NetworkActivity"]),
               field("errorCode", Equals=["VpceAccessDenied"]))],
     "must include the field eventSource with the Equals operator"),
    ([advanced(field("eventCategory", Equals=["NetworkActivity"]),
               field("eventSource", StartsWith=["aoss"]))], "eventSource with the Equals operator"),
    ([advanced(field("eventCategory", Equals=["NetworkActivity"]),
               field("eventSource", Equals=["aoss.amazonaws.com"]), field("readOnly", Equals=["true"]))],
     "Field readOnly in the advanced event selector 1 is not valid for NetworkActivity events"),
    ([advanced(field("eventCategory", Equals=["Data"]), field("resources.type", Equals=["AWS::S3::Object"]),
               field("errorCode", Equals=["VpceAccessDenied"]))],
     "Field errorCode in the advanced event selector 1 is not valid for Data events"),
    ([advanced(field("eventCategory", Equals=["NetworkActivity"]), field("eventSource", Equals=["aoss.amazonaws.com"]),
               field("errorCode", Equals=["AccessDenied"]))],
     "Value AccessDenied for field errorCode"),
    ([advanced(field("eventCategory", Equals=["Data"]), COLLECTIONS, field("eventName", Equals=["x" * 2049]))],
     "between 1 and 2048"),
    ([advanced(field("eventCategory", Equals=["Data"]), COLLECTIONS, field("eventName", Equals=[""]))],
     "between 1 and 2048"),
])
def test_advanced_validation_errors(selectors, fragment):
    assert fragment in invalid(validate_advanced_event_selectors, selectors)


def test_advanced_value_limit_counts_every_condition():
    def selector(count):
        return advanced(field("eventCategory", Equals=["Data"]), COLLECTIONS,
                        field("eventName", Equals=[f"Name{i}" for i in range(count)]))

    validate_advanced_event_selectors([selector(248), selector(248)])  # 500 values in all
    assert "at most 500 values" in invalid(validate_advanced_event_selectors,
                                           [selector(248), selector(249)])


def test_longest_advanced_value_is_accepted():
    validate_advanced_event_selectors([advanced(field("eventCategory", Equals=["Data"]), COLLECTIONS,
                                                field("eventName", Equals=["x" * 2048]))])


def test_advanced_selectors_a_trail_accepts_per_category():
    validate_advanced_event_selectors([
        advanced(field("eventCategory", Equals=["Management"]), field("readOnly", Equals=["false"]),
                 field("eventSource", NotEquals=["kms.amazonaws.com", "rdsdata.amazonaws.com"])),
        advanced(field("eventCategory", Equals=["Data"]), COLLECTIONS,
                 field("resources.ARN", StartsWith=["arn:aws:aoss:"]), field("readOnly", Equals=["true"]),
                 field("eventName", NotEquals=["Search"]), field("eventSource", Equals=["aoss.amazonaws.com"]),
                 field("eventType", Equals=["AwsApiCall"]),
                 field("sessionCredentialFromConsole", Equals=["false"]),
                 field("userIdentity.arn", StartsWith=["arn:aws:iam::"])),
        advanced(field("eventCategory", Equals=["NetworkActivity"]),
                 field("eventSource", Equals=["aoss.amazonaws.com"]), field("eventName", Equals=["Search"]),
                 field("errorCode", Equals=["VpceAccessDenied"]), field("vpcEndpointId", Equals=["vpce-1"]))])


def test_data_resource_quota_leaves_out_every_resource_of_a_type():
    specific = [{"DataResources": [{"Type": "AWS::S3::Object",
                                    "Values": [f"arn:aws:s3:::bucket{i:03d}/" for i in range(50)]}]}] * 5
    every = {"DataResources": [{"Type": "AWS::Lambda::Function", "Values": ["arn:aws:lambda"]},
                               {"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}
    validate_event_selectors(specific[:4] + [{"DataResources": specific[4]["DataResources"]
                                              + every["DataResources"]}])
