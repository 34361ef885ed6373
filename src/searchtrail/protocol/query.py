"""botocore's ``query`` protocol (IAM, STS): form-encoded requests in, XML responses out.

Everything is driven by the operation's input and output shapes; converters and XML
writers are compiled once per operation, as in ``parser`` and ``serializer``.

Request side
    ``decode_form`` turns the ``application/x-www-form-urlencoded`` body into a flat
    ``{key: value}`` dict (``+`` is a space, UTF-8, strict percent-encoding);
    ``parse_query_request`` reads it per the input shape: ``A.B`` nests structures,
    ``A.member.N`` are list items (``A.N`` when the model flattens the list), ``A.entry.N.key``
    / ``.value`` map entries, ``A=`` an empty list. Unknown keys are ignored; a wrongly typed
    value is a ValidationException worded like the awsJson parser's, with AWS's query paths
    (``durationSeconds``, ``policyArns.1.member.arn``).

Response side
    ``serialize_query_response`` writes ``<OpResponse><OpResult>...</OpResult>
    <ResponseMetadata>`` XML; ``query_error_response`` the ``<ErrorResponse>`` document.

CloudTrail side
    ``query_input_wire`` / ``query_output_wire`` give ``requestParameters`` /
    ``responseElements`` as CloudTrail shows them for IAM and STS: member names with the first
    letter lower-cased (``lower_camel``), timestamps as ISO 8601 strings, blobs as base64 and
    members the model marks sensitive left out (CloudTrail omits ``secretAccessKey``,
    passwords, SAML assertions and web identity tokens for these services).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from datetime import datetime, timezone
from typing import Any, Callable, Mapping
from urllib.parse import unquote_to_bytes

from botocore.model import OperationModel, ServiceModel, Shape

from searchtrail.protocol.errors import ServiceError
from searchtrail.protocol.patches import COMMON_ERROR_STATUS, DEFAULT_ERROR_STATUS, ERROR_STATUS_BY_SERVICE
from searchtrail.protocol.timestamps import WIRE_FORMATTERS, iso8601
from searchtrail.protocol.validate import TYPE, Violation, violation, violations_error

Headers = list[tuple[bytes, bytes]]

XML_CONTENT_TYPE = b"text/xml"

# Bounds that keep a hostile body from costing more than its size: a form has at most
# MAX_FIELDS key=value pairs, and keys nest at most MAX_KEY_SEGMENTS deep (deeper keys match
# no model path and are ignored like any unknown key).
MAX_FIELDS = 50_000
MAX_KEY_SEGMENTS = 40
_MAX_INDEX_DIGITS = 9

# The query wire's own spelling of error codes this code base raises in awsJson style.
# Codes the service models declare always win (STS models ``ExpiredTokenException``).
QUERY_ERROR_CODES: dict[str, str] = {
    "ValidationException": "ValidationError",
    "UnknownOperationException": "InvalidAction",
    "InternalServerException": "InternalFailure",
    "ServiceUnavailableException": "ServiceUnavailable",
    "ThrottlingException": "Throttling",
    "AccessDeniedException": "AccessDenied",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "IncompleteSignatureException": "IncompleteSignature",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "ExpiredTokenException": "ExpiredToken",
}

# Statuses of common query-protocol codes (AWS's "Common Errors" pages) no model carries.
QUERY_ERROR_STATUS: dict[str, int] = {
    "ValidationError": 400,
    "InvalidAction": 400,
    "MissingAction": 400,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "Throttling": 400,
    "AccessDenied": 403,
    "MissingAuthenticationToken": 403,
    "IncompleteSignature": 400,
    "SignatureDoesNotMatch": 403,
    "InvalidClientTokenId": 403,
    "ExpiredToken": 403,
    "MalformedQueryString": 404,
}

MALFORMED_QUERY_STRING = "MalformedQueryString"


def lower_camel(name: str) -> str:
    """A member name as CloudTrail keys IAM / STS parameters: first letter lower-cased.

    Only the first character changes (``RoleArn`` -> ``roleArn``, ``SAMLAssertionID`` ->
    ``sAMLAssertionID``, ``OpenIDConnectProviderArn`` -> ``openIDConnectProviderArn``),
    which is what CloudTrail shows for these services.
    """
    return name[:1].lower() + name[1:]


# --- the form body --------------------------------------------------------------------------

_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def _malformed(message: str) -> ServiceError:
    return ServiceError(MALFORMED_QUERY_STRING, message, status=QUERY_ERROR_STATUS[MALFORMED_QUERY_STRING])


def _unquote(raw: bytes) -> str:
    if b"%" in raw:
        if _BAD_PERCENT.search(raw) is not None:
            raise _malformed("The request body has a malformed percent-encoding.")
        raw = unquote_to_bytes(raw.replace(b"+", b" "))
    elif b"+" in raw:
        raw = raw.replace(b"+", b" ")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("The request body is not valid UTF-8 once percent-decoded.") from None


def decode_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as ``{key: value}``.

    ``+`` is a space, escapes are UTF-8; a repeated key keeps its last value; ``&&`` and a
    trailing ``&`` are harmless. A malformed escape, invalid UTF-8 or more than MAX_FIELDS
    pairs is a ``MalformedQueryString`` ServiceError (404, as AWS's common errors list it).
    """
    if not body:
        return {}
    if type(body) is not bytes:
        body = bytes(body)
    if body.count(b"&") >= MAX_FIELDS:
        raise _malformed(f"The request body has more than {MAX_FIELDS} parameters.")
    form: dict[str, str] = {}
    for pair in body.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        form[_unquote(name)] = _unquote(value)
    return form


