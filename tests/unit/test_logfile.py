"""Log file keys and bodies: the spec's layout, one deterministic gzip member."""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from datetime import datetime, timedelta, timezone

import pytest

from searchtrail.audit.logfile import (build_log_file, gzip_member, log_file_key,
                                      log_file_of_joined, unique_suffix)

UTC = timezone.utc


def record(event_time: str, name: str = "ListCollections", **extra: object) -> str:
    return json.dumps({"eventVersion": "1.11", "eventTime": event_time, "eventName": name,
                       **extra}, separators=(",", ":"))


def test_key_matches_the_spec_example() -> None:
    key = log_file_key(prefix=None, org_id=None, account="111122223333", region="us-east-2",
                       delivered_at=datetime(2015, 8, 1, 2, 10, 59, 999, tzinfo=UTC),
                       unique="Mu0KsOhtH1ar15ZZ")
    assert key == ("AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/01/"
                   "111122223333_CloudTrail_us-east-2_20150801T0210Z_Mu0KsOhtH1ar15ZZ.json.gz")


def test_key_with_prefix_and_organization_and_non_utc_time() -> None:
    plus_two = timezone(timedelta(hours=2))
    key = log_file_key(prefix="logs/audit", org_id="o-exampleorgid", account="111122223333",
                       region="eu-west-1",
                       delivered_at=datetime(2026, 1, 1, 1, 30, tzinfo=plus_two),
                       unique="abcdefghijklmnop")
    assert key == ("logs/audit/AWSLogs/o-exampleorgid/111122223333/CloudTrail/eu-west-1/"
                   "2025/12/31/111122223333_CloudTrail_eu-west-1_20251231T2330Z_"
                   "abcdefghijklmnop.json.gz")
    # an empty prefix is no prefix (the CLI tests it for truth)
    assert log_file_key(prefix="", org_id=None, account="1", region="r",
                        delivered_at=datetime(2026, 1, 1, tzinfo=UTC),
                        unique="A" * 16).startswith("AWSLogs/1/CloudTrail/r/2026/01/01/")


@pytest.mark.parametrize("unique", ["short", "x" * 17, "abcdefghijklmno-", "abcdefghijklmnoé"])
def test_key_refuses_a_bad_unique_string(unique: str) -> None:
    with pytest.raises(ValueError):
        log_file_key(prefix=None, org_id=None, account="1", region="r",
                     delivered_at=datetime(2026, 1, 1, tzinfo=UTC), unique=unique)


def test_key_refuses_naive_times() -> None:
    with pytest.raises(ValueError):
        log_file_key(prefix=None, org_id=None, account="1", region="r",
                     delivered_at=datetime(2026, 1, 1), unique="A" * 16)


def test_unique_suffix_is_16_alphanumerics_and_deterministic() -> None:
    values = {unique_suffix(f"seed-{i}".encode()) for i in range(500)}
    assert len(values) == 500
    for value in values:
        assert len(value) == 16 and value.isascii() and value.isalnum()
    assert unique_suffix(b"batch 42") == unique_suffix(b"batch 42")


def test_body_is_the_records_joined_verbatim() -> None:
    records = [
        '{"eventTime": "2026-11-25T09:01:02Z", "eventName": "A"}',  # spaces kept as stored
        record("2026-11-25T09:00:00Z", "B", requestParameters={"name": "caf\u00e9"}),
        record("2026-11-25T09:05:00Z", "C"),
    ]
    log = build_log_file(records)
    raw = gzip.decompress(log.body)
    assert raw == ('{"Records":[' + ",".join(records) + "]}").encode("utf-8")
    assert json.loads(raw)["Records"][1]["requestParameters"]["name"] == "caf\u00e9"
    assert log.sha256 == hashlib.sha256(raw).hexdigest()
    assert log.count == 3
    assert log.newest_event_time == datetime(2026, 11, 25, 9, 5, tzinfo=UTC)
    assert log.oldest_event_time == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_body_is_one_deterministic_gzip_member() -> None:
    records = [record(f"2026-11-25T09:{m:02d}:00Z") for m in range(50)]
    first = build_log_file(records)
    second = build_log_file(list(records))
    assert first.body == second.body and first.sha256 == second.sha256
    # header: magic, deflate, no flags (so no file name), mtime 0
    assert first.body[:4] == b"\x1f\x8b\x08\x00"
    assert first.body[4:8] == b"\x00\x00\x00\x00"
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    inflater.decompress(first.body)
    inflater.flush()
    assert inflater.eof and inflater.unused_data == b""
    # another order is another file
    assert build_log_file(records[::-1]).sha256 != first.sha256


def test_joined_records_and_their_times_give_the_file_the_strings_give() -> None:
    """The delivery worker reads a file's records joined with commas in one SQL aggregate,
    with their count and stored event times; the file is the one the record strings make."""
    records = [record(f"2026-11-25T09:{m:02d}:00Z", requestParameters={"name": "é" * m})
               for m in range(30)]
    times = tuple(int(datetime(2026, 11, 25, 9, m, tzinfo=UTC).timestamp()) for m in range(30))
    from_strings = build_log_file(records)
    joined = ",".join(records).encode("utf-8")
    from_joined = log_file_of_joined(joined, len(records), max(times), min(times))
    assert from_joined == from_strings
    assert json.loads(gzip.decompress(from_joined.body)) == {
        "Records": [json.loads(r) for r in records]}
    assert from_joined.sha256 == hashlib.sha256(gzip.decompress(from_joined.body)).hexdigest()


def test_gzip_member_round_trips_empty_and_large() -> None:
    for data in (b"", b"x" * 1_000_000, bytes(range(256)) * 100):
        assert gzip.decompress(gzip_member(data)) == data


def test_a_gzip_member_of_parts_holds_them_joined() -> None:
    """Parts streamed through one compressor: one member whose CRC and size (checked by
    gzip.decompress) cover them all, as if they had been joined first."""
    parts = (b'{"Records":[', bytes(range(256)) * 4_000, b"", b"]}")
    member = gzip_member(*parts)
    assert gzip.decompress(member) == b"".join(parts)
    assert gzip_member(*parts) == member
    assert gzip_member() == gzip_member(b"") and gzip.decompress(gzip_member()) == b""


@pytest.mark.parametrize("records", [[], ["not json"], ['{"eventName":"X"}'], ["[1]"]])
def test_bad_records_are_refused(records: list[str]) -> None:
    with pytest.raises(ValueError):
        build_log_file(records)


@pytest.mark.parametrize("joined, count", [(None, 0), (b"", 0), (b"", 1), (b'{"a":1}', 0)])
def test_a_joined_file_needs_records(joined: bytes | None, count: int) -> None:
    with pytest.raises(ValueError):
        log_file_of_joined(joined, count, 0, 0)  # type: ignore[arg-type]


def test_times_must_be_datetimes() -> None:
    from searchtrail.audit.logfile import format_event_time

    with pytest.raises(TypeError, match="expected an aware datetime, got str"):
        format_event_time("2026-11-25 09:00:00+00:00")  # type: ignore[arg-type]
