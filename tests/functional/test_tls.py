"""Served over TLS (--tls-cert/--tls-key): records carry tlsDetails as CloudTrail writes them."""

from __future__ import annotations

import datetime
import json
import signal
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

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


def test_tls_details_are_recorded(tmp_path) -> None:
    cert, key = self_signed(tmp_path)
    server = ServerProcess(tmp_path / "data", args=["--tls-cert", str(cert), "--tls-key", str(key)],
                           scheme="https")
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


# uvicorn's graceful-shutdown timeout: a TLS close that waits for the client's close_notify
# held the exit this long.
GRACEFUL_SHUTDOWN_SECONDS = 10


def test_sigterm_with_an_idle_tls_client_exits_without_waiting_for_it(tmp_path) -> None:
    """boto3 keeps its TLS connection pooled and never answers the server's close_notify."""
    cert, key = self_signed(tmp_path)
    server = ServerProcess(tmp_path / "data", args=["--tls-cert", str(cert), "--tls-key", str(key)],
                           scheme="https")
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
