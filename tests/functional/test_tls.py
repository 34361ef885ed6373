"""Served over TLS (--tls-cert/--tls-key): records carry tlsDetails as CloudTrail writes them."""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from searchtrail.gateway.httpserver import TLS_CLOSE_WAIT_SECONDS
from tests.clients import boto3_client, env_exports
from tests.functional.server import ServerProcess


def self_signed(tmp_path):  # type: ignore[no-untyped-def]
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                           x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def tls_server(tmp_path, env: dict[str, str] | None = None) -> tuple[ServerProcess, Path]:  # type: ignore[no-untyped-def]
    """A server (not started yet) serving HTTPS with a fresh self-signed certificate, and the
    certificate's path for clients to verify it with."""
    cert, key = self_signed(tmp_path)
    server = ServerProcess(tmp_path / "data", args=["--tls-cert", str(cert), "--tls-key", str(key)],
                           scheme="https", env=env or {})
    return server, cert


def test_tls_details_are_recorded(tmp_path) -> None:
    server, cert = tls_server(tmp_path)
    try:
        server.start()
        aoss = server.client("opensearchserverless", verify=str(cert))
        request_id = aoss.list_collections()["ResponseMetadata"]["RequestId"]
        events = server.client("cloudtrail", verify=str(cert)).lookup_events(LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "ListCollections"}])["Events"]
        record = json.loads(events[0]["CloudTrailEvent"])
        assert record["requestID"] == request_id
        tls = record["tlsDetails"]
        assert tls["tlsVersion"] in ("TLSv1.2", "TLSv1.3")
        assert tls["cipherSuite"]
        assert tls["clientProvidedHostHeader"] == f"127.0.0.1:{server.port}"
    finally:
        server.stop()


def test_env_sets_up_the_aws_cli_for_https_with_the_self_signed_certificate(tmp_path) -> None:
    server, cert = tls_server(tmp_path)
    try:
        server.start()
        printed = subprocess.run([sys.executable, "-m", "searchtrail", "env", "--data-dir",
                                  str(server.data_dir)], capture_output=True, text=True,
                                 timeout=60, check=True).stdout
        exports = env_exports(printed)
        assert exports["AWS_ENDPOINT_URL_OPENSEARCHSERVERLESS"] == server.endpoint  # https
        assert exports["AWS_CA_BUNDLE"] == str(cert.resolve())
        env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        aws = subprocess.run([sys.executable, "-m", "awscli", "opensearchserverless",
                              "list-collections", "--output", "json"], capture_output=True,
                             text=True, timeout=60,
                             env={**env, **exports, "AWS_CONFIG_FILE": "/dev/null",
                                  "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
        assert aws.returncode == 0, aws.stderr  # verified against the bundle, no warnings off
        assert "collectionSummaries" in json.loads(aws.stdout)
    finally:
        server.stop()


# uvicorn's graceful-shutdown timeout: a TLS close that waits for the client's close_notify
# held the exit this long.
GRACEFUL_SHUTDOWN_SECONDS = 10


def test_sigterm_with_an_idle_tls_client_exits_without_waiting_for_it(tmp_path) -> None:
    """boto3 keeps its TLS connection pooled and never answers the server's close_notify."""
    server, cert = tls_server(tmp_path)
    try:
        server.start()
        aoss = server.client("opensearchserverless", verify=str(cert))
        aoss.list_collections()  # the connection stays open, idle, in boto3's pool
        began = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(timeout=GRACEFUL_SHUTDOWN_SECONDS + 20)
        took = time.monotonic() - began
        assert code in (0, -signal.SIGTERM), server.log()
        assert took < GRACEFUL_SHUTDOWN_SECONDS / 2, f"exit took {took:.1f} s"
        assert "Traceback" not in server.log() and "ERROR" not in server.log(), server.log()
    finally:
        server.stop()


def test_a_tls_response_still_unread_at_sigterm_arrives_whole(tmp_path) -> None:
    """The server stops while its client has not read a 20 MB object yet: the connection is
    dropped only after the whole response has gone out."""
    server, cert = tls_server(tmp_path)
    data = server.data_dir
    try:
        server.start()
        made = subprocess.run([sys.executable, "-m", "searchtrail", "buckets", "create", "big",
                               "--data-dir", str(data)], capture_output=True, text=True,
                              timeout=120)
        assert made.returncode == 0, made.stderr
        size = 20 * 1024 * 1024
        (data / "buckets" / "big" / "blob").write_bytes(os.urandom(size))
        access_key, secret = server.credentials()
        s3 = boto3_client("s3", region_name="us-east-1", endpoint_url=server.endpoint + "/_s3",
                          aws_access_key_id=access_key, aws_secret_access_key=secret,
                          config=Config(signature_version="s3v4"))
        url = s3.generate_presigned_url("get_object", Params={"Bucket": "big", "Key": "blob"})
        target = url.split(f":{server.port}", 1)[1]
        context = ssl.create_default_context(cafile=str(cert))
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # most stays server-side
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as client:
            client.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n"
                           .encode())
            received = client.recv(65536)
            head, _, body = received.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), received[:300]
            server.process.send_signal(signal.SIGTERM)
            wait_until_refused(server.port)  # the server is shutting down
            # a reader slower than the server's wait for an unanswered close_notify
            threading.Event().wait(4 * TLS_CLOSE_WAIT_SECONDS)
            received_bytes = len(body)
            for _ in range(size):  # bounded: each pass reads at least one byte or stops
                chunk = client.recv(1 << 16)
                if not chunk:
                    break
                received_bytes += len(chunk)
        assert received_bytes == size
        assert server.process.wait(timeout=GRACEFUL_SHUTDOWN_SECONDS + 20) in (0, -signal.SIGTERM)
    finally:
        server.stop()