def _trie(form: Mapping[str, str]) -> dict:
    """Keys split on dots into nested dicts; a node's own value sits under the key None."""
    root: dict = {}
    for key, value in form.items():
        parts = key.split(".")
        if len(parts) > MAX_KEY_SEGMENTS:
            continue
        node = root
        for part in parts:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            node = child
        node[None] = value
    return root


def _indexed(children: dict) -> list[dict]:
    """The ``1``, ``2``, ... children in numeric order; other keys (``01``, ``x``) are ignored."""
    numbered = []
    for key, child in children.items():
        if (key is not None and key.isdigit() and key.isascii() and key[0] != "0"
                and len(key) <= _MAX_INDEX_DIGITS):
            numbered.append((int(key), child))
    numbered.sort(key=_first)
    return [child for _, child in numbered]


def _first(pair: tuple[int, Any]) -> int:
    return pair[0]


# --- request parsing --------------------------------------------------------------------------

# convert(node, path, errors) returns the native value of a trie node, or _ABSENT when the
# node carries nothing for this shape (only unknown sub-keys). Wrong types add a Violation.
Convert = Callable[[dict, str, list[Violation]], Any]

_ABSENT: Any = object()
_MISSING: Any = object()

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)

_compiled_inputs: dict[OperationModel, Convert | None] = {}


