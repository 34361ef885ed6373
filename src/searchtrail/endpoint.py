"""Where the server last started on a data directory answers, recorded there so that
`searchtrail env` points clients at the address, port, certificate and S3 endpoint it was
started with."""

from __future__ import annotations

import json
import socket
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

from searchtrail.config import Settings
from searchtrail.workers import replace_shared_file

# A wildcard address is where the server listens, never where a client should connect.
_LOOPBACK_FOR = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


@dataclass(frozen=True)
class Endpoint:
    url: str
    ca_bundle: Optional[str] = None  # a self-signed certificate clients must trust, if any
    # The S3-compatible endpoint trails deliver to (the server's --s3-endpoint-url); None: the
    # local bucket folder, read through the server's own /_s3 API.
    s3_endpoint_url: Optional[str] = None

    @property
    def buckets_url(self) -> str:
        """Where S3 clients read the trails' buckets."""
        return self.s3_endpoint_url or self.url + "/_s3"


def is_wildcard(host: str) -> bool:
    """Whether listening on ``host`` means listening on every address."""
    return host in _LOOPBACK_FOR


def client_url(settings: Settings, port: int | None = None) -> str:
    """The URL a client on this host uses for a server started with ``settings`` (listening on
    ``port`` when given: the one it bound, which may differ from a ``--port 0``)."""
    return replace(settings, host=_LOOPBACK_FOR.get(settings.host, settings.host),
                   port=settings.port if port is None else port).endpoint_url


def advertise(settings: Settings, port: int) -> Endpoint:
    """Record where this server answers, replacing what an earlier start left. Best effort:
    the server runs on whether or not the data directory takes the file."""
    endpoint = Endpoint(client_url(settings, port), _self_signed(settings.tls_cert),
                        settings.s3_endpoint_url)
    record(settings, endpoint)
    return endpoint


def record(settings: Settings, endpoint: Endpoint) -> None:
    """Write ``endpoint`` as where this data directory's server answers (best effort)."""
    try:
        replace_shared_file(settings.endpoint_path, json.dumps(asdict(endpoint)).encode() + b"\n")
    except OSError:
        pass


def current(settings: Settings) -> Endpoint:
    """Where the server of this data directory answers: as the last one started recorded
    (kept after it stops, for the next start to replace), else as the settings say."""
    try:
        document = json.loads(settings.endpoint_path.read_text())
    except (OSError, ValueError):
        document = None
    if isinstance(document, dict) and isinstance(document.get("url"), str) \
            and document["url"].startswith(("http://", "https://")):
        bundle, s3 = document.get("ca_bundle"), document.get("s3_endpoint_url")
        return Endpoint(document["url"], bundle if isinstance(bundle, str) else None,
                        s3 if isinstance(s3, str) else settings.s3_endpoint_url)
    return Endpoint(client_url(settings), _self_signed(settings.tls_cert),
                    settings.s3_endpoint_url)


def delivers_to(settings: Settings) -> Optional[str]:
    """The S3 endpoint this data directory's trails deliver to: the settings' own, else the one
    the server last started there used; None for the local bucket folder."""
    return settings.s3_endpoint_url or current(settings).s3_endpoint_url


def answers(url: str, timeout: float = 0.5) -> bool:
    """Whether anything accepts TCP connections at ``url``'s host and port now."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def _self_signed(cert_path: Path | None) -> Optional[str]:
    """``cert_path`` (absolute) when its first certificate signs itself: clients can trust it
    as their CA bundle. A certificate from a CA is left to the clients' own trust store."""
    if cert_path is None:
        return None
    from cryptography import x509  # only when serving TLS

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return None
    return str(cert_path.resolve()) if cert.issuer == cert.subject else None
