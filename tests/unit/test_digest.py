"""Digest files: key layout, exact JSON fields, signing string, and the AWS CLI's own verifier."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import zlib
from datetime import datetime, timedelta, timezone
from types import ModuleType

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from searchtrail.audit.digest import (
    Digest,
    DigestLogEntry,
    PreviousDigest,
    build_digest,
    digest_key,
    signing_string,
)
from searchtrail.audit.logfile import build_log_file
from searchtrail.audit.signing import SigningKey, SigningKeys
from tests.unit.test_signing import MemoryRepo

UTC = timezone.utc
ACCOUNT = "111122223333"
BUCKET = "amzn-s3-demo-bucket"
T0 = datetime(2015, 8, 17, 14, 1, 31, tzinfo=UTC)

FIELDS = [
    "awsAccountId", "digestStartTime", "digestEndTime", "digestS3Bucket", "digestS3Object",
    "digestPublicKeyFingerprint", "digestSignatureAlgorithm", "newestEventTime",
    "oldestEventTime", "previousDigestS3Bucket", "previousDigestS3Object",
    "previousDigestHashValue", "previousDigestHashAlgorithm", "previousDigestSignature",
    "logFiles",
]


def import_cli_validation() -> ModuleType:
    """awscli's validation module, imported without letting awscli rebind ``botocore``.

    Importing awscli installs an import hook that maps a *later* ``import botocore`` to its
    vendored copy and appends to AWS_DATA_PATH; importing the project's botocore first and
    undoing both keeps the rest of the test session unaffected."""
    import botocore.exceptions  # noqa: F401  (the project's botocore, before awscli's hook)

    saved_path = os.environ.get("AWS_DATA_PATH")
    try:
        from awscli.customizations.cloudtrail import validation
    finally:
        sys.meta_path[:] = [finder for finder in sys.meta_path
                            if type(finder).__name__ != "TopLevelImportAliasFinder"]
        if saved_path is None:
            os.environ.pop("AWS_DATA_PATH", None)
        else:
            os.environ["AWS_DATA_PATH"] = saved_path
    return validation


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    repo = MemoryRepo()
    return SigningKeys(lambda a, r: repo.scoped(a, r)).current(ACCOUNT, "us-east-2", T0)


def key_at(end: datetime, **kwargs: object) -> str:
    params = dict(prefix=None, org_id=None, account=ACCOUNT, region="us-east-2",
                  trail_name="your-trail-name", home_region="us-east-2", end=end)
    params.update(kwargs)
    return digest_key(**params)  # type: ignore[arg-type]


def log_entry(minute: int, seed: str = "a") -> DigestLogEntry:
    records = [json.dumps({"eventTime": f"2015-08-17T14:{minute:02d}:00Z", "seed": seed}),
               json.dumps({"eventTime": f"2015-08-17T14:{minute + 5:02d}:27Z", "seed": seed})]
    log = build_log_file(records)
    return DigestLogEntry.of(BUCKET, f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-2/2015/08/17/"
                                     f"{ACCOUNT}_CloudTrail_us-east-2_20150817T14{minute:02d}Z_"
                                     f"9nYN7gp2eWAJHIfT.json.gz", log)


def make_chain(signing_key: SigningKey) -> tuple[Digest, Digest]:
    first = build_digest(account=ACCOUNT, bucket=BUCKET, key=key_at(T0),
                         start=T0 - timedelta(hours=1), end=T0, log_files=[],
                         previous=None, signing_key=signing_key)
    end = T0 + timedelta(hours=1)
    second = build_digest(account=ACCOUNT, bucket=BUCKET, key=key_at(end), start=T0, end=end,
                          log_files=[log_entry(42), log_entry(10, "b")],
                          previous=first.as_previous(), signing_key=signing_key)
    return first, second


def test_key_matches_the_spec_example() -> None:
    assert key_at(datetime(2015, 8, 17, 15, 1, 31, 500000, tzinfo=UTC)) == (
        "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_"
        "CloudTrail-Digest_us-east-2_your-trail-name_us-east-2_20150817T150131Z.json.gz")
    assert key_at(T0, prefix="p/q", org_id="o-exampleorgid", region="eu-west-1") == (
        "p/q/AWSLogs/o-exampleorgid/111122223333/CloudTrail-Digest/eu-west-1/2015/08/17/"
        "111122223333_CloudTrail-Digest_eu-west-1_your-trail-name_us-east-2_"
        "20150817T140131Z.json.gz")


@pytest.mark.parametrize("prefix,org", [(None, None), ("my/prefix", None), (None, "o-abc123"),
                                        ("x", "o-abc123")])
def test_key_is_the_one_the_cli_computes_and_matches(prefix: str | None, org: str | None) -> None:
    cli = import_cli_validation()
    provider = cli.DigestProvider(s3_client_provider=None, account_id=ACCOUNT,
                                  trail_name="t1", trail_home_region="us-east-1",
                                  trail_source_region="eu-west-1", organization_id=org)
    end = datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC)
    ours = digest_key(prefix=prefix, org_id=org, account=ACCOUNT, region="eu-west-1",
                      trail_name="t1", home_region="us-east-1", end=end)
    # the CLI builds its list marker as the key of a digest ending one minute before start
    assert provider._create_digest_key(end + timedelta(minutes=1), prefix) == ours
    import re

    assert re.match(provider._create_digest_key_regex(prefix), ours)
    assert cli.extract_digest_key_date(ours) == "20260228T235959Z"


def test_starting_digest_has_null_links(signing_key: SigningKey) -> None:
    first, _ = make_chain(signing_key)
    doc = json.loads(first.json_bytes)
    assert list(doc) == FIELDS
    assert doc == {
        "awsAccountId": ACCOUNT,
        "digestStartTime": "2015-08-17T13:01:31Z",
        "digestEndTime": "2015-08-17T14:01:31Z",
        "digestS3Bucket": BUCKET,
        "digestS3Object": key_at(T0),
        "digestPublicKeyFingerprint": signing_key.fingerprint,
        "digestSignatureAlgorithm": "SHA256withRSA",
        "newestEventTime": None,
        "oldestEventTime": None,
        "previousDigestS3Bucket": None,
        "previousDigestS3Object": None,
        "previousDigestHashValue": None,
        "previousDigestHashAlgorithm": None,
        "previousDigestSignature": None,
        "logFiles": [],
    }
    assert first.metadata == {"signature": first.signature, "signature-algorithm": "SHA256withRSA"}
    assert first.fingerprint == signing_key.fingerprint


def test_chained_digest_links_and_log_entries(signing_key: SigningKey) -> None:
    first, second = make_chain(signing_key)
    doc = json.loads(second.json_bytes)
    assert list(doc) == FIELDS
    assert doc["previousDigestS3Bucket"] == BUCKET
    assert doc["previousDigestS3Object"] == first.key
    assert doc["previousDigestHashValue"] == hashlib.sha256(first.json_bytes).hexdigest()
    assert doc["previousDigestHashAlgorithm"] == "SHA-256"
    assert doc["previousDigestSignature"] == first.signature
    assert doc["newestEventTime"] == "2015-08-17T14:47:27Z"
    assert doc["oldestEventTime"] == "2015-08-17T14:10:00Z"
    entry = log_entry(42)
    assert doc["logFiles"][0] == {
        "s3Bucket": BUCKET,
        "s3Object": entry.key,
        "hashValue": entry.sha256,
        "hashAlgorithm": "SHA-256",
        "newestEventTime": "2015-08-17T14:47:27Z",
        "oldestEventTime": "2015-08-17T14:42:00Z",
    }
    assert [f["s3Object"] for f in doc["logFiles"]] == [log_entry(42).key, log_entry(10, "b").key]


def test_signing_string_is_exactly_section_5_2() -> None:
    assert signing_string(digest_end_time="2015-08-17T15:01:31Z", bucket="b", key="k/x.json.gz",
                          digest_sha256="ab" * 32, previous_signature=None) == (
        b"2015-08-17T15:01:31Z\nb/k/x.json.gz\n" + b"ab" * 32 + b"\nnull")
    assert signing_string(digest_end_time="E", bucket="b", key="k", digest_sha256="h",
                          previous_signature="00ff").endswith(b"\nh\n00ff")


def test_signature_covers_the_stored_bytes(signing_key: SigningKey) -> None:
    first, second = make_chain(signing_key)
    public = serialization.load_der_public_key(signing_key.public_der)
    for digest, previous in ((first, None), (second, first.signature)):
        assert gzip.decompress(digest.body) == digest.json_bytes
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        inflater.decompress(digest.body)
        assert inflater.eof and not inflater.unused_data
        assert digest.sha256 == hashlib.sha256(digest.json_bytes).hexdigest()
        to_sign = signing_string(digest_end_time=json.loads(digest.json_bytes)["digestEndTime"],
                                 bucket=BUCKET, key=digest.key, digest_sha256=digest.sha256,
                                 previous_signature=previous)
        public.verify(bytes.fromhex(digest.signature), to_sign, padding.PKCS1v15(),
                      hashes.SHA256())


def test_equal_inputs_give_identical_bytes(signing_key: SigningKey) -> None:
    a1, b1 = make_chain(signing_key)
    a2, b2 = make_chain(signing_key)
    assert (a1.body, a1.json_bytes, a1.signature) == (a2.body, a2.json_bytes, a2.signature)
    assert (b1.body, b1.json_bytes, b1.signature) == (b2.body, b2.json_bytes, b2.signature)


def test_the_aws_cli_verifier_accepts_ours_and_rejects_tampering(signing_key: SigningKey) -> None:
    cli = import_cli_validation()
    validator = cli.Sha256RSADigestValidator()
    for digest in make_chain(signing_key):
        inflated = gzip.decompress(digest.body)

        def data(signature: str = digest.signature, body: bytes = inflated) -> dict:
            loaded = json.loads(body)
            loaded["_signature"] = signature
            return loaded

        validator.validate(BUCKET, digest.key, signing_key.public_b64, data(), inflated)

        edited = inflated.replace(b'"awsAccountId":"111122223333"',
                                  b'"awsAccountId":"111122223334"')
        assert edited != inflated
        with pytest.raises(cli.DigestSignatureError):
            validator.validate(BUCKET, digest.key, signing_key.public_b64, data(body=edited),
                               edited)
        flipped = ("0" if digest.signature[0] != "0" else "1") + digest.signature[1:]
        with pytest.raises(cli.DigestSignatureError):
            validator.validate(BUCKET, digest.key, signing_key.public_b64, data(flipped),
                               inflated)
        with pytest.raises(cli.DigestSignatureError):  # same bytes claimed at another key
            validator.validate(BUCKET, digest.key + "x", signing_key.public_b64,
                               {**data(), "digestS3Object": digest.key + "x"}, inflated)


def test_the_aws_cli_refuses_another_key_and_an_spki_key(signing_key: SigningKey) -> None:
    cli = import_cli_validation()
    validator = cli.Sha256RSADigestValidator()
    first, _ = make_chain(signing_key)
    other_repo = MemoryRepo()
    other = SigningKeys(lambda a, r: other_repo.scoped(a, r)).current(ACCOUNT, "us-east-2", T0)
    inflated = gzip.decompress(first.body)
    data = {**json.loads(inflated), "_signature": first.signature}
    with pytest.raises(cli.DigestSignatureError):
        validator.validate(BUCKET, first.key, other.public_b64, data, inflated)
    import base64

    spki = serialization.load_der_public_key(signing_key.public_der).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(cli.DigestError, match="Unable to load PKCS #1 key"):
        validator.validate(BUCKET, first.key, base64.b64encode(spki).decode(), data, inflated)


def test_previous_and_entries_round_trip_through_json_documents(signing_key: SigningKey) -> None:
    first, _ = make_chain(signing_key)
    link = first.as_previous()
    assert link == PreviousDigest(BUCKET, first.key, first.sha256, first.signature)
    assert PreviousDigest.from_doc(json.loads(json.dumps(link.to_doc()))) == link
    entry = log_entry(3)
    assert DigestLogEntry.from_doc(json.loads(json.dumps(entry.to_doc()))) == entry


def test_start_after_end_is_refused(signing_key: SigningKey) -> None:
    with pytest.raises(ValueError):
        build_digest(account=ACCOUNT, bucket=BUCKET, key=key_at(T0), start=T0,
                     end=T0 - timedelta(seconds=1), log_files=[], previous=None,
                     signing_key=signing_key)