def parse_query_request(operation_model: OperationModel,
                        body: bytes | Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(params, wire_params)`` of a query request.

    ``body`` is the raw form body, or the dict ``decode_form`` already made of it (the
    gateway decodes once to find ``Action`` / ``Version``). ``params`` are native values keyed
    by model member name, as ``parser.parse_request`` gives them; ``wire_params`` is
    ``query_input_wire(operation_model, params)``. ``Action``, ``Version`` and unknown keys are
    ignored. Raises ServiceError: MalformedQueryString for an undecodable body,
    ValidationException for wrongly typed values.
    """
    params, errors = _parse(operation_model, body)
    if errors:
        raise violations_error(errors)
    return params, query_input_wire(operation_model, params)


def query_request_wire(operation_model: OperationModel, body: bytes | Mapping[str, str]) -> dict[str, Any] | None:
    """Best-effort ``requestParameters`` for a request ``parse_query_request`` refused.

    The well-typed members in CloudTrail form (wrongly typed ones left out); None when the
    body cannot be decoded at all. Never raises.
    """
    try:
        params, _ = _parse(operation_model, body)
        return query_input_wire(operation_model, {k: v for k, v in params.items() if v is not None})
    except Exception:  # noqa: BLE001 - a record must never fail over its parameters
        return None


def _parse(operation_model: OperationModel, body: bytes | Mapping[str, str]) -> tuple[dict[str, Any], list[Violation]]:
    form = body if isinstance(body, Mapping) else decode_form(body)
    convert = _compiled_inputs.get(operation_model, _MISSING)
    if convert is _MISSING:
        convert = prepare_input(operation_model)
    if convert is None or not form:
        return {}, []
    errors: list[Violation] = []
    params = convert(_trie(form), "", errors)
    if params is _ABSENT:
        params = {}
    return params, errors


def prepare_input(operation_model: OperationModel) -> Convert | None:
    """Compile (once) and cache the form reader of an operation's input shape."""
    shape = operation_model.input_shape
    convert = _compile(shape, {}) if shape is not None else None
    _compiled_inputs[operation_model] = convert
    return convert


def _compile(shape: Shape, memo: dict[str, Convert]) -> Convert:
    if shape.name in memo:
        return memo[shape.name]
    builder = _BUILDERS.get(shape.type_name, _build_string)
    # A forwarder lets a recursive shape refer to itself before its converter exists.
    cell: list[Convert] = []
    memo[shape.name] = lambda node, path, errors: cell[0](node, path, errors)
    cell.append(builder(shape, memo))
    memo[shape.name] = cell[0]
    return cell[0]


def _wrong_type(value: Any, path: str, errors: list[Violation], expected: str) -> None:
    errors.append(violation(path, TYPE, value, f"Member must be {expected}"))


def _query_key(member_shape: Shape, member_name: str) -> str:
    """The form key segment of a structure member (botocore's QuerySerializer rules)."""
    if member_shape.type_name == "list" and member_shape.serialization.get("flattened"):
        # A flattened list whose items carry a locationName is keyed by that name.
        item_name = member_shape.member.serialization.get("name")
        if item_name:
            return item_name
    return member_shape.serialization.get("name", member_name)


def _build_structure(shape: Shape, memo: dict[str, Convert]) -> Convert:
    # form key -> (member name, path segment, converter or None for plain strings)
    members: dict[str, tuple[str, str, Convert | None]] = {}
    for name, member_shape in shape.members.items():
        plain = member_shape.type_name == "string"
        members[_query_key(member_shape, name)] = (
            name, lower_camel(name), None if plain else _compile(member_shape, memo))

    def convert_structure(node: dict, path: str, errors: list[Violation]) -> Any:
        parsed = {}
        prefix = f"{path}." if path else ""
        for key, child in node.items():
            member = members.get(key)  # the node's own value (key None) is never a member
            if member is None:
                continue
            name, segment, convert = member
            if convert is None:
                value = child.get(None)
                if value is not None:
                    parsed[name] = value
                continue
            value = convert(child, prefix + segment, errors)
            if value is not _ABSENT:
                parsed[name] = value
        if not parsed:
            scalar = node.get(None)
            if scalar is None:
                return _ABSENT
            if scalar:
                return _wrong_type(scalar, path, errors, "a structure")
        return parsed

    return convert_structure


def _empty_or_wrong(node: dict, path: str, errors: list[Violation], empty: Any, expected: str) -> Any:
    """A collection node without items: ``A=`` is empty, ``A=text`` a type error."""
    scalar = node.get(None)
    if scalar is None:
        return _ABSENT
    if scalar == "":
        return empty
    return _wrong_type(scalar, path, errors, expected)


def _build_list(shape: Shape, memo: dict[str, Convert]) -> Convert:
    flattened = bool(shape.serialization.get("flattened"))
    item_key = shape.member.serialization.get("name", "member")
    convert_item = _compile(shape.member, memo)

    def convert_list(node: dict, path: str, errors: list[Violation]) -> Any:
        items = node if flattened else node.get(item_key)
        children = _indexed(items) if items else ()
        if not children:
            return _empty_or_wrong(node, path, errors, [], "a list")
        parsed = []
        for child in children:
            value = convert_item(child, f"{path}.{len(parsed) + 1}.member", errors)
            if value is not _ABSENT:
                parsed.append(value)
        return parsed

    return convert_list


def _build_map(shape: Shape, memo: dict[str, Convert]) -> Convert:
    flattened = bool(shape.serialization.get("flattened"))
    key_name = shape.key.serialization.get("name", "key")
    value_name = shape.value.serialization.get("name", "value")
    convert_value = _compile(shape.value, memo)

    def convert_map(node: dict, path: str, errors: list[Violation]) -> Any:
        entries = node if flattened else node.get("entry")
        children = _indexed(entries) if entries else ()
        if not children:
            return _empty_or_wrong(node, path, errors, {}, "a map")
        parsed = {}
        for number, entry in enumerate(children, 1):
            key_node = entry.get(key_name)
            key = key_node.get(None) if key_node is not None else None
            if key is None:
                errors.append(violation(f"{path}.entry.{number}.key", TYPE, None, "Member must not be null"))
                continue
            value_node = entry.get(value_name)
            value = convert_value(value_node, f"{path}.{key}", errors) if value_node is not None else _ABSENT
            if value is _ABSENT:
                errors.append(violation(f"{path}.{key}", TYPE, None, "Member must not be null"))
                continue
            parsed[key] = value
        return parsed

    return convert_map


def _scalar_builder(read: Callable[[str], Any], expected: str) -> Callable[[Shape, dict], Convert]:
    """A converter of the node's own text: ``read`` returns the value or raises ValueError."""

    def build(shape: Shape, memo: dict[str, Convert]) -> Convert:
        def convert_scalar(node: dict, path: str, errors: list[Violation]) -> Any:
            text = node.get(None)
            if text is None:
                return _ABSENT
            try:
                return read(text)
            except (ValueError, OverflowError, OSError):
                return _wrong_type(text, path, errors, expected)

        return convert_scalar

    return build


def _build_string(shape: Shape, memo: dict[str, Convert]) -> Convert:
    def convert_string(node: dict, path: str, errors: list[Violation]) -> Any:
        text = node.get(None)
        return _ABSENT if text is None else text

    return convert_string


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,20}")


