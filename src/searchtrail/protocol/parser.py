"""awsJson request bodies to native Python values, driven by the operation's input shape.

Converters are compiled once per operation; any bytes in give a dict or a ServiceError out.
"""

from __future__ import annotations

import binascii
import json
from datetime import datetime, timezone
from typing import Any, Callable

import orjson
from botocore.model import OperationModel, Shape

from searchtrail.protocol.errors import ServiceError
from searchtrail.protocol.strictjson import (MAX_DEPTH, DuplicateMember,
                                             nested_too_deeply, unique_members)
from searchtrail.protocol.validate import TYPE, Violation, violation, violations_error

# convert(value, path, errors) returns the native value; a wrong-typed value adds a
# Violation to ``errors`` instead (the return value is then never used).
Convert = Callable[[Any, str, list[Violation]], Any]

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)

_compiled_operations: dict[OperationModel, Convert | None] = {}


def parse_request(operation_model: OperationModel, body: bytes) -> dict[str, Any]:
    """The request's input members as native values, keyed by model member name.

    Unknown members and JSON nulls are dropped; constraints are left to ``validate``.
    """
    if not body or body.isspace():
        return {}
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ServiceError("SerializationException", f"Request body is not valid JSON: {error}", status=400) from None
    if type(document) is not dict:
        raise ServiceError(
            "SerializationException",
            f"Request body must be a JSON object, not {_json_type_name(document)}",
            status=400,
        )
    if nested_too_deeply(body, document):
        raise _too_deep()
    _reject_duplicate_keys(body)
    convert = _compiled_operations.get(operation_model, _MISSING)
    if convert is _MISSING:
        convert = prepare(operation_model)
    if convert is None:
        return {}
    errors: list[Violation] = []
    params = convert(document, "", errors)
    if errors:
        raise violations_error(errors)
    return params


_PAIRS_DECODER = json.JSONDecoder(object_pairs_hook=unique_members)


def _reject_duplicate_keys(body: bytes) -> None:
    """SerializationException when an object repeats a member name.

    orjson keeps the last value; another parser on the path (a proxy, a WAF) may keep the
    first, and the record must show what ran, so an ambiguous body is refused. orjson has
    already checked everything else, so the stdlib parser here only sees well-formed JSON.
    """
    if body.count(b":") < 2:
        return  # every member name is followed by a colon: fewer than two, no repeats
    try:
        _PAIRS_DECODER.decode(body.decode("utf-8"))
    except DuplicateMember as duplicate:
        raise ServiceError("SerializationException", "Request body is not valid JSON: the "
                           f"member name {str(duplicate)!r} appears twice in one object",
                           status=400) from None
    except RecursionError:
        raise _too_deep() from None


def _too_deep() -> ServiceError:
    return ServiceError("SerializationException", "Request body is not valid JSON: arrays and "
                        f"objects nest more than {MAX_DEPTH} levels deep", status=400)


def prepare(operation_model: OperationModel) -> Convert | None:
    """Compile (once) and cache the converter of an operation's input shape."""
    shape = operation_model.input_shape
    convert = _compile(shape, {}) if shape is not None else None
    _compiled_operations[operation_model] = convert
    return convert


_MISSING: Any = object()


