"""`serve --workers 2`: two server processes on one port and one store, under a supervisor."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest

from tests.e2e.console_http import ROOT_PASSWORD, ConsoleUser, set_console_password
from tests.functional.server import ServerProcess, free_port
from tests.functional.trails import local_s3, read_bucket, searchtrail_cli, wait_for
from tests.reliability.rawhttp import RawConnection, RawResponse, sign

BUCKET = "workers-trail"
MAX_CONNECTIONS_TO_FIND_BOTH = 3000
FIND_BOTH_SECONDS = 30


@pytest.fixture
def two_workers(tmp_path):  # type: ignore[no-untyped-def]
    server = ServerProcess(tmp_path / "data", args=["--workers", "2", "--delivery-interval", "1"])
    server.start()
    yield server
    server.stop()


def _get(conn: RawConnection, path: str) -> RawResponse:
    conn.send(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    reply = conn.response()
    assert reply.status == 200, reply
    return reply


def _health(conn: RawConnection) -> dict:
    return _get(conn, "/_searchtrail/health").json()


def _one_connection_per_worker(server: ServerProcess) -> dict[int, RawConnection]:
    """Keep-alive connections, one accepted by each worker (the health check names it). The
    server is ready when one worker answers; the other may still be starting."""
    found: dict[int, RawConnection] = {}
    deadline = time.monotonic() + FIND_BOTH_SECONDS
    for _ in range(MAX_CONNECTIONS_TO_FIND_BOTH):
        conn = RawConnection(server.port, timeout=30)
        worker = _health(conn)["worker"]
        if worker in found:
            conn.close()
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)  # polling for the other worker, bounded by count and deadline
        else:
            found[worker] = conn
        if len(found) == 2:
            return found
    for conn in found.values():
        conn.close()
    pytest.fail(f"connections for {FIND_BOTH_SECONDS}s all reached workers {sorted(found)}")


def _aoss_call(server: ServerProcess, conn: RawConnection, operation: str) -> str:
    """A signed aoss call over ``conn``; its request ID."""
    conn.send(sign(server.port, server.credentials(), operation=operation).encode())
    reply = conn.response()
    assert reply.status == 200, reply.body
    return reply.request_id


def test_both_workers_serve_the_port_and_every_call_gets_exactly_one_record(two_workers) -> None:
    server = two_workers
    workers = _one_connection_per_worker(server)
    healths = [_health(conn) for conn in workers.values()]
    assert {health["workers"] for health in healths} == {2}
    assert {health["keyChangeSignal"] for health in healths} == {"working"}
    for conn in workers.values():
        conn.close()

    def create_policies(thread: int) -> list[str]:
        aoss = server.client("opensearchserverless")
        names = []
        for n in range(25):
            name = f"w{thread}-{n}"
            aoss.create_security_policy(name=name, type="network", policy=json.dumps(
                [{"Rules": [{"ResourceType": "collection", "Resource": [f"collection/{name}"]}],
                  "AllowFromPublic": True}]))
            names.append(name)
        return names

    with ThreadPoolExecutor(8) as pool:
        created = [name for names in pool.map(create_policies, range(8)) for name in names]
    assert len(created) == 200
    listed = server.client("opensearchserverless").list_security_policies(
        type="network", maxResults=100)
    assert len(listed["securityPolicySummaries"]) == 100 and listed.get("nextToken")

    conn = server.store()
    try:
        rows = conn.execute("SELECT seq, record FROM events").fetchall()
    finally:
        conn.close()
    records = [json.loads(record) for _, record in rows]
    created_records = Counter(r["requestParameters"]["name"] for r in records
                              if r["eventName"] == "CreateSecurityPolicy")
    assert created_records == Counter(created)  # one record per call, from either worker
    assert len({seq for seq, _ in rows}) == len(rows)
    assert len({r["eventID"] for r in records}) == len(records)

    cloudtrail = server.client("cloudtrail")
    found, token = 0, None
    for _ in range(10):  # 200 events at 50 a page
        page = cloudtrail.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventName",
                               "AttributeValue": "CreateSecurityPolicy"}],
            MaxResults=50, **({"NextToken": token} if token else {}))
        found += len(page["Events"])
        token = page.get("NextToken")
        if not token:
            break
    assert found == 200


def _listening_inodes(port: int) -> set[str]:
    """The socket inodes listening on ``port`` (Linux's /proc/net/tcp: state 0A)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


CONNECTIONS_TO_SPREAD = 64
FEWEST_PER_WORKER = 12  # of 64 hashed evenly: fewer happens with probability ~2e-8


def test_each_worker_listens_on_a_socket_of_its_own_and_gets_a_fair_share(two_workers) -> None:
    """SO_REUSEPORT: the kernel hashes each connection to one worker's socket. On one shared
    socket the first worker to wake took each connection, and one could hold most of them."""
    server = two_workers
    workers = _one_connection_per_worker(server)
    pids = {worker: _health(conn)["pid"] for worker, conn in workers.items()}
    listening = _listening_inodes(server.port)
    owned = {worker: _socket_inodes(pid) & listening for worker, pid in pids.items()}
    assert all(len(inodes) == 1 for inodes in owned.values()), owned
    assert owned[0] != owned[1]
    assert listening == owned[0] | owned[1]  # and the supervisor holds none
    for conn in workers.values():
        conn.close()

    conns = [RawConnection(server.port, timeout=30) for _ in range(CONNECTIONS_TO_SPREAD)]
    try:
        served = Counter(_health(conn)["worker"] for conn in conns)
    finally:
        for conn in conns:
            conn.close()
    assert min(served[0], served[1]) >= FEWEST_PER_WORKER, served


def test_a_trail_made_through_one_worker_takes_the_calls_the_other_serves(two_workers) -> None:
    """Each worker caches the trails it routed to; the other's writes must end that cache
    (the store is shared), and the first worker delivers what both wrote."""
    server = two_workers
    workers = _one_connection_per_worker(server)
    for conn in workers.values():  # both workers route a call while there is no trail
        _aoss_call(server, conn, "ListCollections")
    made = searchtrail_cli("buckets", "create", BUCKET, "--data-dir", str(server.data_dir))
    assert made.returncode == 0, made.stderr
    cloudtrail = server.client("cloudtrail")
    cloudtrail.create_trail(Name="workers", S3BucketName=BUCKET)
    cloudtrail.start_logging(Name="workers")

    request_ids = {worker: _aoss_call(server, conn, "ListCollections")
                   for worker, conn in workers.items()}
    for conn in workers.values():
        conn.close()

    def delivered() -> set[str]:
        content = read_bucket(local_s3(server), BUCKET)
        return {r["requestID"] for records in content.records_by_key.values() for r in records}

    wait_for(lambda: set(request_ids.values()) <= delivered(), seconds=30,
             what=f"the calls of both workers delivered ({request_ids})")


def test_metrics_sum_every_workers_values_whichever_worker_answers(two_workers) -> None:
    server = two_workers
    workers = _one_connection_per_worker(server)
    for conn in workers.values():
        _aoss_call(server, conn, "ListCollections")
        _aoss_call(server, conn, "ListCollections")
    seen = {}
    for worker, conn in workers.items():
        text = _get(conn, "/metrics").body.decode()
        seen[worker] = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                        for line in text.splitlines()
                        if line.startswith(("searchtrail_calls_total{",
                                            "searchtrail_writer_units "))}
        conn.close()
    calls = ('searchtrail_calls_total{error_code="",operation="ListCollections",'
             'service="opensearchserverless"}')
    assert seen[0][calls] == seen[1][calls] == 4, seen
    assert seen[0]["searchtrail_writer_units"] == seen[1]["searchtrail_writer_units"] >= 4


