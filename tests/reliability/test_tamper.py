"""Tamper evidence (plan §3.4, T1–T11): each tampering of one delivered trail (tampered with,
then restored), judged by `aws cloudtrail validate-logs` and `searchtrail trail validate`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.functional.server import ServerProcess
from tests.functional.trails import (aws_cli, chain_closed, counts, read_bucket, searchtrail_cli,
                                     wait_for)
from tests.peers import MOTO_CREDENTIALS, MotoServer
from tests.reliability.checkers import (DigestFile, bucket_etags, check_delivery, read_digests,
                                        stored_records)
from tests.reliability.faketime import SteppedClock, faketime_library, faketime_path
from tests.reliability.ledger import Profile

pytestmark = pytest.mark.reliability

BUCKET = "tamper-bucket"
REGION = "us-east-1"
ROUNDS = 3  # digest periods with log files in them: the chain has a middle
DIGEST_INTERVAL = 1


@dataclass
class Trail:
    moto: MotoServer
    server: ServerProcess
    arn: str
    logs: list[str]          # log keys, in digest order (oldest digest first)
    digests: list[DigestFile]  # oldest first
    snapshot: dict[str, tuple[bytes, dict[str, str]]]  # key -> (body, metadata)
    clock: SteppedClock | None  # the server's clock (T10), None without libfaketime

    @property
    def s3(self):  # type: ignore[no-untyped-def]
        return self.moto.client("s3")

    def uri(self, key: str) -> str:
        return f"s3://{BUCKET}/{key}"


@pytest.fixture(scope="module")
def trail(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("tamper")
    moto = MotoServer(root).start()
    library = faketime_path()
    clock = SteppedClock(root / "faketime") if library else None  # real time until T10
    faked = {}
    if clock is not None:
        faked = {**clock.env(library),
                 "SEARCHTRAIL_CLOCK_SKEW_SECONDS": str(40 * 86400)}  # clients keep real time
    server = ServerProcess(root / "data", env={**MOTO_CREDENTIALS, **faked}, args=[
        "--s3-endpoint-url", moto.endpoint, "--delivery-interval", "1",
        "--digest-interval", str(DIGEST_INTERVAL)])
    try:
        s3 = moto.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        server.start()
        cloudtrail = server.client("cloudtrail")
        arn = cloudtrail.create_trail(Name="tamper", S3BucketName=BUCKET,
                                      EnableLogFileValidation=True)["TrailARN"]
        cloudtrail.start_logging(Name="tamper")
        aoss = server.client("opensearchserverless")
        request_ids: list[str] = []
        for round_ in range(ROUNDS):  # each round in its own digest period, so digests chain
            request_ids += [aoss.list_collections()["ResponseMetadata"]["RequestId"]
                            for _ in range(8)]
            wait_for(lambda: set(request_ids) <= _delivered_request_ids(s3), seconds=30,
                     what=f"round {round_} delivered")
            wait_for(lambda n=round_: len(read_bucket(s3, BUCKET).digest_keys) > n, seconds=30,
                     what="another digest")
        cloudtrail.stop_logging(Name="tamper")
        wait_for(lambda: chain_closed(server, "tamper"), seconds=30, what="the final digest")
        content = read_bucket(s3, BUCKET)
        digests = sorted(read_digests(s3, BUCKET, content.digest_keys),
                         key=lambda d: d.body["digestEndTime"])
        records = stored_records(server)
        delivery = check_delivery([r for r in records if r["requestID"] in set(request_ids)],
                                  content, digests, stored_ids={r["eventID"] for r in records})
        assert delivery.ok, str(delivery)
        logs = [entry["s3Object"] for d in digests for entry in d.body.get("logFiles", ())]
        assert len(logs) >= ROUNDS and len([d for d in digests if d.body.get("logFiles")]) >= 3
        snapshot = {}
        for key in content.log_keys + content.digest_keys:
            got = s3.get_object(Bucket=BUCKET, Key=key)
            snapshot[key] = (got["Body"].read(), got["Metadata"])
        yield Trail(moto, server, arn, logs, digests, snapshot, clock)
    finally:
        server.stop()
        moto.stop()


def _delivered_request_ids(s3) -> set[str]:  # type: ignore[no-untyped-def]
    content = read_bucket(s3, BUCKET)
    return {r["requestID"] for records in content.records_by_key.values() for r in records}


def _digest_keys(s3) -> list[str]:  # type: ignore[no-untyped-def]
    return [key for key in bucket_etags(s3, BUCKET) if "/CloudTrail-Digest/" in key]


def restore(trail: Trail) -> None:
    """Put the bucket back exactly as delivered: every original object, nothing else."""
    s3 = trail.s3
    for key in set(bucket_etags(s3, BUCKET)) - set(trail.snapshot):
        s3.delete_object(Bucket=BUCKET, Key=key)
    for key, (body, metadata) in trail.snapshot.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=metadata)


# -- the tamperings: each changes the bucket and returns the lines both validators must print --

def _regzip(raw: bytes) -> bytes:
    return gzip.compress(raw, compresslevel=9, mtime=0)


def _body(trail: Trail, key: str) -> bytes:
    return trail.snapshot[key][0]


def _put(trail: Trail, key: str, body: bytes, metadata: dict[str, str] | None = None) -> None:
    trail.s3.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=metadata or {})


def _digest_json(trail: Trail, key: str) -> dict:
    return json.loads(gzip.decompress(_body(trail, key)))


def _later_key(key: str, seconds: int) -> str:
    """The same digest key, dated ``seconds`` later (still matches the trail's key pattern)."""
    stamp = datetime.strptime(key[-24:-8], "%Y%m%dT%H%M%SZ") + timedelta(seconds=seconds)
    return key[:-24] + stamp.strftime("%Y%m%dT%H%M%SZ") + key[-8:]


def t1_changed_byte(trail: Trail) -> list[str]:
    key = trail.logs[0]
    raw = bytearray(gzip.decompress(_body(trail, key)))
    raw[len(raw) // 2] ^= 0x01
    _put(trail, key, _regzip(bytes(raw)))
    return [f"{trail.uri(key)}\tINVALID: hash value doesn't match"]


def t2_deleted_log(trail: Trail) -> list[str]:
    key = trail.logs[-1]
    trail.s3.delete_object(Bucket=BUCKET, Key=key)
    return [f"{trail.uri(key)}\tINVALID: not found"]


def t3_swapped_logs(trail: Trail) -> list[str]:
    first, second = trail.logs[0], trail.logs[-1]
    _put(trail, first, _body(trail, second))
    _put(trail, second, _body(trail, first))
    return [f"{trail.uri(k)}\tINVALID: hash value doesn't match" for k in (first, second)]


def t3_moved_log(trail: Trail) -> list[str]:
    key = trail.logs[1]
    _put(trail, key.replace(".json.gz", "-moved.json.gz"), _body(trail, key))
    trail.s3.delete_object(Bucket=BUCKET, Key=key)
    return [f"{trail.uri(key)}\tINVALID: not found"]


def t4_second_gzip_member(trail: Trail) -> list[str]:
    key = trail.logs[0]
    _put(trail, key, _body(trail, key) + gzip.compress(b'{"Records":[]}'))
    return [f"{trail.uri(key)}\tINVALID: unexpected data after end of compressed stream"]


def t4_trailing_bytes(trail: Trail) -> list[str]:
    key = trail.logs[-1]
    _put(trail, key, _body(trail, key) + b"\x00tail")
    return [f"{trail.uri(key)}\tINVALID: unexpected data after end of compressed stream"]


def t5_edited_digest_body(trail: Trail) -> list[str]:
    key = trail.digests[1].key
    digest = _digest_json(trail, key)
    digest["logFiles"] = digest["logFiles"][1:]  # hide a log file from validation
    _put(trail, key, _regzip(json.dumps(digest).encode()), trail.snapshot[key][1])
    return [f"{trail.uri(key)}\tINVALID: signature verification failed"]


def t5_flipped_signature(trail: Trail) -> list[str]:
    key = trail.digests[-1].key
    metadata = dict(trail.snapshot[key][1])
    signature = metadata["signature"]
    metadata["signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]
    _put(trail, key, _body(trail, key), metadata)
    return [f"{trail.uri(key)}\tINVALID: signature verification failed"]


def t5_removed_signature(trail: Trail) -> list[str]:
    key = trail.digests[0].key
    _put(trail, key, _body(trail, key), {})
    return [f"{trail.uri(key)}\tINVALID: signature verification failed"]


def t6_deleted_middle_digest(trail: Trail) -> list[str]:
    key = trail.digests[len(trail.digests) // 2].key
    trail.s3.delete_object(Bucket=BUCKET, Key=key)
    return [f"{trail.uri(key)}\tINVALID: not found"]


def t6_deleted_oldest_digest(trail: Trail) -> list[str]:
    key = trail.digests[0].key
    trail.s3.delete_object(Bucket=BUCKET, Key=key)
    return [f"{trail.uri(key)}\tINVALID: not found"]


def t7_copied_digest(trail: Trail) -> list[str]:
    key = trail.digests[-1].key
    copy = _later_key(key, 1)
    _put(trail, copy, _body(trail, key), trail.snapshot[key][1])
    return [f"{trail.uri(copy)}\tINVALID: has been moved from its original location"]


def t8_deleted_newest_digest(trail: Trail) -> list[str]:
    trail.s3.delete_object(Bucket=BUCKET, Key=trail.digests[-1].key)
    return ["INVALID: newest digest missing"]


def t8_deleted_every_digest(trail: Trail) -> list[str]:
    for digest in trail.digests:
        trail.s3.delete_object(Bucket=BUCKET, Key=digest.key)
    return ["INVALID: newest digest missing"]


def _resign(trail: Trail, key: str, digest: dict, private: rsa.RSAPrivateKey) -> None:
    """Sign ``digest`` as the server would (validate-logs' string to sign), with ``private``."""
    raw = json.dumps(digest).encode()
    previous = digest["previousDigestSignature"] or "null"
    to_sign = (f"{digest['digestEndTime']}\n{BUCKET}/{key}\n"
               f"{hashlib.sha256(raw).hexdigest()}\n{previous}").encode()
    signature = private.sign(to_sign, padding.PKCS1v15(), hashes.SHA256()).hex()
    _put(trail, key, _regzip(raw), dict(trail.snapshot[key][1], signature=signature))


def t9_resigned_with_a_foreign_key(trail: Trail) -> list[str]:
    key = trail.digests[-1].key
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.PKCS1)
    fingerprint = hashlib.md5(der, usedforsecurity=False).hexdigest()
    _resign(trail, key, dict(_digest_json(trail, key), digestPublicKeyFingerprint=fingerprint),
            private)
    return [f"{trail.uri(key)}\tINVALID: public key not found in region {REGION} "
            f"for fingerprint {fingerprint}"]


def t9_unknown_fingerprint(trail: Trail) -> list[str]:
    key = trail.digests[1].key
    digest = dict(_digest_json(trail, key), digestPublicKeyFingerprint="0" * 32)
    _put(trail, key, _regzip(json.dumps(digest).encode()), trail.snapshot[key][1])
    return [f"{trail.uri(key)}\tINVALID: public key not found in region {REGION} "
            f"for fingerprint {'0' * 32}"]


@dataclass(frozen=True)
class Case:
    id: str
    tamper: Callable[[Trail], list[str]]
    aws_sees: bool = True  # validate-logs cannot see a truncated tail (plan §1c)


CASES = [
    Case("T1", t1_changed_byte),
    Case("T2", t2_deleted_log),
    Case("T3", t3_swapped_logs),
    Case("T3", t3_moved_log),
    Case("T4", t4_second_gzip_member),
    Case("T4", t4_trailing_bytes),
    Case("T5", t5_edited_digest_body),
    Case("T5", t5_flipped_signature),
    Case("T5", t5_removed_signature),
    Case("T6", t6_deleted_middle_digest),
    Case("T6", t6_deleted_oldest_digest),
    Case("T7", t7_copied_digest),
    Case("T8", t8_deleted_newest_digest, aws_sees=False),
    Case("T8", t8_deleted_every_digest, aws_sees=False),
    Case("T9", t9_resigned_with_a_foreign_key),
    Case("T9", t9_unknown_fingerprint),
]


def _name(case: Case) -> str:
    return case.tamper.__name__[3:]


# One tampering per plan id runs in ci; every variant runs in the full profile.
CI_CASES = {"changed_byte", "deleted_log", "swapped_logs", "second_gzip_member",
            "flipped_signature", "deleted_middle_digest", "copied_digest",
            "deleted_newest_digest", "resigned_with_a_foreign_key"}
RUN_CASES = Profile.from_environment().pick(
    ci=[c for c in CASES if _name(c) in CI_CASES], full=CASES)


def validate(trail: Trail, *, end_time: str | None = None):  # type: ignore[no-untyped-def]
    """`aws cloudtrail validate-logs` and `searchtrail trail validate`, side by side (concurrently)."""
    key_id, secret = trail.server.credentials()
    aws_env = {"AWS_ENDPOINT_URL_CLOUDTRAIL": trail.server.endpoint,
               "AWS_ENDPOINT_URL_S3": trail.moto.endpoint, "AWS_ACCESS_KEY_ID": key_id,
               "AWS_SECRET_ACCESS_KEY": secret, "AWS_CONFIG_FILE": "/dev/null",
               "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    common = ["--trail-arn", trail.arn, "--start-time", "2020-01-01T00:00:00Z",
              "--region", REGION, "--verbose"] + (["--end-time", end_time] if end_time else [])
    with ThreadPoolExecutor(2) as pool:
        aws = pool.submit(aws_cli, "cloudtrail", "validate-logs", *common, env=aws_env)
        ours = pool.submit(searchtrail_cli, "trail", "validate", *common, "--s3-endpoint-url",
                           trail.moto.endpoint, "--data-dir", str(trail.server.data_dir),
                           env=dict(MOTO_CREDENTIALS))
        return aws.result(), ours.result()


@pytest.mark.parametrize("case", RUN_CASES, ids=[f"{c.id}-{_name(c)}" for c in RUN_CASES])
def test_tampering_is_reported(trail: Trail, case: Case, ledger) -> None:  # type: ignore[no-untyped-def]
    try:
        lines = case.tamper(trail)
        aws, ours = validate(trail)
    finally:
        restore(trail)
    ours_saw = ours.returncode == 1 and all(line in ours.stderr for line in lines)
    if case.aws_sees:
        aws_saw = aws.returncode == 1 and all(line in aws.stderr for line in lines)
    else:  # the AWS CLI's blind spot: it exits 0 (if it did not, this case would prove nothing)
        aws_saw = aws.returncode == 0
    ledger.add(case.id, tamper_cases=1, tamper_detected=int(ours_saw and aws_saw))
    ledger.note(case.id, **{_name(case): "detected" if ours_saw and aws_saw else "MISSED"})
    assert aws_saw, f"validate-logs rc {aws.returncode}\n{aws.stdout}\n{aws.stderr}\nwanted {lines}"
    assert ours_saw, f"trail validate rc {ours.returncode}\n{ours.stdout}\n{ours.stderr}\nwanted {lines}"


def test_untouched_trail_is_valid_after_every_restore(trail: Trail, ledger) -> None:  # type: ignore[no-untyped-def]
    """T11, the negative control: the restores left exactly the delivered objects, all valid."""
    present = bucket_etags(trail.s3, BUCKET)
    assert present == {key: f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'
                       for key, (body, _) in trail.snapshot.items()}
    digests, logs = len(trail.digests), len(trail.logs)
    assert len([k for k in present if "/CloudTrail/" in k]) == logs
    aws, ours = validate(trail)
    expected = (f"{digests}/{digests}", f"{logs}/{logs}")
    clean = (aws.returncode == 0 and counts(aws.stdout) == expected and ours.returncode == 0
             and counts(ours.stdout) == expected)
    ledger.add("T11", tamper_cases=1, tamper_detected=int(clean))
    ledger.note("T11", control="untouched trail, expected verdict: all valid",
                digests=digests, log_files=logs)
    assert aws.returncode == 0 and counts(aws.stdout) == expected, aws.stdout + aws.stderr
    assert ours.returncode == 0 and counts(ours.stdout) == expected, ours.stdout + ours.stderr


def _public_keys(server: ServerProcess) -> list[dict]:
    return server.client("cloudtrail").list_public_keys(
        StartTime=datetime(2020, 1, 1, tzinfo=timezone.utc),
        EndTime=datetime.now(timezone.utc) + timedelta(days=400))["PublicKeyList"]


def test_key_rotation_mid_window_keeps_every_digest_valid(trail: Trail, ledger) -> None:  # type: ignore[no-untyped-def]
    """T10: a signing key lives 30 days (not configurable); the digest after it expires gets a
    new key. The server runs under libfaketime and, while logging, its clock jumps to just
    before the first key's end, so one chain is signed by both keys."""
    if trail.clock is None:
        faketime_library()  # fails in CI, skips elsewhere, saying how to install it
    (first,) = _public_keys(trail.server)
    cloudtrail = trail.server.client("cloudtrail")
    aoss = trail.server.client("opensearchserverless")
    cloudtrail.start_logging(Name="tamper")
    before = len(_digest_keys(trail.s3))
    wait_for(lambda: aoss.list_collections() and len(_digest_keys(trail.s3)) > before,
             seconds=30, what="a digest of the new chain under the first key")
    jump = first["ValidityEndTime"] - datetime.now(timezone.utc) - timedelta(seconds=3)
    trail.clock.set_offset(int(jump.total_seconds()))

    def second_key_signed() -> bool:
        aoss.list_collections()  # something to deliver on both sides of the rotation
        keys = {k["Fingerprint"] for k in _public_keys(trail.server)} - {first["Fingerprint"]}
        digests = read_digests(trail.s3, BUCKET, _digest_keys(trail.s3))
        return bool(keys & {d.body["digestPublicKeyFingerprint"] for d in digests})

    wait_for(second_key_signed, seconds=30, what="a digest signed by the next key")
    cloudtrail.stop_logging(Name="tamper")
    wait_for(lambda: chain_closed(trail.server, "tamper"), seconds=30, what="the final digest")

    keys = sorted(_public_keys(trail.server), key=lambda k: k["ValidityStartTime"])
    content = read_bucket(trail.s3, BUCKET)
    digests = read_digests(trail.s3, BUCKET, content.digest_keys)
    records = stored_records(trail.server)
    delivery = check_delivery([], content, digests, stored_ids={r["eventID"] for r in records})
    signers = [d.body["digestPublicKeyFingerprint"] for d in digests]
    by_key = {d.key: d for d in digests}
    fingerprints = [k["Fingerprint"] for k in keys]
    links = {(by_key[d.body["previousDigestS3Object"]].body["digestPublicKeyFingerprint"],
              d.body["digestPublicKeyFingerprint"])
             for d in digests if d.body.get("previousDigestS3Object") in by_key}
    fake_end = (keys[-1]["ValidityStartTime"] + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    aws, ours = validate(trail, end_time=fake_end)
    logs = len(content.log_keys)
    expected = (f"{len(digests)}/{len(digests)}", f"{logs}/{logs}")
    valid = (aws.returncode == 0 and counts(aws.stdout) == expected and ours.returncode == 0
             and counts(ours.stdout) == expected)
    gap = (keys[-1]["ValidityStartTime"] - keys[0]["ValidityEndTime"]).total_seconds()
    ledger.add("T10", tamper_cases=1,
               tamper_detected=int(valid and len(set(signers)) == 2 and tuple(fingerprints) in links))
    ledger.note("T10", keys=len(keys), digests=len(digests), signed_by=len(set(signers)),
                seconds_between_key_windows=gap, validity_overlap=gap < 0)
    assert len(keys) == 2 and set(signers) == {k["Fingerprint"] for k in keys}, (keys, signers)
    assert delivery.ok, str(delivery)
    assert tuple(fingerprints) in links, "no digest signed by the new key follows one by the old"
    assert gap < 0, f"the key windows do not overlap (AWS's do): {gap} s between them"
    assert aws.returncode == 0 and counts(aws.stdout) == expected, aws.stdout + aws.stderr
    assert ours.returncode == 0 and counts(ours.stdout) == expected, ours.stdout + ours.stderr
