"""uvicorn's httptools protocol, plus the negotiated TLS version and cipher in the ASGI scope,
and each response's head and body sent in one write.

CloudTrail's tlsDetails needs them and uvicorn does not expose the ssl object to apps.
uvicorn writes a response's head and body separately: two send() calls, each holding the GIL.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

SCOPE_KEY = "searchtrail.tls"
_FINAL_HEAD = b"HTTP/1.1 "
_INTERIM_HEAD = b"HTTP/1.1 1"  # 100 Continue: the client waits for it, never hold it back


class OneWriteTransport:
    """Holds a response head back until the next write (its body), then sends both at once.

    Anything held is flushed before close/abort and, at the latest, on the loop's next turn.
    Every other attribute is the real transport's.
    """

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._held is not None:
            data, self._held = self._held + data, None
        elif data.startswith(_FINAL_HEAD) and not data.startswith(_INTERIM_HEAD):
            self._held = data
            asyncio.get_running_loop().call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._held is not None:
            data, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class TlsAwareHttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = OneWriteTransport(transport)  # type: ignore[assignment]

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.scheme != "https":
            return
        ssl_object = self.transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return
        cipher = ssl_object.cipher()  # (OpenSSL name, protocol version, secret bits)
        details = {"tlsVersion": ssl_object.version() or ""}
        if cipher:
            details["cipherSuite"] = cipher[0]
        self.scope["extensions"] = {**self.scope.get("extensions", {}), SCOPE_KEY: details}