def _json_type_name(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


_JSON_TYPE_NAMES = {dict: "an object", list: "an array", str: "a string", int: "a number",
                    float: "a number", bool: "a boolean", type(None): "null"}


def _wrong_type(value: Any, path: str, errors: list[Violation], expected: str) -> None:
    errors.append(violation(path, TYPE, value, f"Member must be {expected}"))


def _null_item(path: str, errors: list[Violation]) -> None:
    # Lists and maps in these models are dense: a null entry is as wrong as a missing member.
    errors.append(violation(path, TYPE, None, "Member must not be null"))


def _compile(shape: Shape, memo: dict[str, Convert]) -> Convert:
    if shape.name in memo:
        return memo[shape.name]
    kind = "document" if shape.metadata.get("document") else shape.type_name
    builder = _BUILDERS.get(kind, _build_passthrough)
    # A forwarder lets a recursive shape refer to itself before its converter exists.
    cell: list[Convert] = []
    memo[shape.name] = lambda value, path, errors: cell[0](value, path, errors)
    cell.append(builder(shape, memo))
    memo[shape.name] = cell[0]
    return cell[0]


def _build_structure(shape: Shape, memo: dict[str, Convert]) -> Convert:
    # wire name -> (member name, converter, the JSON type that needs no conversion or None)
    members = {
        member_shape.serialization.get("name", name): (name, _compile(member_shape, memo), _READY_TYPES.get(
            "document" if member_shape.metadata.get("document") else member_shape.type_name))
        for name, member_shape in shape.members.items()
    }

    def convert_structure(value: Any, path: str, errors: list[Violation]) -> Any:
        if type(value) is not dict:
            return _wrong_type(value, path, errors, "a structure (JSON object)")
        parsed = {}
        prefix = f"{path}." if path else ""
        for wire_name, member_value in value.items():
            member = members.get(wire_name)
            # Unknown members are ignored, as AWS does; null means "not set".
            if member is None or member_value is None:
                continue
            name, convert, ready_type = member
            # Strings and booleans, the bulk of any request, skip the call.
            if type(member_value) is ready_type:
                parsed[name] = member_value
            else:
                parsed[name] = convert(member_value, prefix + name, errors)
        return parsed

    return convert_structure


# Shape types whose JSON value of this exact type is already the native value.
_READY_TYPES: dict[str, type] = {"string": str, "boolean": bool}


def _build_list(shape: Shape, memo: dict[str, Convert]) -> Convert:
    convert_item = _compile(shape.member, memo)

    def convert_list(value: Any, path: str, errors: list[Violation]) -> Any:
        if type(value) is not list:
            return _wrong_type(value, path, errors, "a list (JSON array)")
        parsed = []
        for index, item in enumerate(value):
            if item is None:
                _null_item(f"{path}.{index}", errors)
            else:
                parsed.append(convert_item(item, f"{path}.{index}", errors))
        return parsed

    return convert_list


def _build_map(shape: Shape, memo: dict[str, Convert]) -> Convert:
    convert_value = _compile(shape.value, memo)

    def convert_map(value: Any, path: str, errors: list[Violation]) -> Any:
        if type(value) is not dict:
            return _wrong_type(value, path, errors, "a map (JSON object)")
        parsed = {}
        for key, item in value.items():
            if item is None:
                _null_item(f"{path}.{key}", errors)
            else:
                parsed[key] = convert_value(item, f"{path}.{key}", errors)
        return parsed

    return convert_map


def _build_string(shape: Shape, memo: dict[str, Convert]) -> Convert:
    def convert_string(value: Any, path: str, errors: list[Violation]) -> Any:
        if type(value) is str:
            return value
        return _wrong_type(value, path, errors, "a string")

    return convert_string


def _build_boolean(shape: Shape, memo: dict[str, Convert]) -> Convert:
    def convert_boolean(value: Any, path: str, errors: list[Violation]) -> Any:
        if type(value) is bool:
            return value
        return _wrong_type(value, path, errors, "a boolean")

    return convert_boolean


def _integer_builder(bounds: tuple[int, int], expected: str) -> Callable[[Shape, dict[str, Convert]], Convert]:
    low, high = bounds

    def build(shape: Shape, memo: dict[str, Convert]) -> Convert:
        def convert_integer(value: Any, path: str, errors: list[Violation]) -> Any:
            # type() rather than isinstance(): JSON true is not an integer.
            if type(value) is int and low <= value <= high:
                return value
            return _wrong_type(value, path, errors, expected)

        return convert_integer

    return build


def _build_float(shape: Shape, memo: dict[str, Convert]) -> Convert:
    def convert_float(value: Any, path: str, errors: list[Violation]) -> Any:
        value_type = type(value)
        if value_type is float or value_type is int:
            return float(value)
        return _wrong_type(value, path, errors, "a number")

    return convert_float


_TIMESTAMP_EXPECTED = "a timestamp (epoch seconds or an ISO 8601 string)"


def _build_timestamp(shape: Shape, memo: dict[str, Convert]) -> Convert:
    def convert_timestamp(value: Any, path: str, errors: list[Violation]) -> Any:
        value_type = type(value)
        try:
            if value_type is int or value_type is float:
                return datetime.fromtimestamp(value, timezone.utc)
            if value_type is str:
                moment = datetime.fromisoformat(value)
                # An ISO string without an offset is read as UTC, as botocore writes them.
                if moment.tzinfo is None:
                    return moment.replace(tzinfo=timezone.utc)
                return moment.astimezone(timezone.utc)
        except (ValueError, OverflowError, OSError):
            pass
        return _wrong_type(value, path, errors, _TIMESTAMP_EXPECTED)

    return convert_timestamp


def _build_blob(shape: Shape, memo: dict[str, Convert]) -> Convert:
    def convert_blob(value: Any, path: str, errors: list[Violation]) -> Any:
        if type(value) is str:
            try:
                return binascii.a2b_base64(value, strict_mode=True)
            except (binascii.Error, ValueError):
                pass
        return _wrong_type(value, path, errors, "a base64-encoded string")

    return convert_blob


def _build_passthrough(shape: Shape, memo: dict[str, Convert]) -> Convert:
    """Documents are free-form JSON: they arrive as already-native values."""

    def convert_document(value: Any, path: str, errors: list[Violation]) -> Any:
        return value

    return convert_document


_BUILDERS: dict[str, Callable[[Shape, dict[str, Convert]], Convert]] = {
    "structure": _build_structure,
    "list": _build_list,
    "map": _build_map,
    "string": _build_string,
    "boolean": _build_boolean,
    "integer": _integer_builder(_INT32, "an integer (32-bit)"),
    "long": _integer_builder(_INT64, "an integer (64-bit)"),
    "float": _build_float,
    "double": _build_float,
    "timestamp": _build_timestamp,
    "blob": _build_blob,
    "document": _build_passthrough,
}