def _integer_reader(bounds: tuple[int, int]) -> Callable[[str], int]:
    low, high = bounds

    def read(text: str) -> int:
        # The regex first: int() would also take "1_000", " 7" and non-ASCII digits.
        if _INTEGER_TEXT.fullmatch(text) is None:
            raise ValueError(text)
        number = int(text)
        if not low <= number <= high:
            raise ValueError(text)
        return number

    return read


_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_FLOAT_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _read_float(text: str) -> float:
    word = _FLOAT_WORDS.get(text)
    if word is not None:
        return word
    if len(text) > 400 or _FLOAT_TEXT.fullmatch(text) is None:
        raise ValueError(text)
    return float(text)


_BOOLEANS = {"true": True, "false": False}


def _read_boolean(text: str) -> bool:
    value = _BOOLEANS.get(text)
    if value is None:
        raise ValueError(text)
    return value


_EPOCH_TEXT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?")


def _read_timestamp(text: str) -> datetime:
    """ISO 8601 (botocore's query default) or epoch seconds, as an aware UTC datetime."""
    if _EPOCH_TEXT.fullmatch(text) is not None:
        return datetime.fromtimestamp(float(text), timezone.utc)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:  # read as UTC, as botocore writes them
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _read_blob(text: str) -> bytes:
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        raise ValueError(text) from None


_BUILDERS: dict[str, Callable[[Shape, dict[str, Convert]], Convert]] = {
    "structure": _build_structure,
    "list": _build_list,
    "map": _build_map,
    "string": _build_string,
    "boolean": _scalar_builder(_read_boolean, "a boolean (true or false)"),
    "integer": _scalar_builder(_integer_reader(_INT32), "an integer (32-bit)"),
    "long": _scalar_builder(_integer_reader(_INT64), "an integer (64-bit)"),
    "float": _scalar_builder(_read_float, "a number"),
    "double": _scalar_builder(_read_float, "a number"),
    "timestamp": _scalar_builder(_read_timestamp, "a timestamp (an ISO 8601 string or epoch seconds)"),
    "blob": _scalar_builder(_read_blob, "a base64-encoded string"),
}


# --- validator violations in query paths ------------------------------------------------------

def query_path(shape: Shape | None, path: str) -> str:
    """A ``validate`` path (member names, zero-based indexes) in AWS's query spelling.

    ``PolicyArns.0.Arn`` -> ``policyArns.1.member.arn``; map keys are kept; a segment the
    shape does not explain ends the rewrite and the rest is kept as it is.
    """
    if not path or shape is None:
        return path
    segments = path.split(".")
    out: list[str] = []
    current: Shape | None = shape
    for position, segment in enumerate(segments):
        kind = current.type_name if current is not None else None
        if kind == "structure" and segment in current.members:
            out.append(lower_camel(segment))
            current = current.members[segment]
        elif kind == "list" and segment.isdigit() and segment.isascii():
            out.append(f"{int(segment) + 1}.member")
            current = current.member
        elif kind == "map":
            out.append(segment)
            current = current.value
        else:
            out.extend(segments[position:])
            break
    return ".".join(out)


def query_violations_error(operation_model: OperationModel, violations: list[Violation]) -> ServiceError:
    """``validate.violations_error`` with each path spelled as the query protocol does."""
    shape = operation_model.input_shape
    rewritten = []
    for found in violations:
        path = query_path(shape, found.path)
        message = found.message.replace(f" at '{found.path}' ", f" at '{path}' ", 1)
        rewritten.append(Violation(path, found.constraint, message))
    return violations_error(rewritten)


# --- CloudTrail's view: requestParameters and responseElements --------------------------------

# to_wire converters return a JSON-ready value; None stands for "already JSON-ready".
ToWire = Callable[[Any], Any]

