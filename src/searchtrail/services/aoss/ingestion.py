"""Ingestion jobs (one-time bulk loads from S3) and ingestion streams (continuous, driven by
S3 event notifications in SQS), both living in a collection.

Nothing reads the source buckets or queues here, so a job finds nothing to ingest and a
stream waits for notifications; what is kept faithful is the control-plane state. Each
resource stores its timeline: a list of phases `[start ms, status, state]`, some of them in
the future, and Get/List report the last phase that has started (`updatedAt` is its start,
`revision` its position, counting from 1). No background task writes anything.

- job: CREATING/STARTING, after the create time ACTIVE/SCANNING, after another create time
  COMPLETED/INGESTION_COMPLETE with zero objects. CancelIngestionJob (only while CREATING
  or ACTIVE, else ConflictException) replaces the future with CANCELLING (keeping the state
  it had), then after the delete time CANCELLED/STOPPED. Jobs stay listed once finished.
- stream: CREATING/STARTING, then ACTIVE/INGESTION_IN_PROGRESS. DeleteIngestionStream
  (only while ACTIVE, CREATE_FAILED or DELETE_FAILED) gives DELETING/STOPPED, then after
  the delete time DELETED/STOPPED: still readable, its name free again.

Creating either needs an ACTIVE collection (ResourceNotFoundException when unknown or gone,
ConflictException otherwise); names are unique in their collection (for streams, among
those not DELETED); the failure index must differ from the target index. A stream's role
must be in the collection's account, and a bucket's owner defaults to the account of the
SQS queue. Both take tags (TagResource works on their ARNs) and a clientToken.
"""

from __future__ import annotations

import re
from typing import Any

from . import collections, indexes, tags
from .common import (
    KIND_INGESTION_JOB,
    KIND_INGESTION_STREAM,
    TYPE_INGESTION_JOB,
    TYPE_INGESTION_STREAM,
    Timing,
    aoss_arn,
    conflict,
    epoch_ms,
    from_epoch_ms,
    listed,
    not_found,
    paginate,
    quota_exceeded,
    random_id,
    reference,
    unused_id,
    validation,
    without_none,
)

ID_LENGTH = 32
# Per collection; not on the quotas page we read (unverified).
MAX_RUNNING_JOBS = 10
MAX_STREAMS = 10
JOB_RUNNING = ("CREATING", "ACTIVE", "CANCELLING")
STREAM_DELETABLE = ("ACTIVE", "CREATE_FAILED", "DELETE_FAILED")
ZERO_STATISTICS = {"s3": {"objectsDiscovered": 0, "objectsIngested": 0, "objectsFailed": 0}}
JOB_TAG_PATH = re.compile(r"collection/([a-z0-9]{3,40})/ingestion-job/([a-z0-9]{20,64})")
STREAM_TAG_PATH = re.compile(r"collection/([a-z0-9]{3,40})/ingestion-stream/([a-z0-9]{20,64})")


# --- timelines --------------------------------------------------------------------------


def current(stored: dict[str, Any], now_ms: int) -> tuple[int, int, str, str]:
    """(revision, since ms, status, state) of the last phase that has started."""
    revision, phase = 1, stored["phases"][0]
    for position, candidate in enumerate(stored["phases"], start=1):
        if candidate[0] <= now_ms:
            revision, phase = position, candidate
    return revision, phase[0], phase[1], phase[2]


def _rewrite_future(stored: dict[str, Any], now_ms: int, phases: list[list[Any]]) -> None:
    """Drop the phases that have not started and continue with `phases`."""
    stored["phases"] = [p for p in stored["phases"] if p[0] <= now_ms] + phases


# --- shared pieces ----------------------------------------------------------------------