def test_a_download_started_on_one_worker_shows_its_progress_on_the_other(two_workers) -> None:
    server = two_workers
    set_console_password(str(server.data_dir), ROOT_PASSWORD)
    user = ConsoleUser(server.endpoint)
    assert user.sign_in(ROOT_PASSWORD).status_code == 303
    cookie = "; ".join(f"{c.name}={c.value}" for c in user.http.cookies)
    workers = _one_connection_per_worker(server)

    def get(worker: int, path: str) -> RawResponse:
        workers[worker].send(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             f"Cookie: {cookie}\r\n\r\n".encode())
        reply = workers[worker].response()
        assert reply.status == 200, reply
        return reply

    download = get(0, "/console/events/export?range=1h&format=csv&export=across-workers")
    rows = download.body.decode().count("\r\n") - 1  # the sign-in's record at least
    assert rows >= 1, download.body
    shown = get(1, "/console/events/export/progress?export=across-workers").body.decode()
    assert f"Download complete: {rows} event" in shown, shown
    other = get(1, "/console/events/export/progress?export=not-started").body.decode()
    assert "Preparing the download" in other, other
    for conn in workers.values():
        conn.close()


def _iam_call(server: ServerProcess, conn: RawConnection, key: tuple[str, ...],
              params: dict[str, str]) -> RawResponse:
    body = urlencode({**params, "Version": "2010-05-08"}).encode()
    conn.send(sign(server.port, key, operation=params["Action"], body=body, service="iam",
                   target="", content_type="application/x-www-form-urlencoded; charset=utf-8"
                   ).encode())
    return conn.response()