_compiled_input_wire: dict[tuple[OperationModel, str | None], ToWire | None] = {}
_compiled_output_wire: dict[tuple[OperationModel, str | None], ToWire | None] = {}


def query_input_wire(operation_model: OperationModel, params: dict[str, Any],
                     sensitive: str | None = None) -> dict[str, Any]:
    """``params`` as CloudTrail's ``requestParameters`` for IAM / STS.

    Keys are ``lower_camel`` member names at every depth (map keys stay as sent), timestamps
    ISO 8601 strings, blobs base64, None and unknown members dropped. Members the model marks
    sensitive are left out, or replaced by ``sensitive`` when a placeholder is given.
    """
    return _wire(_compiled_input_wire, operation_model, operation_model.input_shape, params, sensitive)


def query_output_wire(operation_model: OperationModel, result: dict[str, Any] | None,
                      sensitive: str | None = None) -> dict[str, Any]:
    """``result`` as CloudTrail's ``responseElements`` (same rules as ``query_input_wire``).

    Timestamps are ISO 8601 (``2026-11-30T09:00:00Z``); IAM and STS records rewrite them as
    the ``Nov 30, 2026, 9:00:00 AM`` text AWS writes there (``audit.record.java_dates``).
    """
    return _wire(_compiled_output_wire, operation_model, operation_model.output_shape, result, sensitive)


def _wire(cache: dict, operation_model: OperationModel, shape: Shape | None, value: Any,
          sensitive: str | None) -> dict[str, Any]:
    key = (operation_model, sensitive)
    convert = cache.get(key, _MISSING)
    if convert is _MISSING:
        convert = cache[key] = _compile_wire(shape, {}, sensitive) if shape is not None else None
    if convert is None or not value:
        return {}
    return convert(value)


def _is_sensitive(shape: Shape) -> bool:
    return bool(shape.metadata.get("sensitive"))


def _compile_wire(shape: Shape, memo: dict, sensitive: str | None) -> ToWire | None:
    if shape.name in memo:
        return memo[shape.name]
    builder = _WIRE_BUILDERS.get(shape.type_name)
    if builder is None:
        memo[shape.name] = None
        return None
    cell: list[ToWire | None] = []
    memo[shape.name] = lambda value: cell[0](value)
    cell.append(builder(shape, memo, sensitive))
    memo[shape.name] = cell[0]
    return cell[0]


_HIDE: Any = object()  # a sensitive member: left out, or shown as the placeholder


def _wire_child(shape: Shape, memo: dict, sensitive: str | None) -> ToWire | None | Any:
    if _is_sensitive(shape):
        return _HIDE
    return _compile_wire(shape, memo, sensitive)


def _wire_structure(shape: Shape, memo: dict, sensitive: str | None) -> ToWire:
    members = {name: (lower_camel(name), _wire_child(member, memo, sensitive))
               for name, member in shape.members.items()}

    def structure_to_wire(value: Any) -> dict[str, Any]:
        wire = {}
        for name, member_value in value.items():
            member = members.get(name)
            if member is None or member_value is None:
                continue
            key, convert = member
            if convert is None:
                wire[key] = member_value
            elif convert is _HIDE:
                if sensitive is not None:
                    wire[key] = sensitive
            else:
                wire[key] = convert(member_value)
        return wire

    return structure_to_wire


def _wire_list(shape: Shape, memo: dict, sensitive: str | None) -> ToWire | None:
    convert = _wire_child(shape.member, memo, sensitive)
    if convert is None:
        return None
    if convert is _HIDE:
        return lambda value: [sensitive for item in value if item is not None] if sensitive is not None else []
    return lambda value: [convert(item) for item in value if item is not None]


def _wire_map(shape: Shape, memo: dict, sensitive: str | None) -> ToWire | None:
    convert = _wire_child(shape.value, memo, sensitive)
    if convert is None:
        return None
    if convert is _HIDE:
        return lambda value: {key: sensitive for key in value} if sensitive is not None else {}
    return lambda value: {key: convert(item) for key, item in value.items() if item is not None}


def _wire_timestamp(shape: Shape, memo: dict, sensitive: str | None) -> ToWire:
    # Records keep the microseconds the call was stamped with.
    return lambda value: iso8601(_as_datetime(value), fraction_digits=6)


def _wire_blob(shape: Shape, memo: dict, sensitive: str | None) -> ToWire:
    return _base64


_WIRE_BUILDERS: dict[str, Callable[[Shape, dict, str | None], ToWire | None]] = {
    "structure": _wire_structure,
    "list": _wire_list,
    "map": _wire_map,
    "timestamp": _wire_timestamp,
    "blob": _wire_blob,
}


