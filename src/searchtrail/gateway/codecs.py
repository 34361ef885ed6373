"""The two AWS wire protocols the gateway speaks, behind one interface.

awsJson (OpenSearch Serverless, CloudTrail) is routed by X-Amz-Target; the query protocol
(IAM, STS) by the form's Action and Version. The call chain is the same for both.
"""

from __future__ import annotations

from typing import Any

import orjson

from searchtrail.auth.sigv4 import SigV4Error
from searchtrail.gateway.http import header
from searchtrail.protocol import parser, query, serializer, validate
from searchtrail.protocol.catalog import ServiceCatalog
from searchtrail.protocol.errors import ServiceError, UnknownOperationError
from searchtrail.protocol.strictjson import nested_too_deeply

Headers = list[tuple[bytes, bytes]]
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_GENERIC_JSON_ERROR = b"application/x-amz-json-1.1"


class JsonCodec:
    def __init__(self, catalog: ServiceCatalog) -> None:
        self._catalog = catalog

    def resolve(self, headers: list, body: bytes) -> Any:
        target = header(headers, b"x-amz-target")
        operation = self._catalog.resolve(target) if target else None
        if operation is None:
            raise UnknownOperationError(
                f"Unknown operation {target!r}." if target else
                "The request names no operation: send an X-Amz-Target header (JSON APIs) "
                "or a form with Action and Version (IAM, STS).")
        content_type = header(headers, b"content-type").split(";", 1)[0].strip().lower()
        expected = self._catalog.content_type(operation.service_model)
        if content_type != expected:
            raise UnknownOperationError(
                f"Unsupported content type {content_type!r} for {operation.name}: "
                f"send {expected}.")
        return operation

    def parse(self, operation: Any, body: bytes) -> tuple[dict, dict]:
        params = parser.parse_request(operation, body)
        return params, (orjson.loads(body) if body.strip() else {})

    def request_wire(self, operation: Any, body: bytes) -> dict | None:
        """requestParameters for a request the parser refused, as far as it can be read."""
        try:
            wire = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError:
            return None
        if not isinstance(wire, dict) or nested_too_deeply(body, wire):
            return None
        return wire

    def violations_error(self, operation: Any, violations: list) -> ServiceError:
        return validate.violations_error(violations)

    def output_wire(self, operation: Any, result: dict) -> dict:
        return serializer.to_wire(operation, result)

    def success(self, operation: Any, result: dict, wire: dict, request_id: str) -> tuple[Headers, bytes]:
        return serializer.success_headers(operation.service_model, request_id), orjson.dumps(wire)

    def client_code(self, service_model: Any, code: str) -> str:
        return code

    def error(self, service_model: Any, error: ServiceError,
              request_id: str) -> tuple[int, Headers, bytes]:
        if service_model is not None:
            return serializer.error_response(service_model, error, request_id)
        body = orjson.dumps({"__type": error.code, "message": error.message, **error.fields})
        return error.status or 400, [(b"content-type", _GENERIC_JSON_ERROR),
                                     (b"x-amzn-requestid", request_id.encode()),
                                     (b"x-amzn-errortype", error.code.encode())], body


class QueryCodec:
    def __init__(self, catalog: ServiceCatalog) -> None:
        self._catalog = catalog
        versions = catalog.query_versions()
        self._fallback_service = next(iter(versions.values())) if versions else None

    def resolve(self, headers: list, body: bytes) -> Any:
        form = query.decode_form(body)
        if not form.get("Action"):
            raise ServiceError("MissingAction", "The request must contain the parameter Action.",
                               status=400)
        operation = self._catalog.resolve_query(form)
        if operation is None:
            raise UnknownOperationError(
                f"Could not find operation {form.get('Action', '')!r} for version "
                f"{form.get('Version', '')!r}.")
        return operation

    def parse(self, operation: Any, body: bytes) -> tuple[dict, dict]:
        return query.parse_query_request(operation, body)

    def request_wire(self, operation: Any, body: bytes) -> dict | None:
        return query.query_request_wire(operation, body)

    def violations_error(self, operation: Any, violations: list) -> ServiceError:
        return query.query_violations_error(operation, violations)

    def output_wire(self, operation: Any, result: dict) -> dict:
        return query.query_output_wire(operation, result)

    def success(self, operation: Any, result: dict, wire: dict, request_id: str) -> tuple[Headers, bytes]:
        return (query.query_success_headers(request_id),
                query.serialize_query_response(operation, result, request_id))

    def client_code(self, service_model: Any, code: str) -> str:
        return query.query_error_code(service_model, code) if service_model is not None else code

    def error(self, service_model: Any, error: ServiceError,
              request_id: str) -> tuple[int, Headers, bytes]:
        if isinstance(error, SigV4Error):
            # Authentication's codes are the protocol's, never an operation's: STS models
            # ExpiredTokenException (an expired web identity token), but expired signing
            # credentials are ExpiredToken there as on IAM.
            error = ServiceError(query.QUERY_ERROR_CODES.get(error.code, error.code),
                                 error.message, status=error.status)
        return query.query_error_response(service_model or self._fallback_service, error,
                                          request_id)


def codec_for(headers: list, json_codec: JsonCodec, query_codec: QueryCodec) -> JsonCodec | QueryCodec:
    content_type = header(headers, b"content-type").split(";", 1)[0].strip().lower()
    return query_codec if content_type == FORM_CONTENT_TYPE else json_codec
