"""uvicorn's httptools protocol, plus the negotiated TLS version and cipher in the ASGI scope.

CloudTrail's tlsDetails needs them and uvicorn does not expose the ssl object to apps.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

SCOPE_KEY = "searchtrail.tls"


class TlsAwareHttpProtocol(HttpToolsProtocol):
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
