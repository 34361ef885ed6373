"""Raw HTTP/1.1 aoss requests, each signed ahead of time with botocore's SigV4Auth, for replay.

A load generator then only writes bytes: no signing or serialising during the measurement.
Each request carries its own `amz-sdk-invocation-id`, as boto3's do, so no two are identical.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench import wrk
from bench.rawclient import closed_loop

if TYPE_CHECKING:
    from bench.servers import Server

TARGET_PREFIX = "OpenSearchServerless"  # the aoss model's targetPrefix (awsJson 1.0)
SIGNING_NAME = "aoss"
CONTENT_TYPE = "application/x-amz-json-1.0"
USER_AGENT = f"Botocore/{botocore.__version__} searchtrail-bench"


class Signer:
    """Signs aoss calls for one server: its Host header and its credentials."""

    def __init__(self, host_header: str, access_key: str, secret_key: str) -> None:
        self.host = host_header
        self.credentials = Credentials(access_key, secret_key)
        self._auth: dict[str, SigV4Auth] = {}

    def request(self, operation: str, params: dict[str, Any], region: str = "us-east-1") -> bytes:
        body = json.dumps(params, separators=(",", ":")).encode()
        request = AWSRequest(method="POST", url=f"http://{self.host}/", data=body,
                             headers={"Content-Type": CONTENT_TYPE,
                                      "X-Amz-Target": f"{TARGET_PREFIX}.{operation}",
                                      "User-Agent": USER_AGENT,
                                      "amz-sdk-invocation-id": str(uuid.uuid4()),
                                      "amz-sdk-request": "attempt=1; max=1"})
        auth = self._auth.get(region)
        if auth is None:
            auth = self._auth[region] = SigV4Auth(self.credentials, SIGNING_NAME, region)
        auth.add_auth(request)
        head = [f"POST / HTTP/1.1\r\nHost: {self.host}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in request.headers.items())
        head.append(f"Content-Length: {len(body)}\r\n\r\n")
        return "".join(head).encode() + body


def write_request_file(path: Path, requests: Iterable[bytes]) -> int:
    """`<length>\\n<bytes>` per request, the format bench/wrk.py's Lua script reads."""
    count = 0
    with path.open("wb") as out:
        for raw in requests:
            out.write(b"%d\n" % len(raw))
            out.write(raw)
            count += 1
    return count


# --- the mixes ------------------------------------------------------------------------------

COLLECTION_NAMES = [f"bench-read-{i}" for i in range(5)]  # made by seed_read_store()


def encryption_policy(collection: str, region: str = "us-east-1") -> str:
    # A KMS key ARN rather than AWSOwnedKey: moto 5.2.5 fails CreateCollection on AWS owned keys.
    return json.dumps({"Rules": [{"ResourceType": "collection",
                                  "Resource": [f"collection/{collection}"]}],
                       "AWSOwnedKey": False,
                       "KmsARN": f"arn:aws:kms:{region}:123456789012:key/"
                                 "00000000-0000-0000-0000-000000000000"})


def network_policy(collection: str) -> str:
    # Collection rules only: ministack 1.5.33 rejects the usual dashboard rule shape.
    return json.dumps([{"Rules": [{"ResourceType": "collection",
                                   "Resource": [f"collection/{collection}"]}],
                        "AllowFromPublic": True}])


def seed_requests(signer: Signer) -> list[bytes]:
    """The read mix's store: one encryption policy and one collection per name (send in order)."""
    policies = [signer.request("CreateSecurityPolicy",
                               {"name": name, "type": "encryption",
                                "policy": encryption_policy(name)})
                for name in COLLECTION_NAMES]
    collections = [signer.request("CreateCollection", {"name": name, "type": "SEARCH"})
                   for name in COLLECTION_NAMES]
    return policies + collections


def read_mix(signer: Signer, count: int) -> list[bytes]:
    """ListCollections and BatchGetCollection (by name), alternating."""
    requests = []
    for i in range(count):
        if i % 2:
            names = [COLLECTION_NAMES[(i + k) % len(COLLECTION_NAMES)] for k in range(2)]
            requests.append(signer.request("BatchGetCollection", {"names": names}))
        else:
            requests.append(signer.request("ListCollections", {}))
    return requests


# The create/delete mix keeps up to LAG live policies per region: 2 regions x 250 stays under
# searchtrail's quota of 500 network policies per account and Region (encryption allows 50).
CREATE_DELETE_REGIONS = ("us-east-1", "us-west-2")
CREATE_DELETE_LAG = 500  # a delete comes 2 x LAG = 1,000 requests after its create


def create_request(signer: Signer, prefix: str, i: int) -> bytes:
    region = CREATE_DELETE_REGIONS[i % len(CREATE_DELETE_REGIONS)]
    return signer.request("CreateSecurityPolicy",
                          {"name": f"{prefix}-{i}", "type": "network",
                           "policy": network_policy(f"{prefix}-{i}"),
                           "clientToken": str(uuid.uuid4())}, region)


def delete_request(signer: Signer, prefix: str, i: int) -> bytes:
    region = CREATE_DELETE_REGIONS[i % len(CREATE_DELETE_REGIONS)]
    return signer.request("DeleteSecurityPolicy",
                          {"name": f"{prefix}-{i}", "type": "network",
                           "clientToken": str(uuid.uuid4())}, region)


def create_delete_mix(signer: Signer, prefix: str, pairs: int,
                      lag: int = CREATE_DELETE_LAG) -> tuple[list[bytes], list[bytes]]:
    """(pre-create batch, run): the run alternates Create(lag + k) and Delete(k) for k < pairs.

    A request is sent only after every request more than `-c` places before it has been
    answered, so with `-c` far below 2 x lag no delete can overtake its create.
    """
    first = [create_request(signer, prefix, i) for i in range(lag)]
    run = []
    for k in range(pairs):
        run.append(create_request(signer, prefix, lag + k))
        run.append(delete_request(signer, prefix, k))
    return first, run


def replay(server: Server, requests: list[bytes], seconds: float,
           connections: int = 16) -> tuple[int, float]:
    """Calls answered and the seconds they took: wrk replaying ``requests`` as a pool for
    ``seconds`` when installed, else the asyncio client sending each once. Any failed call
    raises (for searchtrail, a non-2xx answer means the signing or the server is wrong)."""
    if wrk.available():
        pool = write_request_file(server.workdir / "replay.req", requests)
        counters = wrk.run(server.endpoint, server.workdir / "replay.req", server.workdir,
                           seconds=seconds, connections=connections)
        failed = sum(counters[k] for k in ("non_2xx_3xx", "connect_errors", "read_errors",
                                            "write_errors", "timeouts"))
        if failed or not pool:
            raise RuntimeError(f"failed requests: {counters}")
        return counters["requests"], counters["duration_us"] / 1e6
    outcome = closed_loop("127.0.0.1", server.port, requests, connections=connections)
    if outcome.ok != len(requests):
        raise RuntimeError(f"{outcome.ok}/{len(requests)} calls answered 2xx ({outcome.statuses})")
    return outcome.ok, outcome.wall
