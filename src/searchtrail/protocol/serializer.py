"""Native results and ServiceErrors to awsJson responses, driven by botocore's output shapes.

Only this module knows epoch numbers, base64 and the model's member spelling.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any, Callable

import orjson
from botocore.model import OperationModel, ServiceModel, Shape

from searchtrail.protocol.catalog import content_type
from searchtrail.protocol.errors import ServiceError
from searchtrail.protocol.patches import COMMON_ERROR_STATUS, DEFAULT_ERROR_STATUS, ERROR_STATUS_BY_SERVICE
from searchtrail.protocol.timestamps import WIRE_FORMATTERS

# to_wire converters take a native value and return its JSON-ready form. None stands for
# "already JSON-ready", so strings, numbers, booleans and documents cost no call at all.
ToWire = Callable[[Any], Any]

_compiled_operations: dict[OperationModel, ToWire | None] = {}
_error_funnels: dict[ServiceModel, "_ErrorFunnel"] = {}

Headers = list[tuple[bytes, bytes]]


def to_wire(operation_model: OperationModel, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` as the JSON object the output shape describes (None and unknown members dropped)."""
    convert = _compiled_operations.get(operation_model, _MISSING)
    if convert is _MISSING:
        convert = prepare(operation_model)
    if convert is None or not result:
        return {}
    return convert(result)


def response_body(operation_model: OperationModel, result: dict[str, Any]) -> bytes:
    return orjson.dumps(to_wire(operation_model, result))


def prepare(operation_model: OperationModel) -> ToWire | None:
    """Compile (once) and cache the converter of an operation's output shape."""
    shape = operation_model.output_shape
    convert = _compile_structure_root(shape) if shape is not None else None
    _compiled_operations[operation_model] = convert
    return convert


def success_headers(service_model: ServiceModel, request_id: str) -> Headers:
    """Headers of a 2xx response (lower-case names, as ASGI requires)."""
    return [(b"content-type", _funnel(service_model).content_type), (b"x-amzn-requestid", request_id.encode())]


def error_response(service_model: ServiceModel, error: ServiceError, request_id: str) -> tuple[int, Headers, bytes]:
    """Status, headers and body of ``error`` in the awsJson error format botocore reads.

    Status: ``error.status``, else the model's ``error.httpStatusCode``, else the status
    table in ``patches``, else 400. The body's ``__type`` is what selects the exception class
    in boto3; ``x-amzn-ErrorType`` serves SDKs that read the header instead.
    """
    funnel = _funnel(service_model)
    code = error.code
    status = error.status or funnel.statuses.get(code) or COMMON_ERROR_STATUS.get(code) or DEFAULT_ERROR_STATUS
    body: dict[str, Any] = {"__type": code, "message": error.message}
    if error.fields:
        body.update(funnel.error_fields(code, error.fields))
        body["__type"], body["message"] = code, error.message
    headers = [
        (b"content-type", funnel.content_type),
        (b"x-amzn-requestid", request_id.encode()),
        (b"x-amzn-errortype", code.encode()),
    ]
    # default=str: the funnel must answer even when a raiser put an odd value in ``fields``.
    return status, headers, orjson.dumps(body, default=str)


_MISSING: Any = object()


