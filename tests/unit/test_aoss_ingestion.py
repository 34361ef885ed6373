"""aoss ingestion jobs and streams against the real SQLite store, with a controlled clock."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.unit.aoss_harness import ACCOUNT, T0, AossHarness

JOB_SOURCE = {"s3": {"bucket": "my-data", "keyPrefix": "2024/"}}
QUEUE = "arn:aws:sqs:us-east-1:444455556666:events"
ROLE = "arn:aws:iam::111122223333:role/ingest"
STREAM_SOURCE = {"s3": {"sqsArn": QUEUE, "buckets": [{"bucket": "my-data", "initialScan": "ENABLED"}]}}
ZERO = {"s3": {"objectsDiscovered": 0, "objectsIngested": 0, "objectsFailed": 0}}


@pytest.fixture
def aoss(conn):
    return AossHarness(conn).encrypt_all()


@pytest.fixture
def cid(aoss):
    detail = aoss.create("docs")
    aoss.advance(3)
    return detail["id"]


def at(seconds):
    """The clock after `seconds`, at the millisecond precision the resources keep."""
    moment = T0 + timedelta(seconds=seconds)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def job(aoss, cid, name="load", **params):
    return aoss("CreateIngestionJob", collectionId=cid, ingestionJobName=name, indexName="books",
                source=JOB_SOURCE, **params)["ingestionJobDetail"]


def get_job(aoss, cid, job_id):
    return aoss("GetIngestionJob", collectionId=cid, ingestionJobId=job_id)["ingestionJobDetail"]


def stream(aoss, cid, name="feed", **params):
    params.setdefault("source", STREAM_SOURCE)
    return aoss("CreateIngestionStream", collectionId=cid, ingestionStreamName=name, indexName="books",
                roleArn=ROLE, **params)["ingestionStreamDetail"]


def get_stream(aoss, cid, stream_id):
    return aoss("GetIngestionStream", collectionId=cid, ingestionStreamId=stream_id)["ingestionStreamDetail"]


# --- jobs -------------------------------------------------------------------------------


def test_job_lifecycle(aoss, cid):
    detail = job(aoss, cid, failureIndexName="books-failures", tags=[{"key": "k", "value": "v"}])
    job_id = detail["ingestionJobId"]
    assert re.fullmatch(r"[a-z0-9]{32}", job_id)
    assert detail == {
        "ingestionJobId": job_id,
        "arn": f"arn:aws:aoss:us-east-1:111122223333:collection/{cid}/ingestion-job/{job_id}",
        "collectionId": cid, "ingestionJobName": "load", "indexName": "books",
        "failureIndexName": "books-failures", "source": JOB_SOURCE, "status": "CREATING", "state": "STARTING",
        "statistics": ZERO, "revision": 1, "createdAt": at(3), "updatedAt": at(3),
    }
    assert aoss.last.referenced_resources == [{"ARN": detail["arn"], "accountId": ACCOUNT,
                                               "type": "AWS::AOSS::IngestionJob"}]
    aoss.advance(3)
    now = get_job(aoss, cid, job_id)
    assert (now["status"], now["state"], now["revision"], now["updatedAt"]) == ("ACTIVE", "SCANNING", 2, at(6))
    aoss.advance(3)
    done = get_job(aoss, cid, job_id)
    assert (done["status"], done["state"], done["revision"], done["updatedAt"]) == (
        "COMPLETED", "INGESTION_COMPLETE", 3, at(9))
    err = aoss.fail("CancelIngestionJob", collectionId=cid, ingestionJobId=job_id)
    assert (err.code, err.message) == (
        "ConflictException", f"Ingestion job {job_id} is in COMPLETED state; only CREATING or ACTIVE jobs can be cancelled")


def test_cancel_job(aoss, cid):
    job_id = job(aoss, cid)["ingestionJobId"]
    aoss.advance(4)
    out = aoss("CancelIngestionJob", collectionId=cid, ingestionJobId=job_id)
    assert out == {"ingestionJobId": job_id, "collectionId": cid, "ingestionJobName": "load", "status": "CANCELLING"}
    now = get_job(aoss, cid, job_id)
    assert (now["status"], now["state"], now["revision"]) == ("CANCELLING", "SCANNING", 3)
    assert aoss.fail("CancelIngestionJob", collectionId=cid, ingestionJobId=job_id).code == "ConflictException"
    aoss.advance(10)  # would have completed by now, but it was cancelled
    now = get_job(aoss, cid, job_id)
    assert (now["status"], now["state"], now["revision"], now["updatedAt"]) == ("CANCELLED", "STOPPED", 4, at(10))


def test_job_errors(aoss, cid):
    err = aoss.fail("CreateIngestionJob", collectionId="doesnotexist", ingestionJobName="x-job", indexName="b",
                    source=JOB_SOURCE)
    assert (err.code, err.message) == ("ResourceNotFoundException", "Collection with ID doesnotexist cannot be found.")
    young = aoss.create("young")["id"]
    err = aoss.fail("CreateIngestionJob", collectionId=young, ingestionJobName="x-job", indexName="b",
                    source=JOB_SOURCE)
    assert err.code == "ConflictException" and "CREATING state" in err.message
    job(aoss, cid)
    err = aoss.fail("CreateIngestionJob", collectionId=cid, ingestionJobName="load", indexName="b", source=JOB_SOURCE)
    assert (err.code, err.message) == ("ConflictException", f"Ingestion job with name load already exists in collection {cid}")
    err = aoss.fail("CreateIngestionJob", collectionId=cid, ingestionJobName="other", indexName="b",
                    failureIndexName="b", source=JOB_SOURCE)
    assert (err.code, err.message) == ("ValidationException", "failureIndexName must be different from indexName.")
    err = aoss.fail("CreateIngestionJob", collectionId=cid, ingestionJobName="other", indexName="b",
                    source={"s3": {"keyPrefix": "x"}})
    assert err.code == "ValidationException" and "bucket" in err.message
    missing = "a" * 32
    err = aoss.fail("GetIngestionJob", collectionId=cid, ingestionJobId=missing)
    assert (err.code, err.message) == ("ResourceNotFoundException", f"Ingestion job {missing} is not found in collection {cid}.")
    assert aoss.fail("CancelIngestionJob", collectionId=cid, ingestionJobId=missing).code == "ResourceNotFoundException"
    assert aoss.fail("ListIngestionJobs", collectionId="doesnotexist").code == "ResourceNotFoundException"


def test_list_jobs(aoss, cid):
    ids = {name: job(aoss, cid, name=name)["ingestionJobId"] for name in ("bravo", "alpha", "charlie")}
    out = aoss("ListIngestionJobs", collectionId=cid)
    assert [s["ingestionJobName"] for s in out["ingestionJobSummaries"]] == ["alpha", "bravo", "charlie"]
    assert out["ingestionJobSummaries"][0] == {
        "ingestionJobId": ids["alpha"], "arn": f"arn:aws:aoss:us-east-1:111122223333:collection/{cid}/ingestion-job/"
        f"{ids['alpha']}", "ingestionJobName": "alpha", "indexName": "books", "status": "CREATING",
        "createdAt": at(3), "updatedAt": at(3),
    }
    page = aoss("ListIngestionJobs", collectionId=cid, maxResults=2)
    rest = aoss("ListIngestionJobs", collectionId=cid, maxResults=2, nextToken=page["nextToken"])
    assert [s["ingestionJobName"] for s in rest["ingestionJobSummaries"]] == ["charlie"]
    assert "nextToken" not in rest


def test_running_jobs_quota(aoss, cid):
    for i in range(10):
        job(aoss, cid, name=f"job-{i}")
    err = aoss.fail("CreateIngestionJob", collectionId=cid, ingestionJobName="job-10", indexName="b",
                    source=JOB_SOURCE)
    assert err.code == "ServiceQuotaExceededException"
    assert err.fields == {"serviceCode": "aoss", "resourceId": cid, "resourceType": "ingestion-job"}
    aoss.advance(6)  # all completed
    job(aoss, cid, name="job-10")


def test_jobs_go_with_their_collection(aoss, cid):
    job_id = job(aoss, cid)["ingestionJobId"]
    aoss("DeleteCollection", id=cid)
    assert aoss.fail("CreateIngestionJob", collectionId=cid, ingestionJobName="late", indexName="b",
                     source=JOB_SOURCE).code == "ConflictException"
    aoss.advance(3)
    assert aoss.fail("GetIngestionJob", collectionId=cid, ingestionJobId=job_id).code == "ResourceNotFoundException"
    aoss.create("other")
    assert aoss.repo.list("aoss.ingestion-job") == []


def test_job_tags(aoss, cid):
    detail = job(aoss, cid, tags=[{"key": "a", "value": "1"}])
    assert aoss("ListTagsForResource", resourceArn=detail["arn"]) == {"tags": [{"key": "a", "value": "1"}]}
    aoss("TagResource", resourceArn=detail["arn"], tags=[{"key": "b", "value": "2"}])
    assert len(aoss("ListTagsForResource", resourceArn=detail["arn"])["tags"]) == 2
    assert aoss.last.referenced_resources[0]["type"] == "AWS::AOSS::IngestionJob"
    other = detail["arn"].replace(detail["ingestionJobId"], "b" * 32)
    assert aoss.fail("ListTagsForResource", resourceArn=other).code == "ResourceNotFoundException"


def test_cancel_retry_with_client_token_replays(aoss, cid):
    job_id = job(aoss, cid)["ingestionJobId"]
    first = aoss("CancelIngestionJob", collectionId=cid, ingestionJobId=job_id, clientToken="c")
    aoss.advance(10)
    assert aoss("CancelIngestionJob", collectionId=cid, ingestionJobId=job_id, clientToken="c") == first


# --- streams ----------------------------------------------------------------------------


def test_stream_lifecycle(aoss, cid):
    detail = stream(aoss, cid)
    stream_id = detail["ingestionStreamId"]
    assert detail == {
        "ingestionStreamId": stream_id,
        "arn": f"arn:aws:aoss:us-east-1:111122223333:collection/{cid}/ingestion-stream/{stream_id}",
        "collectionId": cid, "ingestionStreamName": "feed", "indexName": "books",
        "source": {"s3": {"sqsArn": QUEUE, "buckets": [
            {"bucket": "my-data", "initialScan": "ENABLED", "bucketOwnerAccountId": "444455556666"}]}},
        "roleArn": ROLE, "status": "CREATING", "state": "STARTING", "statistics": ZERO, "revision": 1,
        "createdAt": at(3), "updatedAt": at(3),
    }
    err = aoss.fail("DeleteIngestionStream", collectionId=cid, ingestionStreamId=stream_id)
    assert err.code == "ConflictException" and "CREATING state" in err.message
    aoss.advance(3)
    now = get_stream(aoss, cid, stream_id)
    assert (now["status"], now["state"], now["revision"]) == ("ACTIVE", "INGESTION_IN_PROGRESS", 2)
    out = aoss("DeleteIngestionStream", collectionId=cid, ingestionStreamId=stream_id)
    assert out == {"ingestionStreamId": stream_id, "collectionId": cid, "ingestionStreamName": "feed",
                   "status": "DELETING"}
    assert aoss.fail("DeleteIngestionStream", collectionId=cid, ingestionStreamId=stream_id).code == \
        "ConflictException"
    assert aoss.fail("CreateIngestionStream", collectionId=cid, ingestionStreamName="feed", indexName="books",
                     roleArn=ROLE, source=STREAM_SOURCE).code == "ConflictException"
    aoss.advance(3)
    gone = get_stream(aoss, cid, stream_id)
    assert (gone["status"], gone["state"], gone["revision"], gone["updatedAt"]) == ("DELETED", "STOPPED", 4, at(9))
    again = stream(aoss, cid)  # the name is free once DELETED
    assert again["ingestionStreamId"] != stream_id
    listed = aoss("ListIngestionStreams", collectionId=cid)["ingestionStreamSummaries"]
    assert sorted(s["status"] for s in listed) == ["CREATING", "DELETED"]


def test_stream_checks(aoss, cid):
    err = aoss.fail("CreateIngestionStream", collectionId=cid, ingestionStreamName="feed", indexName="books",
                    roleArn="arn:aws:iam::999999999999:role/other", source=STREAM_SOURCE)
    assert (err.code, err.message) == (
        "ValidationException", "roleArn must name a role in account 111122223333, the collection's account.")
    dup = {"s3": {"sqsArn": QUEUE, "buckets": [{"bucket": "b-1"}, {"bucket": "b-1"}]}}
    err = aoss.fail("CreateIngestionStream", collectionId=cid, ingestionStreamName="feed", indexName="books",
                    roleArn=ROLE, source=dup)
    assert (err.code, err.message) == ("ValidationException", "Duplicate bucket b-1 in source.s3.buckets.")
    owned = stream(aoss, cid, source={"s3": {"sqsArn": QUEUE, "buckets": [
        {"bucket": "b-2", "bucketOwnerAccountId": "111122223333"}]}})
    assert owned["source"]["s3"]["buckets"][0]["bucketOwnerAccountId"] == "111122223333"
    no_buckets = stream(aoss, cid, name="bare", source={"s3": {"sqsArn": QUEUE}})
    assert no_buckets["source"] == {"s3": {"sqsArn": QUEUE}}
    missing = "c" * 32
    err = aoss.fail("GetIngestionStream", collectionId=cid, ingestionStreamId=missing)
    assert (err.code, err.message) == ("ResourceNotFoundException",
                                       f"Ingestion stream {missing} is not found in collection {cid}.")
    assert aoss.fail("ListIngestionStreams", collectionId="doesnotexist").code == "ResourceNotFoundException"


def test_streams_quota_counts_all_but_deleted(aoss, cid):
    ids = [stream(aoss, cid, name=f"s-{i}")["ingestionStreamId"] for i in range(10)]
    err = aoss.fail("CreateIngestionStream", collectionId=cid, ingestionStreamName="s-10", indexName="books",
                    roleArn=ROLE, source=STREAM_SOURCE)
    assert err.code == "ServiceQuotaExceededException"
    aoss.advance(3)
    aoss("DeleteIngestionStream", collectionId=cid, ingestionStreamId=ids[0])
    assert aoss.fail("CreateIngestionStream", collectionId=cid, ingestionStreamName="s-10", indexName="books",
                     roleArn=ROLE, source=STREAM_SOURCE).code == "ServiceQuotaExceededException"
    aoss.advance(3)
    stream(aoss, cid, name="s-10")


def test_stream_tags_cannot_change_while_deleting(aoss, cid):
    detail = stream(aoss, cid, tags=[{"key": "a", "value": "1"}])
    aoss.advance(3)
    aoss("DeleteIngestionStream", collectionId=cid, ingestionStreamId=detail["ingestionStreamId"])
    err = aoss.fail("TagResource", resourceArn=detail["arn"], tags=[{"key": "b", "value": "2"}])
    assert err.code == "ConflictException"
    assert aoss("ListTagsForResource", resourceArn=detail["arn"]) == {"tags": [{"key": "a", "value": "1"}]}
