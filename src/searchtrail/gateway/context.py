"""The request context: filled step by step by the handler chain, read by the record builder."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from searchtrail.auth.principals import Principal
from searchtrail.protocol.errors import ServiceError


@dataclass
class RequestContext:
    request_id: str  # also the record's requestID and the x-amzn-RequestId header
    source_ip: str  # socket peer, or the forwarded client when the peer is a trusted proxy
    user_agent: str  # as sent, empty when absent
    host: str  # the Host header, for tlsDetails.clientProvidedHostHeader
    tls: dict[str, str] | None = None  # tlsVersion / cipherSuite when served over TLS
    body: bytes = b""
    service_name: str = ""  # botocore service name, e.g. "opensearchserverless"
    event_source: str = ""  # e.g. "aoss.amazonaws.com"
    operation: Any = None  # botocore OperationModel
    region: str = ""  # from the SigV4 credential scope
    principal: Principal | None = None
    wire_params: dict[str, Any] | None = None  # the request JSON as sent (requestParameters)
    params: dict[str, Any] | None = None  # parsed and validated, native types
    prepared: dict[str, Any] = field(default_factory=dict)  # by the operation's preparer
    result: dict[str, Any] | None = None  # the provider's output, native types
    output_wire: dict[str, Any] | None = None  # the output as CloudTrail shows it (responseElements)
    error: ServiceError | None = None
    error_code: str = ""  # the error code as the client sees it on this wire (errorCode)
    read_only: bool = False
    referenced_resources: list[dict[str, str]] = field(default_factory=list)
    event_time: datetime | None = None  # set when the unit of work completes
    event_id: str = ""  # set by the record builder

    @property
    def operation_name(self) -> str:
        return self.operation.name if self.operation is not None else ""