# --- XML responses ------------------------------------------------------------------------------

# write(value, out) appends the XML text of ``value`` to ``out``.
Write = Callable[[Any, list[str]], None]

_compiled_outputs: dict[OperationModel, tuple[str, str, str] | None] = {}
_compiled_writers: dict[OperationModel, Write | None] = {}
_error_funnels: dict[ServiceModel, "_QueryErrorFunnel"] = {}

# Characters XML text cannot carry as they are. ``\r`` is kept as a character reference (a
# parser would turn a raw one into ``\n``); characters XML 1.0 cannot represent at all (C0
# controls but tab / newline, lone surrogates, U+FFFE / U+FFFF) become U+FFFD.
_XML_SPECIAL = re.compile("[&<>\"'\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;", "\r": "&#13;"}


def _escape_match(match: re.Match[str]) -> str:
    return _XML_ESCAPES.get(match.group(), "\ufffd")


def xml_escape(text: str) -> str:
    """``text`` safe as XML element content or a quoted attribute value."""
    if _XML_SPECIAL.search(text) is None:
        return text
    return _XML_SPECIAL.sub(_escape_match, text)


def namespace(service_model: ServiceModel) -> str:
    """``https://iam.amazonaws.com/doc/2010-05-08/`` (the model's ``xmlNamespace``)."""
    return service_model.metadata.get("xmlNamespace") or (
        f"https://{service_model.endpoint_prefix}.amazonaws.com/doc/{service_model.api_version}/")


def serialize_query_response(operation_model: OperationModel, result: dict[str, Any] | None,
                             request_id: str) -> bytes:
    """The XML body of a successful query call.

    ``<OpResponse xmlns=...><OpResult>members</OpResult><ResponseMetadata><RequestId>
    </RequestId></ResponseMetadata></OpResponse>``; the result element is the output shape's
    ``resultWrapper`` and is absent for operations without output. Members follow model order;
    None and members outside the model are left out.
    """
    frame = _compiled_outputs.get(operation_model, _MISSING)
    if frame is _MISSING:
        frame = prepare_output(operation_model)
    opening, result_open, result_close = frame
    out = [opening]
    write = _compiled_writers[operation_model]
    if write is not None:
        out.append(result_open)
        if result:
            write(result, out)
        out.append(result_close)
    out.append("<ResponseMetadata><RequestId>")
    out.append(xml_escape(request_id))
    out.append(f"</RequestId></ResponseMetadata></{operation_model.name}Response>")
    return "".join(out).encode("utf-8")


def query_success_headers(request_id: str) -> Headers:
    """Headers of a 2xx query response (lower-case names, as ASGI requires)."""
    return [(b"content-type", XML_CONTENT_TYPE), (b"x-amzn-requestid", request_id.encode())]


def prepare_output(operation_model: OperationModel) -> tuple[str, str, str]:
    """Compile (once) and cache the XML writer of an operation's output shape."""
    shape = operation_model.output_shape
    opening = f'<{operation_model.name}Response xmlns="{xml_escape(namespace(operation_model.service_model))}">'
    write = None
    result_open = result_close = ""
    if shape is not None:
        write = _compile_xml(shape, {})
        wrapper = shape.serialization.get("resultWrapper")
        if wrapper:
            result_open, result_close = f"<{wrapper}>", f"</{wrapper}>"
    frame = (opening, result_open, result_close)
    _compiled_writers[operation_model] = write
    _compiled_outputs[operation_model] = frame
    return frame


def _compile_xml(shape: Shape, memo: dict) -> Write:
    key = (shape.name, shape.serialization.get("timestampFormat"))
    if key in memo:
        return memo[key]
    builder = _XML_BUILDERS.get(shape.type_name, _xml_string)
    cell: list[Write] = []
    memo[key] = lambda value, out: cell[0](value, out)
    cell.append(builder(shape, memo))
    memo[key] = cell[0]
    return cell[0]


