"""The AWS SigV4 test suite (both published copies) run against auth.sigv4's verifier.

Expectations come from AWS's files, not from this project: the canonical requests, strings
to sign and signatures must match byte for byte, every signed request must verify (except
the legacy copy's known-bad ``get-vanilla-with-session-token.sreq``), and every one-byte
change in a significant position must be rejected unless SigV4 defines the two requests as
equal (reliability plan §1a, step 4). The data is a copy of the suite in tests/data/sigv4
(override with SEARCHTRAIL_SIGV4_SUITE).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qsl

import pytest

from searchtrail.auth.sigv4 import (
    AUTH_ERROR_CODES,
    INVALID_SIGNATURE,
    MISMATCH_MESSAGE,
    UNRECOGNIZED_CLIENT,
    HttpRequest,
    SigV4Error,
    StaticCredential,
    Verified,
    canonical_request,
    parse_authorization,
    signature,
    signing_key,
    string_to_sign,
    verify,
)

SUITE = Path(os.environ.get("SEARCHTRAIL_SIGV4_SUITE", Path(__file__).parents[1] / "data" / "sigv4"))
NEWER = SUITE / "aws-signing-test-suite" / "v4"
LEGACY = SUITE / "aws4_testsuite"

ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
SERVICE = "service"
TIMESTAMP = datetime(2015, 8, 30, 12, 36, tzinfo=timezone.utc)
FIVE_MIN = timedelta(minutes=5)
BAD_LEGACY = "get-vanilla-with-session-token"
# Equivalence class of plan §1a: segments that '..' removes (these cases normalise to "/").
DOT_DOT_CASES = {"get-relative-normalized", "get-relative-relative-normalized",
                 "normalize-path/get-relative", "normalize-path/get-relative-relative"}


# --------------------------------------------------------------------------- fixtures


def parse_raw(data: bytes) -> HttpRequest:
    """Raw HTTP/1.1 request → HttpRequest, the way the gateway hands it over (latin-1 str).

    Folded continuation lines (leading SP/HTAB) are joined to the previous value with one
    space; duplicate headers stay separate; the body is everything after the first blank line.
    """
    head, _, body = data.partition(b"\n\n")
    lines = head.decode("latin-1").split("\n")
    method, _, rest = lines[0].partition(" ")
    target, _, version = rest.rpartition(" ")
    assert version == "HTTP/1.1", lines[0]
    path, _, query = target.partition("?")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t":
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip(" \t"))
        else:
            name, colon, value = line.partition(":")
            assert colon, line
            headers.append((name, value))
    return HttpRequest(method=method, raw_path=path, query_string=query,
                       headers=tuple(headers), body=body)


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # "newer" | "legacy" | "query"
    request: HttpRequest
    creq: bytes
    sts: bytes
    signature: str
    normalize: bool
    token: str | None
    expires: int | None = None
    omit_session_token: bool = False

    def lookup(self, key_id: str) -> StaticCredential | None:
        return StaticCredential(ACCESS_KEY, SECRET, self.token) if key_id == ACCESS_KEY else None


def _context(name: str) -> dict:
    return json.loads((NEWER / name / "context.json").read_text())


def _newer_cases() -> Iterator[Case]:
    if not NEWER.is_dir():
        return
    for folder in sorted(p for p in NEWER.iterdir() if p.is_dir()):
        ctx = _context(folder.name)
        assert ctx["credentials"]["access_key_id"] == ACCESS_KEY
        assert ctx["credentials"]["secret_access_key"] == SECRET
        assert (ctx["region"], ctx["service"]) == (REGION, SERVICE)
        assert ctx["timestamp"] == "2015-08-30T12:36:00Z"
        token = ctx["credentials"].get("token")
        yield Case(folder.name, "newer",
                   parse_raw((folder / "header-signed-request.txt").read_bytes()),
                   (folder / "header-canonical-request.txt").read_bytes(),
                   (folder / "header-string-to-sign.txt").read_bytes(),
                   (folder / "header-signature.txt").read_text().strip(),
                   ctx["normalize"], token)
        yield Case(folder.name, "query",
                   parse_raw((folder / "query-signed-request.txt").read_bytes()),
                   (folder / "query-canonical-request.txt").read_bytes(),
                   (folder / "query-string-to-sign.txt").read_bytes(),
                   (folder / "query-signature.txt").read_text().strip(),
                   ctx["normalize"], token, ctx["expiration_in_seconds"],
                   bool(ctx.get("omit_session_token")))


def _legacy_token(stem: str) -> str | None:
    """The credential store's token for a legacy case: from the newer copy's context.json."""
    for name in (stem, f"{stem}-normalized"):
        if (NEWER / name / "context.json").exists():
            return _context(name)["credentials"].get("token")
    return None


def _legacy_cases() -> Iterator[Case]:
    if not LEGACY.is_dir():
        return
    for sreq in sorted(LEGACY.rglob("*.sreq")):
        stem = sreq.stem
        case_id = sreq.parent.relative_to(LEGACY).as_posix()
        authz = sreq.with_suffix(".authz").read_text()
        yield Case(case_id, "legacy", parse_raw(sreq.read_bytes()),
                   sreq.with_suffix(".creq").read_bytes(), sreq.with_suffix(".sts").read_bytes(),
                   parse_authorization(authz).signature, True, _legacy_token(stem))


NEWER_CASES = [c for c in _newer_cases() if c.kind == "newer"]
QUERY_CASES = [c for c in _newer_cases() if c.kind == "query"]
LEGACY_CASES = list(_legacy_cases())
HEADER_CASES = NEWER_CASES + LEGACY_CASES


def _ids(cases: list[Case]) -> list[str]:
    return [f"{c.kind}:{c.id}" for c in cases]


def _header(req: HttpRequest, name: str) -> str:
    values = [v for n, v in req.headers if n.lower() == name]
    assert len(values) == 1, (name, values)
    return values[0].strip()


def _with_authorization(req: HttpRequest, value: str) -> HttpRequest:
    return replace(req, headers=tuple((n, value) if n.lower() == "authorization" else (n, v)
                                      for n, v in req.headers))


def _repaired(case: Case) -> Case:
    """The legacy session-token case with its .authz value put in (it ships a wrong one)."""
    if case.kind == "legacy" and case.id == BAD_LEGACY:
        authz = (LEGACY / BAD_LEGACY / f"{BAD_LEGACY}.authz").read_text()
        return replace(case, request=_with_authorization(case.request, authz))
    return case


def _query_params(case: Case) -> dict[str, str]:
    return dict(parse_qsl(case.request.query_string, keep_blank_values=True))


def _signed_headers(case: Case) -> tuple[str, ...]:
    if case.kind == "query":
        return tuple(_query_params(case)["X-Amz-SignedHeaders"].split(";"))
    auth = _header(case.request, "authorization")
    return tuple(auth.split("SignedHeaders=")[1].split(",")[0].split(";"))


def _verify(case: Case, *, now: datetime = TIMESTAMP, service: str | None = SERVICE,
            region_check=lambda region: region == REGION, request: HttpRequest | None = None,
            max_skew: timedelta = FIVE_MIN) -> Verified:
    return verify(request or case.request, lookup=case.lookup, now=now, max_skew=max_skew,
                  service=service, region_check=region_check, normalize_path=case.normalize)


# --------------------------------------------------------------------------- the data itself


def test_fixtures_are_complete_and_untouched() -> None:
    assert SUITE.is_dir(), f"SigV4 suite not found at {SUITE}"
    assert len(NEWER_CASES) == 38 and len(QUERY_CASES) == 38
    assert len(LEGACY_CASES) == 34
    sums = (SUITE / "SHA256SUMS").read_text().splitlines()
    assert len(sums) > 200
    for line in sums:
        digest, name = line.split(maxsplit=1)
        path = SUITE / name.lstrip("*")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, name


# --------------------------------------------------------------------------- positive cases


@pytest.mark.parametrize("case", HEADER_CASES + QUERY_CASES, ids=_ids(HEADER_CASES + QUERY_CASES))
def test_canonical_request_and_string_to_sign_match_suite(case: Case) -> None:
    exclude = ("X-Amz-Signature", "X-Amz-Security-Token") if case.omit_session_token else None
    creq = canonical_request(case.request, _signed_headers(case), normalize_path=case.normalize,
                             exclude_query=exclude if case.kind == "query" else None)
    assert creq.encode("utf-8") == case.creq
    if case.kind == "query":
        amz_date = _query_params(case)["X-Amz-Date"]
    else:
        amz_date = _header(case.request, "x-amz-date")
    scope = f"20150830/{REGION}/{SERVICE}/aws4_request"
    sts = string_to_sign(amz_date, scope, creq)
    assert sts.encode("utf-8") == case.sts
    assert signature(signing_key(SECRET, "20150830", REGION, SERVICE), sts) == case.signature


@pytest.mark.parametrize("case", HEADER_CASES + QUERY_CASES, ids=_ids(HEADER_CASES + QUERY_CASES))
def test_signed_request_verifies(case: Case) -> None:
    if case.kind == "legacy" and case.id == BAD_LEGACY:
        with pytest.raises(SigV4Error) as err:
            _verify(case)
        assert (err.value.code, err.value.message, err.value.status) == (
            INVALID_SIGNATURE, MISMATCH_MESSAGE, 403)
        case = _repaired(case)
    verified = _verify(case)
    assert (verified.access_key_id, verified.region, verified.service) == (
        ACCESS_KEY, REGION, SERVICE)
    assert verified.amz_date == TIMESTAMP
    assert verified.credential.access_key_id == ACCESS_KEY
    assert verified.presigned is (case.kind == "query")


def test_pass_counts_match_the_plan() -> None:
    """38/38 newer, 33/34 legacy (its get-vanilla-with-session-token is wrong), 38/38 query."""
    def accepted(cases: list[Case]) -> list[str]:
        ok = []
        for case in cases:
            try:
                _verify(case)
                ok.append(case.id)
            except SigV4Error:
                pass
        return ok

    assert len(accepted(NEWER_CASES)) == 38
    legacy_ok = accepted(LEGACY_CASES)
    assert len(legacy_ok) == 33
    assert {c.id for c in LEGACY_CASES} - set(legacy_ok) == {BAD_LEGACY}
    assert len(accepted(QUERY_CASES)) == 38
    assert len(accepted([_repaired(c) for c in LEGACY_CASES])) == 34


# --------------------------------------------------------------------------- clock and scope


def _rejects(case: Case, code: str, **kwargs) -> SigV4Error:
    with pytest.raises(SigV4Error) as err:
        _verify(case, **kwargs)
    assert err.value.code == code and err.value.status == 403
    return err.value


@pytest.mark.parametrize("case", HEADER_CASES, ids=_ids(HEADER_CASES))
def test_clock_window_edges(case: Case) -> None:
    case = _repaired(case)
    second = timedelta(seconds=1)
    late = _rejects(case, INVALID_SIGNATURE, now=TIMESTAMP + FIVE_MIN + second)
    assert late.message == ("Signature expired: 20150830T123600Z is now earlier than "
                            "20150830T123601Z (20150830T124101Z - 5 min.)")
    early = _rejects(case, INVALID_SIGNATURE, now=TIMESTAMP - FIVE_MIN - second)
    assert early.message == ("Signature not yet current: 20150830T123600Z is still later than "
                             "20150830T123559Z (20150830T123059Z + 5 min.)")
    for offset in (FIVE_MIN, FIVE_MIN - second, -FIVE_MIN, -(FIVE_MIN - second)):
        assert _verify(case, now=TIMESTAMP + offset).access_key_id == ACCESS_KEY


@pytest.mark.parametrize("case", QUERY_CASES, ids=_ids(QUERY_CASES))
def test_presigned_expiry(case: Case) -> None:
    assert case.expires == 3600
    window = timedelta(seconds=case.expires)
    assert _verify(case, now=TIMESTAMP + window).presigned
    err = _rejects(case, INVALID_SIGNATURE, now=TIMESTAMP + window + timedelta(seconds=1))
    assert err.message.startswith("Signature expired: 20150830T123600Z is now earlier than")
    _rejects(case, INVALID_SIGNATURE, now=TIMESTAMP - FIVE_MIN - timedelta(seconds=1))


@pytest.mark.parametrize("case", HEADER_CASES + QUERY_CASES, ids=_ids(HEADER_CASES + QUERY_CASES))
def test_wrong_service_or_region_is_a_scope_error(case: Case) -> None:
    case = _repaired(case)
    err = _rejects(case, INVALID_SIGNATURE, service="aoss")
    assert err.message == "Credential should be scoped to correct service: 'aoss'."
    assert err.claimed_access_key_id == ACCESS_KEY
    err = _rejects(case, INVALID_SIGNATURE, region_check=lambda region: region == "eu-west-1")
    assert err.message == "Credential should be scoped to a valid region, not 'us-east-1'."


# --------------------------------------------------------------------------- header hand-over


def _case(kind: str, case_id: str) -> Case:
    return next(c for c in HEADER_CASES if c.kind == kind and c.id == case_id)


@pytest.mark.parametrize("kind, case_id", [("newer", "get-header-key-duplicate"),
                                           ("legacy", "get-header-value-order")])
def test_duplicate_headers_must_stay_separate(kind: str, case_id: str) -> None:
    """Frameworks that merge repeated headers with ", " break the signature (plan §1a.6)."""
    case = _case(kind, case_id)
    dups = [v for n, v in case.request.headers if n.lower() == "my-header1"]
    assert len(dups) >= 3
    merged = [(n, v) for n, v in case.request.headers if n.lower() != "my-header1"]
    merged.insert(1, ("My-Header1", ", ".join(dups)))
    with pytest.raises(SigV4Error) as err:
        _verify(case, request=replace(case.request, headers=tuple(merged)))
    assert err.value.code == INVALID_SIGNATURE
    joined = [(n, v) for n, v in case.request.headers if n.lower() != "my-header1"]
    joined.insert(1, ("My-Header1", ",".join(dups)))  # RFC 9110 combination without spaces
    assert _verify(case, request=replace(case.request, headers=tuple(joined)))


def test_raw_obs_fold_in_a_value_is_unfolded() -> None:
    case = _case("newer", "get-header-value-multiline")
    raw = (NEWER / case.id / "header-signed-request.txt").read_bytes().decode("latin-1")
    folded = raw.split("My-Header1:", 1)[1].split("\nX-Amz-Date", 1)[0]
    assert folded == "value1\n  value2\n     value3"
    headers = tuple((n, folded if n == "My-Header1" else v) for n, v in case.request.headers)
    assert _verify(case, request=replace(case.request, headers=headers))
    crlf = tuple((n, folded.replace("\n", "\r\n") if n == "My-Header1" else v)
                 for n, v in case.request.headers)
    assert _verify(case, request=replace(case.request, headers=crlf))


# --------------------------------------------------------------------------- one-byte mutations


def _flip(text, index: int):
    if isinstance(text, bytes):
        new = b"Y" if text[index:index + 1] == b"X" else b"X"
        return text[:index] + new + text[index + 1:]
    new = "Y" if text[index] == "X" else "X"
    return text[:index] + new + text[index + 1:]


@dataclass(frozen=True)
class Mutation:
    where: str
    request: HttpRequest
    equivalent: bool = False  # SigV4 defines it as the same request: must still verify
    expect_code: str | None = None  # a specific rejection code, when one is required


def mutations(case: Case) -> Iterator[Mutation]:
    req = case.request
    signed = set(_signed_headers(case))
    for i in range(len(req.method)):
        yield Mutation(f"method[{i}]", replace(req, method=_flip(req.method, i)))
    expected_path = posixpath.normpath(req.raw_path)
    for i in range(len(req.raw_path)):
        path = _flip(req.raw_path, i)
        same = case.id in DOT_DOT_CASES and posixpath.normpath(path) == expected_path == "/"
        yield Mutation(f"path[{i}]", replace(req, raw_path=path), equivalent=same)
    for i in range(len(req.query_string)):
        yield Mutation(f"query[{i}]", replace(req, query_string=_flip(req.query_string, i)))
    for h, (name, value) in enumerate(req.headers):
        lname = name.lower()
        if lname not in signed and lname not in ("authorization", "x-amz-date",
                                                 "x-amz-security-token"):
            continue
        # An unsigned session token must be caught by the token check (plan §1a).
        code = UNRECOGNIZED_CLIENT if (lname == "x-amz-security-token"
                                       and lname not in signed) else None
        headers = list(req.headers)
        for i in range(len(value)):
            headers[h] = (name, _flip(value, i))
            yield Mutation(f"{name}:value[{i}]", replace(req, headers=tuple(headers)),
                           expect_code=code)
        for i in range(len(name)):
            new_name = _flip(name, i)
            headers[h] = (new_name, value)
            yield Mutation(f"{name}:name[{i}]", replace(req, headers=tuple(headers)),
                           equivalent=new_name.lower() == lname)
        headers[h] = (name, value)
    for i in range(len(req.body)):
        yield Mutation(f"body[{i}]", replace(req, body=_flip(req.body, i)))


MUTATED_CASES = [_repaired(c) for c in HEADER_CASES] + QUERY_CASES


@pytest.mark.parametrize("case", MUTATED_CASES, ids=_ids(MUTATED_CASES))
def test_every_significant_one_byte_change_is_rejected(case: Case) -> None:
    assert _verify(case).access_key_id == ACCESS_KEY  # the unmutated control
    failures = []
    rejected = equivalent = 0
    for mutation in mutations(case):
        try:
            _verify(case, request=mutation.request)
        except SigV4Error as err:
            if mutation.equivalent:
                failures.append(f"{mutation.where}: equivalent request rejected: {err}")
            elif err.code not in AUTH_ERROR_CODES or err.status != 403:
                failures.append(f"{mutation.where}: unexpected error {err.code}/{err.status}")
            elif mutation.expect_code and err.code != mutation.expect_code:
                failures.append(f"{mutation.where}: {err.code}, expected {mutation.expect_code}")
            else:
                rejected += 1
        else:
            if mutation.equivalent:
                equivalent += 1
            else:
                failures.append(f"{mutation.where}: accepted")
    assert not failures, "\n".join(failures[:40])
    assert rejected > 50  # every case has at least the Authorization/date bytes to mutate
    if case.id in DOT_DOT_CASES:
        assert equivalent > 0


def test_mutation_totals() -> None:
    """Pins the size of the negative set so that a parser change cannot quietly shrink it."""
    total = sum(1 for case in MUTATED_CASES for m in mutations(case) if not m.equivalent)
    assert total > 20_000