def wait_until_refused(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return
        time.sleep(0.05)  # polling the port with a deadline
    raise AssertionError(f"port {port} still accepts connections {seconds} s after SIGTERM")


CLIENT_TIMEOUT_SECONDS = 1  # the server's, for the test below: a silent client is closed after it
TCP_CLOSE_WAIT = "08"  # /proc/net/tcp state: the peer (the server) has closed its end
HEALTH = b"GET /_searchtrail/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.mark.parametrize("before_idling", [b"", HEALTH], ids=["silent", "idle-after-an-answer"])
def test_an_idle_tls_client_is_disconnected_at_its_timeout(tmp_path, before_idling) -> None:
    """The client timeout (a client that never sends a request) or the keep-alive timeout
    (one that sent one, then nothing) closes a TLS connection; a client that then never
    answers the server's close_notify must not keep the connection for ~30 s more (asyncio's
    wait for close_notify)."""
    server, cert = tls_server(
        tmp_path, env={"SEARCHTRAIL_CLIENT_TIMEOUT_SECONDS": str(CLIENT_TIMEOUT_SECONDS)})
    try:
        server.start()
        context = ssl.create_default_context(cafile=str(cert))
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as client:
            if before_idling:
                client.sendall(before_idling)
                answer = client.recv(65536)
                head, _, body = answer.partition(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 200"), answer[:300]
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                for _ in range(length):  # bounded: each pass reads at least one byte
                    if len(body) >= length:
                        break
                    body += client.recv(65536)
            assert client.recv(1) == b""  # the server's close_notify, after its timeout
            notified = time.monotonic()
            ends = (client.getsockname()[1], server.port)
            deadline = notified + 30
            while time.monotonic() < deadline and tcp_state(*ends) != TCP_CLOSE_WAIT:
                time.sleep(0.05)  # polling the socket's state with a deadline
            closed_after = time.monotonic() - notified
            assert tcp_state(*ends) == TCP_CLOSE_WAIT, "the server never closed the connection"
            assert closed_after < 5 * TLS_CLOSE_WAIT_SECONDS + 1, f"closed {closed_after:.1f} s on"
    finally:
        server.stop()


def tcp_state(local_port: int, remote_port: int) -> str | None:
    """The state (hex, as /proc/net/tcp gives it) of this host's IPv4 connection from
    ``local_port`` to ``remote_port``. Both ports are needed: Linux gives a new connection an
    ephemeral port that an older one to another peer may still hold in TIME_WAIT."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (int(fields[1].rsplit(":", 1)[1], 16) == local_port
                and int(fields[2].rsplit(":", 1)[1], 16) == remote_port):
            return fields[3]
    return None
