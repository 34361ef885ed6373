"""A call whose operation writes, reads what it wrote and then fails is rolled back to its
savepoint by the gateway, which must also forget the reads it cached after the write: the
next call is answered from the store, not from the undone write."""

from __future__ import annotations

import asyncio
import configparser
from typing import Any

import orjson

from bench.callcost import raw_request
from bench.presigned import COLLECTION_NAMES, Signer, seed_requests
from searchtrail.app import build_app, ensure_default_account
from searchtrail.config import load_settings
from searchtrail.protocol.errors import ServiceError
from searchtrail.services.aoss import collections

SERVICE = "opensearchserverless"
UNDONE = "written, read back, then undone"


def write_read_then_fail(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    """UpdateCollection as a fault: it stores a new description, reads the collection the
    way BatchGetCollection does (so that read is cached), then fails."""
    name = COLLECTION_NAMES[0]
    found = collections.live_each(call, "names", [name])
    stored = dict(found[name][0], description=UNDONE)
    call.resources.put(collections.KIND_COLLECTION, stored["id"], stored)
    assert collections.live_each(call, "names", [name])[name][0]["description"] == UNDONE
    raise ServiceError("ValidationException", "failed after writing")


def test_a_failed_writes_reads_are_forgotten_with_its_write(tmp_path) -> None:
    settings = load_settings({"data_dir": tmp_path})
    ensure_default_account(settings)
    profile = configparser.ConfigParser()
    profile.read(settings.credentials_path)
    signer = Signer("127.0.0.1:4566", profile["default"]["aws_access_key_id"],
                    profile["default"]["aws_secret_access_key"])
    app = build_app(settings)
    # fault injection: the registry is what the gateway asks for an operation's handler
    app.aws_calls._registry._handlers[(SERVICE, "UpdateCollection")] = write_read_then_fail
    name = COLLECTION_NAMES[0]

    async def answers() -> list[tuple[int, dict]]:
        app.writer.start()
        try:
            for request in seed_requests(signer):
                status, _, _ = await app.aws_calls.respond(raw_request(request))
                assert status == 200
            answered = []
            for operation, params in (("UpdateCollection", {"id": "x" * 20}),
                                      ("BatchGetCollection", {"names": [name]})):
                status, _, body = await app.aws_calls.respond(
                    raw_request(signer.request(operation, params)))
                answered.append((status, orjson.loads(body)))
            return answered
        finally:
            app.writer.stop()

    (failed_status, failed), (status, batch) = asyncio.run(answers())
    assert failed_status == 400 and failed["__type"].endswith("ValidationException")
    assert status == 200
    [detail] = batch["collectionDetails"]
    assert detail["name"] == name and detail.get("description") != UNDONE