def test_a_key_deleted_through_one_worker_stops_working_on_the_other_at_once(
        two_workers) -> None:
    server = two_workers
    iam = server.client("iam")
    iam.create_user(UserName="leaver")
    iam.attach_user_policy(UserName="leaver",
                           PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    made = iam.create_access_key(UserName="leaver")["AccessKey"]
    key = (made["AccessKeyId"], made["SecretAccessKey"])
    workers = _one_connection_per_worker(server)
    _aoss_call(server, workers[1], "ListCollections")  # root: warms worker 1 up
    workers[1].send(sign(server.port, key, operation="ListCollections").encode())
    assert workers[1].response().status == 200  # the key is now in worker 1's cache
    deleted = _iam_call(server, workers[0], server.credentials(),
                        {"Action": "DeleteAccessKey", "UserName": "leaver",
                         "AccessKeyId": key[0]})
    assert deleted.status == 200, deleted.body
    workers[1].send(sign(server.port, key, operation="ListCollections").encode())
    refused = workers[1].response()  # within the 1 s a cached key would live
    assert refused.status == 403 and b"UnrecognizedClientException" in refused.body, refused
    for conn in workers.values():
        conn.close()


def _worker_pids(server: ServerProcess) -> dict[int, int]:
    workers = _one_connection_per_worker(server)
    pids = {worker: _health(conn)["pid"] for worker, conn in workers.items()}
    for conn in workers.values():
        conn.close()
    return pids


def test_a_stop_reaches_every_worker_and_each_exits_cleanly(two_workers) -> None:
    server = two_workers
    pids = _worker_pids(server)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0, server.log()
    for pid in pids.values():
        assert not _alive(pid), f"worker {pid} outlived the supervisor"


def test_a_worker_that_dies_stops_the_server_with_an_error(two_workers) -> None:
    server = two_workers
    pids = _worker_pids(server)
    os.kill(pids[1], signal.SIGKILL)
    assert server.process.wait(timeout=30) == 1
    assert f"worker 1 (pid {pids[1]}) ended with signal 9; stopping the other workers" in \
        server.log()
    assert not _alive(pids[0])


def _refused(tmp_path, port: int) -> str:  # type: ignore[no-untyped-def]
    """Start `serve --workers 2` on ``port``, which it must refuse; its log."""
    server = ServerProcess(tmp_path / "data", port=port, args=["--workers", "2"])
    try:
        with pytest.raises(RuntimeError, match="exited with 1"):
            server.start()
    finally:
        server.stop()  # also when it started after all and the test failed
    return server.log()


def test_a_port_in_use_is_told_once_before_any_worker_starts(tmp_path) -> None:
    with socket.socket() as taken:
        port = free_port()
        taken.bind(("127.0.0.1", port))
        taken.listen()
        log = _refused(tmp_path, port)
    assert log.count(f"error: cannot listen on http://127.0.0.1:{port}") == 1
    assert "--port 0 takes any free port" in " ".join(log.split())  # what to do
    # the start made the data dir: it leaves no installation (account, root key) behind
    assert not (tmp_path / "data").exists()


def test_a_port_another_reuse_port_group_holds_is_refused_not_shared(tmp_path) -> None:
    """SO_REUSEPORT would let the workers join a group already on the port (say an earlier
    `serve --workers 2`) and take half of its connections; they must refuse it instead."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = _refused(tmp_path, port)
    assert log.count(f"error: cannot listen on http://127.0.0.1:{port}") == 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is no longer running
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