class _ErrorFunnel:
    """Per-service facts the error path needs, computed once."""

    def __init__(self, service_model: ServiceModel) -> None:
        self.content_type = content_type(service_model).encode()
        self.statuses = dict(ERROR_STATUS_BY_SERVICE.get(service_model.service_name, {}))
        self._field_converters: dict[str, ToWire | None] = {}
        for shape in service_model.error_shapes:
            code = shape.error_code or shape.name
            modeled_status = shape.metadata.get("error", {}).get("httpStatusCode")
            if modeled_status:
                self.statuses[code] = modeled_status
            self._field_converters[code] = _compile_structure_root(shape)

    def error_fields(self, code: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Modeled members in wire form; unmodeled extras kept as the raiser gave them; no Nones."""
        given = {name: value for name, value in fields.items() if value is not None}
        convert = self._field_converters.get(code)
        if convert is None:
            return given
        try:
            given.update(convert(fields))
        except (TypeError, ValueError, AttributeError):
            pass  # a raiser's badly typed field must not cost the client its error response
        return given


def _funnel(service_model: ServiceModel) -> _ErrorFunnel:
    funnel = _error_funnels.get(service_model)
    if funnel is None:
        funnel = _error_funnels[service_model] = _ErrorFunnel(service_model)
    return funnel


# --- compiled converters ------------------------------------------------------------------

def _compile_structure_root(shape: Shape) -> ToWire:
    return _build_structure(shape, {})


def _compile(shape: Shape, memo: dict[tuple[str, str | None], ToWire | None]) -> ToWire | None:
    timestamp_format = shape.serialization.get("timestampFormat")
    key = (shape.name, timestamp_format)
    if key in memo:
        return memo[key]
    kind = "document" if shape.metadata.get("document") else shape.type_name
    builder = _BUILDERS.get(kind, _json_ready)
    # A forwarder lets a recursive shape refer to itself before its converter exists.
    cell: list[ToWire | None] = []
    memo[key] = lambda value: cell[0](value)
    cell.append(builder(shape, memo))
    memo[key] = cell[0]
    return cell[0]


def _json_ready(shape: Shape, memo: dict) -> None:
    return None


def _build_structure(shape: Shape, memo: dict) -> ToWire:
    # Never None, even when every member is JSON-ready: members outside the model and None
    # values must not reach the client. Two tables, so a JSON-ready member costs one lookup.
    plain: dict[str, str] = {}  # member name -> wire name
    converted: dict[str, tuple[str, ToWire]] = {}  # member name -> (wire name, converter)
    for name, member_shape in shape.members.items():
        wire_name = member_shape.serialization.get("name", name)
        convert = _compile(member_shape, memo)
        if convert is None:
            plain[name] = wire_name
        else:
            converted[name] = (wire_name, convert)
    # Providers may slip on casing (``updateVpcEndpointDetail`` for the model's
    # ``UpdateVpcEndpointDetail``); a miss retries case-insensitively where that is unambiguous.
    lowered: dict[str, list[str]] = {}
    for name in shape.members:
        lowered.setdefault(name.lower(), []).append(name)
    by_lower = {low: names[0] for low, names in lowered.items() if len(names) == 1}

    def structure_to_wire(value: Any) -> dict[str, Any]:
        wire = {}
        try:
            items = value.items()
        except AttributeError:
            raise TypeError(f"{shape.name} must be given as a dict, not {type(value).__name__}") from None
        for name, member_value in items:
            if member_value is None:
                continue
            wire_name = plain.get(name)
            if wire_name is not None:
                wire[wire_name] = member_value
                continue
            member = converted.get(name)
            if member is None:
                name = by_lower.get(name.lower()) if type(name) is str else None
                if name is None:
                    continue  # not in the model: never leaks to the client
                if name in plain:
                    wire[plain[name]] = member_value
                    continue
                member = converted[name]
            wire_name, convert = member
            wire[wire_name] = convert(member_value)
        return wire

    return structure_to_wire


def _build_list(shape: Shape, memo: dict) -> ToWire | None:
    convert_item = _compile(shape.member, memo)
    if convert_item is None:
        return None

    def list_to_wire(value: Any) -> list[Any]:
        return [convert_item(item) for item in value if item is not None]

    return list_to_wire


def _build_map(shape: Shape, memo: dict) -> ToWire | None:
    convert_value = _compile(shape.value, memo)
    if convert_value is None:
        return None

    def map_to_wire(value: Any) -> dict[str, Any]:
        return {key: convert_value(item) for key, item in value.items() if item is not None}

    return map_to_wire


def _build_blob(shape: Shape, memo: dict) -> ToWire:
    def blob_to_wire(value: Any) -> str:
        if isinstance(value, str):
            value = value.encode("utf-8")
        return base64.b64encode(value).decode("ascii")

    return blob_to_wire


def _build_timestamp(shape: Shape, memo: dict) -> ToWire:
    # awsJson's default timestamp format is epoch seconds.
    format_moment = WIRE_FORMATTERS[shape.serialization.get("timestampFormat", "unixTimestamp")]

    def timestamp_to_wire(value: Any) -> Any:
        if isinstance(value, datetime):
            return format_moment(value)
        if isinstance(value, str):
            # An ISO string from a provider is re-read so the wire format stays the model's.
            return format_moment(datetime.fromisoformat(value))
        return value  # already a number: providers may hand over epoch values

    return timestamp_to_wire


_BUILDERS: dict[str, Callable[[Shape, dict], ToWire | None]] = {
    "structure": _build_structure,
    "list": _build_list,
    "map": _build_map,
    "blob": _build_blob,
    "timestamp": _build_timestamp,
    # strings, numbers, booleans and documents are JSON-ready as they are.
}
