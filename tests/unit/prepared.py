"""botocore's prepared requests as the gateway hands them to the SigV4 verifier."""

from __future__ import annotations

from urllib.parse import urlsplit

from searchtrail.auth.sigv4 import HttpRequest


def to_http(prepared) -> HttpRequest:
    """botocore's prepared request as the gateway sees it; Host is added as http.client does."""
    parts = urlsplit(prepared.url)
    headers = [(name, value.decode("latin-1") if isinstance(value, bytes) else value)
               for name, value in prepared.headers.items()]
    headers.insert(0, ("Host", parts.netloc))
    body = prepared.body or b""
    return HttpRequest(prepared.method, parts.path or "/", parts.query, tuple(headers),
                       body.encode() if isinstance(body, str) else body)