class Family:
    """What differs between jobs and streams: names, kinds, ARNs, texts."""

    def __init__(self, kind: str, word: str, label: str, member: str, resource_type: str):
        self.kind, self.word, self.label = kind, word, label
        self.id_member, self.name_member = f"{member}Id", f"{member}Name"
        self.resource_type = resource_type

    def arn(self, call: Any, collection_id: str, item_id: str) -> str:
        path = f"collection/{collection_id}/{self.word}/{item_id}"
        return aoss_arn(call.region, call.account_id, path)

    def find(self, call: Any, collection_id: str, item_id: str) -> dict[str, Any]:
        collections.live_or_not_found(call, collection_id)
        stored = call.resources.get(self.kind, f"{collection_id}/{item_id}")
        if stored is None:
            raise not_found(f"{self.label} {item_id} is not found in collection {collection_id}.")
        reference(call, stored["arn"], self.resource_type)
        return stored

    def tag_target(self, call: Any, match: "re.Match[str]") -> tags.TagTarget | None:
        collection_id, item_id = match.group(1), match.group(2)
        if collections.live(call, collection_id) is None:
            return None
        stored = call.resources.get(self.kind, f"{collection_id}/{item_id}")
        if stored is None:
            return None
        _, _, status, _ = current(stored, epoch_ms(call.now))

        def save(new_tags: list[dict[str, str]]) -> None:
            stored["tags"] = new_tags
            call.resources.put(self.kind, stored["key"], stored)

        return tags.TagTarget(stored["arn"], self.resource_type, status, list(stored["tags"]), save)

    def new(self, call: Any, params: dict[str, Any], running: tuple[str, ...], quota: int,
            quota_text: str) -> dict[str, Any]:
        """The checks every create makes, and the new resource's common members."""
        collection_id, name = params["collectionId"], params[self.name_member]
        _, status = collections.live_or_not_found(call, collection_id)
        if status != "ACTIVE":
            raise conflict(
                f"Collection {collection_id} is in {status} state; {self.label.lower()}s can be "
                "created only when it is ACTIVE"
            )
        now_ms = epoch_ms(call.now)
        siblings = [
            (sibling, current(sibling, now_ms)[2])
            for sibling in call.resources.list(self.kind, f"{collection_id}/")
        ]
        for sibling, sibling_status in siblings:
            if sibling["name"] == name and sibling_status != "DELETED":
                raise conflict(
                    f"{self.label} with name {name} already exists in collection {collection_id}"
                )
        indexes.checked_name(params["indexName"])
        if params.get("failureIndexName") is not None:
            indexes.checked_name(params["failureIndexName"])
            if params["failureIndexName"] == params["indexName"]:
                raise validation("failureIndexName must be different from indexName.")
        item_tags = tags.checked(params.get("tags") or [])
        if sum(1 for _, sibling_status in siblings if sibling_status in running) >= quota:
            raise quota_exceeded(
                f"Collection {collection_id} already has {quota} {quota_text}, the quota per "
                "collection.",
                resourceId=collection_id,
                resourceType=self.word,
            )
        item_id = unused_id(call, self.kind, lambda: random_id(ID_LENGTH),
                            key=lambda candidate: f"{collection_id}/{candidate}")
        stored = {
            "key": f"{collection_id}/{item_id}",
            "id": item_id,
            "collectionId": collection_id,
            "arn": self.arn(call, collection_id, item_id),
            "name": name,
            "indexName": params["indexName"],
            "failureIndexName": params.get("failureIndexName"),
            "tags": item_tags,
        }
        return stored

    def detail(self, stored: dict[str, Any], now_ms: int, **extra: Any) -> dict[str, Any]:
        revision, since, status, state = current(stored, now_ms)
        return without_none(
            {
                self.id_member: stored["id"],
                "arn": stored["arn"],
                "collectionId": stored["collectionId"],
                self.name_member: stored["name"],
                "indexName": stored["indexName"],
                "failureIndexName": stored.get("failureIndexName"),
                "source": stored["source"],
                **extra,
                "status": status,
                "state": state,
                "statistics": ZERO_STATISTICS,
                "revision": revision,
                "createdAt": from_epoch_ms(stored["phases"][0][0]),
                "updatedAt": from_epoch_ms(since),
            }
        )

    def summary(self, stored: dict[str, Any], now_ms: int) -> dict[str, Any]:
        _, since, status, _ = current(stored, now_ms)
        return {
            self.id_member: stored["id"],
            "arn": stored["arn"],
            self.name_member: stored["name"],
            "indexName": stored["indexName"],
            "status": status,
            "createdAt": from_epoch_ms(stored["phases"][0][0]),
            "updatedAt": from_epoch_ms(since),
        }

    def list(self, call: Any, params: dict[str, Any], operation: str, member: str) -> dict[str, Any]:
        collection_id = params["collectionId"]
        collections.live_or_not_found(call, collection_id)
        now_ms = epoch_ms(call.now)
        rows = (((s["name"], s["id"]), s) for s in call.resources.list(self.kind, f"{collection_id}/"))
        page, token = paginate(operation, params, rows, 2, default=100)
        return listed(member, [self.summary(s, now_ms) for s in page], token)


JOBS = Family(KIND_INGESTION_JOB, "ingestion-job", "Ingestion job", "ingestionJob", TYPE_INGESTION_JOB)
STREAMS = Family(KIND_INGESTION_STREAM, "ingestion-stream", "Ingestion stream", "ingestionStream",
                 TYPE_INGESTION_STREAM)


# --- ingestion jobs ---------------------------------------------------------------------


def create_ingestion_job(call: Any, params: dict[str, Any], timing: Timing) -> dict[str, Any]:
    stored = JOBS.new(call, params, JOB_RUNNING, MAX_RUNNING_JOBS, "running ingestion jobs")
    source = params["source"]["s3"]
    if not source.get("bucket"):
        raise validation("source.s3.bucket is required: name the S3 bucket to ingest from.")
    now_ms = epoch_ms(call.now)
    active_at = now_ms + timing.create_ms
    stored["source"] = {"s3": dict(source)}
    stored["phases"] = [
        [now_ms, "CREATING", "STARTING"],
        [active_at, "ACTIVE", "SCANNING"],
        [active_at + timing.create_ms, "COMPLETED", "INGESTION_COMPLETE"],
    ]
    call.resources.insert(KIND_INGESTION_JOB, stored["key"], stored)
    reference(call, stored["arn"], TYPE_INGESTION_JOB)
    return {"ingestionJobDetail": JOBS.detail(stored, now_ms)}