def _xml_member(member_shape: Shape, member_name: str, memo: dict) -> Write:
    """The writer of a whole structure member: its element(s), tags included."""
    tag = member_shape.serialization.get("name", member_name)
    if member_shape.type_name == "list" and member_shape.serialization.get("flattened"):
        # Flattened: one element per item, named after the items' locationName if they have one.
        item_tag = member_shape.member.serialization.get("name", tag)
        write_item = _compile_xml(member_shape.member, memo)
        item_open, item_close = f"<{item_tag}>", f"</{item_tag}>"

        def write_flattened_list(value: Any, out: list[str]) -> None:
            for item in value:
                if item is not None:
                    out.append(item_open)
                    write_item(item, out)
                    out.append(item_close)

        return write_flattened_list
    if member_shape.type_name == "map" and member_shape.serialization.get("flattened"):
        write_entries = _map_entries(member_shape, memo, tag)
        return write_entries
    write_content = _compile_xml(member_shape, memo)
    opening, closing = f"<{tag}>", f"</{tag}>"

    def write_member(value: Any, out: list[str]) -> None:
        out.append(opening)
        write_content(value, out)
        out.append(closing)

    return write_member


def _xml_structure(shape: Shape, memo: dict) -> Write:
    members = [(name, _xml_member(member, name, memo)) for name, member in shape.members.items()]

    def write_structure(value: Any, out: list[str]) -> None:
        get = value.get
        for name, write in members:
            member_value = get(name)
            if member_value is not None:
                write(member_value, out)

    return write_structure


def _xml_list(shape: Shape, memo: dict) -> Write:
    item_tag = shape.member.serialization.get("name", "member")
    item_open, item_close = f"<{item_tag}>", f"</{item_tag}>"
    write_item = _compile_xml(shape.member, memo)

    def write_list(value: Any, out: list[str]) -> None:
        for item in value:
            if item is not None:
                out.append(item_open)
                write_item(item, out)
                out.append(item_close)

    return write_list


def _map_entries(shape: Shape, memo: dict, entry_tag: str) -> Write:
    key_tag = shape.key.serialization.get("name") or "key"
    value_tag = shape.value.serialization.get("name") or "value"
    write_key = _compile_xml(shape.key, memo)
    write_value = _compile_xml(shape.value, memo)
    entry_open = f"<{entry_tag}><{key_tag}>"
    key_to_value = f"</{key_tag}><{value_tag}>"
    value_close = f"</{value_tag}></{entry_tag}>"

    def write_entries(value: Any, out: list[str]) -> None:
        for key, item in value.items():
            if item is not None:
                out.append(entry_open)
                write_key(key, out)
                out.append(key_to_value)
                write_value(item, out)
                out.append(value_close)

    return write_entries


def _xml_map(shape: Shape, memo: dict) -> Write:
    return _map_entries(shape, memo, "entry")


def _xml_string(shape: Shape, memo: dict) -> Write:
    def write_string(value: Any, out: list[str]) -> None:
        out.append(xml_escape(value if type(value) is str else str(value)))

    return write_string


def _xml_integer(shape: Shape, memo: dict) -> Write:
    def write_integer(value: Any, out: list[str]) -> None:
        out.append(str(int(value)))

    return write_integer


def _xml_float(shape: Shape, memo: dict) -> Write:
    def write_float(value: Any, out: list[str]) -> None:
        number = float(value)
        if math.isnan(number):
            out.append("NaN")
        elif math.isinf(number):
            out.append("Infinity" if number > 0 else "-Infinity")
        else:
            out.append(repr(number))

    return write_float


def _xml_boolean(shape: Shape, memo: dict) -> Write:
    def write_boolean(value: Any, out: list[str]) -> None:
        out.append("true" if value else "false")

    return write_boolean


def _xml_blob(shape: Shape, memo: dict) -> Write:
    def write_blob(value: Any, out: list[str]) -> None:
        out.append(_base64(value))

    return write_blob


def _xml_timestamp(shape: Shape, memo: dict) -> Write:
    # The query protocol's default timestamp format is ISO 8601.
    format_moment = WIRE_FORMATTERS[shape.serialization.get("timestampFormat", "iso8601")]

    def write_timestamp(value: Any, out: list[str]) -> None:
        out.append(str(format_moment(_as_datetime(value))))

    return write_timestamp


_XML_BUILDERS: dict[str, Callable[[Shape, dict], Write]] = {
    "structure": _xml_structure,
    "list": _xml_list,
    "map": _xml_map,
    "string": _xml_string,
    "integer": _xml_integer,
    "long": _xml_integer,
    "float": _xml_float,
    "double": _xml_float,
    "boolean": _xml_boolean,
    "blob": _xml_blob,
    "timestamp": _xml_timestamp,
}


# --- scalar formats shared by the XML and the CloudTrail views -----------------------------------

