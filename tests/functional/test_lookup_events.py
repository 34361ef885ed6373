"""LookupEvents with CloudTrail's rules: attributes, time range, paging, tokens, regions."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from searchtrail.store.lookupkeys import lookup_key
from tests.functional.trails import wait_for


def error_code(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as error:
        call()
    return error.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def seeded(server):  # type: ignore[no-untyped-def]
    """Twelve ListCollections calls in eu-west-3 only, so paging and region isolation show."""
    aoss = server.client("opensearchserverless", region="eu-west-3")
    ids = [aoss.list_collections()["ResponseMetadata"]["RequestId"] for _ in range(12)]
    return ids


def test_pages_newest_first_with_tokens(server, seeded) -> None:
    cloudtrail = server.client("cloudtrail", region="eu-west-3")
    attribute = [{"AttributeKey": "EventName", "AttributeValue": "ListCollections"}]
    seen, token, pages = [], None, 0
    while pages < 10:
        kwargs = {"LookupAttributes": attribute, "MaxResults": 5}
        if token:
            kwargs["NextToken"] = token
        page = cloudtrail.lookup_events(**kwargs)
        pages += 1
        assert len(page["Events"]) <= 5
        seen.extend(json.loads(e["CloudTrailEvent"])["requestID"] for e in page["Events"])
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 3
    assert seen == list(reversed(seeded))


def test_each_region_has_its_own_history(server, seeded) -> None:
    other = server.client("cloudtrail", region="ap-south-2").lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "ListCollections"}])
    assert other["Events"] == []


def test_every_lookup_attribute_finds_the_event(server, seeded) -> None:
    cloudtrail = server.client("cloudtrail", region="eu-west-3")
    newest = cloudtrail.lookup_events(MaxResults=1)["Events"][0]
    record = json.loads(newest["CloudTrailEvent"])
    for key, value in [("EventId", record["eventID"]), ("EventName", record["eventName"]),
                       ("ReadOnly", "true"), ("Username", "root"),
                       ("EventSource", record["eventSource"]),
                       ("AccessKeyId", record["userIdentity"]["accessKeyId"])]:
        found = cloudtrail.lookup_events(
            LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}], MaxResults=50)
        assert record["eventID"] in {e["EventId"] for e in found["Events"]}, key
    assert newest["Username"] == "root"
    assert newest["EventTime"].tzinfo is not None


def test_time_range_is_inclusive_and_checked(server, seeded) -> None:
    cloudtrail = server.client("cloudtrail", region="eu-west-3")
    now = datetime.now(timezone.utc)
    recent = cloudtrail.lookup_events(StartTime=now - timedelta(minutes=10), EndTime=now + timedelta(seconds=5))
    assert recent["Events"]
    old = cloudtrail.lookup_events(StartTime=now - timedelta(days=3), EndTime=now - timedelta(days=2))
    assert old["Events"] == []
    assert error_code(lambda: cloudtrail.lookup_events(
        StartTime=now, EndTime=now - timedelta(hours=1))) == "InvalidTimeRangeException"
    # events carry whole seconds: a start half a second after one's second leaves it out
    newest = cloudtrail.lookup_events(MaxResults=1)["Events"][0]
    at = newest["EventTime"]
    around = {"EndTime": at + timedelta(seconds=1)}
    # the start asked for below must not be in the future
    wait_for(lambda: datetime.now(timezone.utc) > at + timedelta(milliseconds=600), seconds=5,
             what="the newest event's second to be half over", step=0.1)
    assert newest["EventId"] in {e["EventId"] for e in cloudtrail.lookup_events(
        StartTime=at, **around)["Events"]}
    assert newest["EventId"] not in {e["EventId"] for e in cloudtrail.lookup_events(
        StartTime=at + timedelta(milliseconds=500), **around)["Events"]}


def test_modelled_errors(server, seeded) -> None:
    cloudtrail = server.client("cloudtrail", region="eu-west-3")
    unchecked = server.client("cloudtrail", region="eu-west-3", validate=False)
    two = [{"AttributeKey": "EventName", "AttributeValue": "A"},
           {"AttributeKey": "ReadOnly", "AttributeValue": "true"}]
    assert error_code(lambda: cloudtrail.lookup_events(LookupAttributes=two)) == \
        "InvalidLookupAttributesException"
    assert error_code(lambda: unchecked.lookup_events(LookupAttributes=[
        {"AttributeKey": "Colour", "AttributeValue": "red"}])) == "InvalidLookupAttributesException"
    assert error_code(lambda: unchecked.lookup_events(MaxResults=51)) == "InvalidMaxResultsException"
    assert error_code(lambda: unchecked.lookup_events(MaxResults=0)) == "InvalidMaxResultsException"
    assert error_code(lambda: cloudtrail.lookup_events(NextToken="garbage")) == \
        "InvalidNextTokenException"
    # '_', ' ', ',' and newlines count twice towards a value's 2,000 characters
    for value in ("_" * 1001, " " * 1001, "a" * 1999 + ","):
        assert error_code(lambda v=value: cloudtrail.lookup_events(LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": v}])) == \
            "InvalidLookupAttributesException"
    assert cloudtrail.lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "_" * 1000}])["Events"] == []
    # Insights lookups take EventId, EventName and EventSource only, and no token of another kind
    for key in ("ReadOnly", "Username", "ResourceType"):
        assert error_code(lambda k=key: cloudtrail.lookup_events(
            EventCategory="insight", LookupAttributes=[
                {"AttributeKey": k, "AttributeValue": "x"}])) == "InvalidLookupAttributesException"
    assert cloudtrail.lookup_events(EventCategory="insight", LookupAttributes=[
        {"AttributeKey": "EventSource", "AttributeValue": "aoss.amazonaws.com"}])["Events"] == []
    token = cloudtrail.lookup_events(MaxResults=1)["NextToken"]
    for other in ("garbage", token):
        assert error_code(lambda t=other: cloudtrail.lookup_events(
            EventCategory="insight", NextToken=t)) == "InvalidNextTokenException"


def test_tokens_cannot_be_tampered_with_or_reused_with_other_filters(server, seeded) -> None:
    cloudtrail = server.client("cloudtrail", region="eu-west-3")
    first = cloudtrail.lookup_events(MaxResults=2, LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "ListCollections"}])
    token = first["NextToken"]
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[-3] ^= 1
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    assert error_code(lambda: cloudtrail.lookup_events(MaxResults=2, NextToken=forged, LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "ListCollections"}])) == "InvalidNextTokenException"
    assert error_code(lambda: cloudtrail.lookup_events(MaxResults=2, NextToken=token, LookupAttributes=[
        {"AttributeKey": "ReadOnly", "AttributeValue": "true"}])) == "InvalidNextTokenException"
    again = cloudtrail.lookup_events(MaxResults=2, NextToken=token, LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "ListCollections"}])
    assert len(again["Events"]) == 2


def test_lookups_are_recorded_too(server, seeded) -> None:
    cloudtrail = server.client("cloudtrail", region="eu-west-3")
    response = cloudtrail.lookup_events(MaxResults=1)
    found = cloudtrail.lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "LookupEvents"}])["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in found]
    mine = [r for r in records if r["requestID"] == response["ResponseMetadata"]["RequestId"]]
    assert len(mine) == 1
    assert mine[0]["eventSource"] == "cloudtrail.amazonaws.com"
    assert mine[0]["readOnly"] is True
    assert mine[0]["requestParameters"] == {"maxResults": 1}  # lower camel, as CloudTrail's own
    # a call the model refuses is recorded with the same keys, its values as sent
    unchecked = server.client("cloudtrail", region="eu-west-3", validate=False)
    refused = {"MaxResults": 99, "LookupAttributes": [
        {"AttributeKey": "Colour", "AttributeValue": "red"}]}
    with pytest.raises(ClientError) as error:
        unchecked.lookup_events(**refused)
    request_id = error.value.response["ResponseMetadata"]["RequestId"]
    found = cloudtrail.lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "LookupEvents"}])["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in found]
    assert [r["requestParameters"] for r in records if r["requestID"] == request_id] == [
        {"maxResults": 99, "lookupAttributes": [{"attributeKey": "Colour",
                                                 "attributeValue": "red"}]}]


def test_an_event_id_needs_no_lookup_row_and_a_made_up_one_finds_nothing(server,
                                                                         seeded) -> None:
    import uuid

    cloudtrail = server.client("cloudtrail", region="eu-west-3")
    record = json.loads(cloudtrail.lookup_events(MaxResults=1)["Events"][0]["CloudTrailEvent"])
    conn = server.store()
    try:
        indexed = {name: conn.execute(
            "SELECT count(*) FROM event_lookup WHERE value_key = ?",
            (lookup_key(record["recipientAccountId"], "eu-west-3", name, value),)).fetchone()[0]
            for name, value in (("EventId", record["eventID"]),
                                ("EventName", record["eventName"]))}
    finally:
        conn.close()
    assert indexed["EventId"] == 0  # the id names its row (audit/eventid.py)
    assert indexed["EventName"] >= 1  # while its other values have their rows
    found = cloudtrail.lookup_events(LookupAttributes=[
        {"AttributeKey": "EventId", "AttributeValue": record["eventID"]}])["Events"]
    assert [e["EventId"] for e in found] == [record["eventID"]]
    tampered = record["eventID"][:-1] + ("1" if record["eventID"].endswith("0") else "0")
    for made_up in (str(uuid.uuid4()), tampered, "not-a-uuid"):
        assert cloudtrail.lookup_events(LookupAttributes=[
            {"AttributeKey": "EventId", "AttributeValue": made_up}])["Events"] == [], made_up