def get_ingestion_job(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    stored = JOBS.find(call, params["collectionId"], params["ingestionJobId"])
    return {"ingestionJobDetail": JOBS.detail(stored, epoch_ms(call.now))}


def list_ingestion_jobs(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return JOBS.list(call, params, "ListIngestionJobs", "ingestionJobSummaries")


def cancel_ingestion_job(call: Any, params: dict[str, Any], timing: Timing) -> dict[str, Any]:
    job_id = params["ingestionJobId"]
    stored = JOBS.find(call, params["collectionId"], job_id)
    now_ms = epoch_ms(call.now)
    _, _, status, state = current(stored, now_ms)
    if status not in ("CREATING", "ACTIVE"):
        raise conflict(
            f"Ingestion job {job_id} is in {status} state; only CREATING or ACTIVE jobs can be "
            "cancelled"
        )
    _rewrite_future(stored, now_ms, [
        [now_ms, "CANCELLING", state],
        [now_ms + timing.delete_ms, "CANCELLED", "STOPPED"],
    ])
    call.resources.put(KIND_INGESTION_JOB, stored["key"], stored)
    return {
        "ingestionJobId": job_id,
        "collectionId": stored["collectionId"],
        "ingestionJobName": stored["name"],
        "status": current(stored, now_ms)[2],
    }


# --- ingestion streams ------------------------------------------------------------------


def _stream_source(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    role_account = params["roleArn"].split(":")[4]
    if role_account != call.account_id:
        raise validation(
            f"roleArn must name a role in account {call.account_id}, the collection's account."
        )
    source = dict(params["source"]["s3"])
    queue_account = source["sqsArn"].split(":")[4]
    buckets = []
    seen: set[str] = set()
    for bucket in source.get("buckets") or []:
        if bucket["bucket"] in seen:
            raise validation(f"Duplicate bucket {bucket['bucket']} in source.s3.buckets.")
        seen.add(bucket["bucket"])
        owner = bucket.get("bucketOwnerAccountId") or queue_account
        buckets.append({**bucket, "bucketOwnerAccountId": owner})
    if "buckets" in source:
        source["buckets"] = buckets
    return {"s3": source}


def create_ingestion_stream(call: Any, params: dict[str, Any], timing: Timing) -> dict[str, Any]:
    stored = STREAMS.new(call, params, ("CREATING", "ACTIVE", "DELETING"), MAX_STREAMS,
                         "ingestion streams")
    stored["source"] = _stream_source(call, params)
    stored["roleArn"] = params["roleArn"]
    now_ms = epoch_ms(call.now)
    stored["phases"] = [
        [now_ms, "CREATING", "STARTING"],
        [now_ms + timing.create_ms, "ACTIVE", "INGESTION_IN_PROGRESS"],
    ]
    call.resources.insert(KIND_INGESTION_STREAM, stored["key"], stored)
    reference(call, stored["arn"], TYPE_INGESTION_STREAM)
    return {"ingestionStreamDetail": STREAMS.detail(stored, now_ms, roleArn=stored["roleArn"])}


def get_ingestion_stream(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    stored = STREAMS.find(call, params["collectionId"], params["ingestionStreamId"])
    detail = STREAMS.detail(stored, epoch_ms(call.now), roleArn=stored["roleArn"])
    return {"ingestionStreamDetail": detail}


def list_ingestion_streams(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return STREAMS.list(call, params, "ListIngestionStreams", "ingestionStreamSummaries")


def delete_ingestion_stream(call: Any, params: dict[str, Any], timing: Timing) -> dict[str, Any]:
    stream_id = params["ingestionStreamId"]
    stored = STREAMS.find(call, params["collectionId"], stream_id)
    now_ms = epoch_ms(call.now)
    _, _, status, _ = current(stored, now_ms)
    if status not in STREAM_DELETABLE:
        raise conflict(
            f"Ingestion stream {stream_id} is in {status} state; only streams in ACTIVE, "
            "CREATE_FAILED or DELETE_FAILED state can be deleted"
        )
    _rewrite_future(stored, now_ms, [
        [now_ms, "DELETING", "STOPPED"],
        [now_ms + timing.delete_ms, "DELETED", "STOPPED"],
    ])
    call.resources.put(KIND_INGESTION_STREAM, stored["key"], stored)
    return {
        "ingestionStreamId": stream_id,
        "collectionId": stored["collectionId"],
        "ingestionStreamName": stored["name"],
        "status": current(stored, now_ms)[2],
    }