def _as_datetime(value: Any) -> datetime:
    """A provider's timestamp (datetime, ISO string or epoch number) as a datetime."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    return datetime.fromtimestamp(value, timezone.utc)




def _base64(value: Any) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8")
    return base64.b64encode(value).decode("ascii")


# --- errors --------------------------------------------------------------------------------------

def query_error_code(service_model: ServiceModel, code: str) -> str:
    """The code a query client sees for ``code`` (see ``QUERY_ERROR_CODES``).

    A modeled code is kept; a modeled shape *name* (``NoSuchEntityException``) becomes its
    code (``NoSuchEntity``); awsJson-style generic codes take their query spelling.
    """
    return _funnel(service_model).wire_code(code)


def query_error_response(service_model: ServiceModel, error: ServiceError,
                         request_id: str) -> tuple[int, Headers, bytes]:
    """Status, headers and body of ``error`` in the query protocol's XML error format.

    Status: ``error.status``, else the model's ``error.httpStatusCode`` (NoSuchEntity 404,
    EntityAlreadyExists 409 ...), else the status tables (``patches``, QUERY_ERROR_STATUS),
    else 400. ``Type`` is Receiver for 5xx, Sender otherwise. Modeled members of the error
    shape in ``error.fields`` are written inside ``<Error>``; unmodeled ones are not.
    """
    funnel = _funnel(service_model)
    code = funnel.wire_code(error.code)
    status = (error.status or funnel.statuses.get(code) or COMMON_ERROR_STATUS.get(code)
              or QUERY_ERROR_STATUS.get(code) or DEFAULT_ERROR_STATUS)
    out = [funnel.opening, "<Error><Type>", "Receiver" if status >= 500 else "Sender", "</Type><Code>",
           xml_escape(code), "</Code><Message>", xml_escape(str(error.message)), "</Message>"]
    if error.fields:
        funnel.write_fields(code, error.fields, out)
    out += ["</Error><RequestId>", xml_escape(request_id), "</RequestId></ErrorResponse>"]
    headers = [(b"content-type", XML_CONTENT_TYPE), (b"x-amzn-requestid", request_id.encode())]
    return status, headers, "".join(out).encode("utf-8")


# Members an error shape may model that the <Error> frame already carries.
_FRAME_MEMBERS = frozenset({"type", "code", "message"})


class _QueryErrorFunnel:
    """Per-service facts the error path needs, computed once."""

    def __init__(self, service_model: ServiceModel) -> None:
        self.opening = f'<ErrorResponse xmlns="{xml_escape(namespace(service_model))}">'
        self.statuses = dict(ERROR_STATUS_BY_SERVICE.get(service_model.service_name, {}))
        self.codes_by_name: dict[str, str] = {}
        self._writers: dict[str, Write] = {}
        for shape in service_model.error_shapes:
            code = shape.error_code or shape.name
            self.codes_by_name[shape.name] = code
            modeled_status = shape.metadata.get("error", {}).get("httpStatusCode")
            if modeled_status:
                self.statuses[code] = modeled_status
            memo: dict = {}
            members = [(name, _xml_member(member, name, memo)) for name, member in shape.members.items()
                       if name.lower() not in _FRAME_MEMBERS]
            if members:
                self._writers[code] = _fields_writer(members)
        self.modeled_codes = frozenset(self.codes_by_name.values())

    def wire_code(self, code: str) -> str:
        if code in self.modeled_codes:
            return code
        return self.codes_by_name.get(code) or QUERY_ERROR_CODES.get(code, code)

    def write_fields(self, code: str, fields: dict[str, Any], out: list[str]) -> None:
        write = self._writers.get(code)
        if write is None:
            return
        written: list[str] = []
        try:
            write(fields, written)
        except (TypeError, ValueError, AttributeError, OverflowError):
            return  # a raiser's badly typed field must not cost the client its error response
        out.extend(written)


def _fields_writer(members: list[tuple[str, Write]]) -> Write:
    def write_fields(fields: dict[str, Any], out: list[str]) -> None:
        for name, write in members:
            value = fields.get(name)
            if value is not None:
                write(value, out)

    return write_fields


def _funnel(service_model: ServiceModel) -> _QueryErrorFunnel:
    funnel = _error_funnels.get(service_model)
    if funnel is None:
        funnel = _error_funnels[service_model] = _QueryErrorFunnel(service_model)
    return funnel


def prepare(operation_model: OperationModel) -> None:
    """Warm every compiled cache of one operation (call at start-up for each query operation)."""
    prepare_input(operation_model)
    prepare_output(operation_model)
    query_input_wire(operation_model, {})
    query_output_wire(operation_model, {})
    _funnel(operation_model.service_model)
