"""One signed call's CPU cost without the noise of a shared machine: the calls that
`bench.compare --metric instructions` has valgrind's callgrind count instructions over.

`python -m bench.callcost OPERATION SEND SIGNED [WARMUP] [--instrument-calls]` builds a server
in this process on a fresh data directory (no HTTP server, no sockets), seeds the read mix's
store, answers a warm-up of WARMUP read-mix calls (300), signs SIGNED requests of OPERATION and
answers the first SEND of them, 16 at a time, through the same handler the HTTP protocol calls
(every record committed). OPERATION `CreateDeleteMix` is `bench.capacity`'s create/delete mix
(network policies created and deleted in turn, with its 500 live policies created first). Two
runs that differ only in SEND give the instructions of SEND calls: everything else, signing
included, is the same in both and cancels out.

With `--instrument-calls` (under `valgrind --tool=callgrind --instr-atstart=no`) the process
asks callgrind to start instrumenting just before the SEND calls: start-up, imports and the
warm-up then run uninstrumented, about 7x faster, and are not counted.
"""

from __future__ import annotations

import asyncio
import configparser
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.presigned import COLLECTION_NAMES, Signer, create_delete_mix, read_mix, seed_requests

CREATE_DELETE_MIX = "CreateDeleteMix"
OPERATIONS = ("ListCollections", "BatchGetCollection", CREATE_DELETE_MIX)
WARMUP_CALLS = 300
CONCURRENCY = 16  # calls in flight, so commits batch as on a busy server
HOST = "127.0.0.1:4566"
INSTRUMENT_FLAG = "--instrument-calls"
INSTRUMENT_TIMEOUT_SECONDS = 120


def signed_requests(signer: Signer, operation: str,
                    count: int) -> tuple[list[bytes], list[bytes]]:
    """(requests to answer after the seeds and before the warm-up, the ``count`` requests
    whose calls are counted)."""
    if operation == CREATE_DELETE_MIX:
        live, pairs = create_delete_mix(signer, "callcost", (count + 1) // 2)
        return live, pairs[:count]
    return [], _read_requests(signer, operation, count)


def _read_requests(signer: Signer, operation: str, count: int) -> list[bytes]:
    if operation == "ListCollections":
        return [signer.request(operation, {}) for _ in range(count)]
    if operation == "BatchGetCollection":
        return [signer.request(operation, {"names": list(COLLECTION_NAMES[:2])})
                for _ in range(count)]
    raise SystemExit(f"bench.callcost: no requests for {operation!r}; have {', '.join(OPERATIONS)}")


def raw_request(raw: bytes):  # type: ignore[no-untyped-def]
    """The handler's RawRequest of a pre-signed HTTP/1.1 request."""
    from searchtrail.gateway.http import RawRequest

    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = [(name.strip().lower(), value.strip())
               for name, _, value in (line.partition(b":") for line in lines[1:])]
    return RawRequest(method="POST", raw_path="/", query_string="", headers=headers,
                      peer="127.0.0.1", tls=None, body=body)


def start_instrumentation() -> None:
    """Ask callgrind to instrument this process from now on. It answers while this process
    waits for ``callgrind_control`` to exit, so what is counted starts at the same point in
    every run; its output goes to a file, not a pipe, for the same reason. The wait has a
    timeout, so this process keeps running guest code between short sleeps: valgrind then
    takes the command even where vgdb may not ptrace a process blocked in a system call."""
    with tempfile.TemporaryFile() as output:
        try:
            done = subprocess.run(["callgrind_control", "--instr=on", str(os.getpid())],
                                  stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                                  timeout=INSTRUMENT_TIMEOUT_SECONDS)
        except FileNotFoundError:
            raise SystemExit(f"bench.callcost: {INSTRUMENT_FLAG} needs callgrind_control: "
                             "apt-get install valgrind") from None
        except subprocess.TimeoutExpired:
            raise SystemExit(f"bench.callcost: callgrind_control did not answer within "
                             f"{INSTRUMENT_TIMEOUT_SECONDS} s") from None
        output.seek(0)
        said = output.read().decode(errors="replace")
    # callgrind_control exits 0 even when it found no callgrind process: "OK." is the answer
    if done.returncode != 0 or "OK." not in said.split():
        raise SystemExit(f"bench.callcost: {INSTRUMENT_FLAG} needs this process to run under "
                         f"valgrind --tool=callgrind --instr-atstart=no; callgrind_control "
                         f"said: {said.strip()}")


def run(operation: str, send: int, signed: int, warmup_calls: int = WARMUP_CALLS, *,
        instrument_calls: bool = False) -> None:
    from searchtrail.app import build_app, ensure_default_account
    from searchtrail.config import load_settings

    data_dir = Path(tempfile.mkdtemp(prefix="bench-callcost-"))
    try:
        settings = load_settings({"data_dir": data_dir})
        ensure_default_account(settings)
        profile = configparser.ConfigParser()
        profile.read(settings.credentials_path)
        signer = Signer(HOST, profile["default"]["aws_access_key_id"],
                        profile["default"]["aws_secret_access_key"])
        app = build_app(settings)
        setup, counted = signed_requests(signer, operation, signed)
        prelude = [raw_request(raw) for raw in seed_requests(signer)]
        setup_calls = [raw_request(raw) for raw in setup]
        requests = [raw_request(raw) for raw in counted]
        warmup = [raw_request(raw) for raw in read_mix(signer, warmup_calls)]

        async def answer(batch: list) -> None:
            statuses = await asyncio.gather(*(app.aws_calls.respond(r) for r in batch))
            if any(status != 200 for status, _, _ in statuses):
                raise SystemExit(f"bench.callcost: answers {[s for s, _, _ in statuses]}")

        async def answer_all(work: list) -> None:
            for start in range(0, len(work), CONCURRENCY):
                await answer(work[start:start + CONCURRENCY])

        async def calls() -> None:
            app.writer.start()
            try:
                for request in prelude:  # in order: each collection after its policy
                    await answer([request])
                await answer_all(setup_calls)
                await answer_all(warmup)
                if instrument_calls:
                    start_instrumentation()
                await answer_all(requests[:send])
            finally:
                app.writer.stop()

        asyncio.run(calls())
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    instrument_calls = INSTRUMENT_FLAG in args
    args = [arg for arg in args if arg != INSTRUMENT_FLAG]
    if len(args) not in (3, 4) or not all(arg.isdigit() for arg in args[1:]):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    operation, send, signed = args[0], int(args[1]), int(args[2])
    warmup_calls = int(args[3]) if len(args) == 4 else WARMUP_CALLS
    if send > signed:
        print("bench.callcost: SEND must not exceed SIGNED", file=sys.stderr)
        return 2
    run(operation, send, signed, warmup_calls, instrument_calls=instrument_calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
