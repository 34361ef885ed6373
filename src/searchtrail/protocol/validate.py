"""Server-side validation of parsed input against every constraint botocore's model states.

Violations are worded as AWS words them; paths join member names with dots and list
indexes as zero-based numbers (``collectionFilters.name``, ``ids.0``, ``tags.0.key``).
"""

from __future__ import annotations

import base64
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, Callable, NamedTuple

from botocore.model import OperationModel, Shape

from searchtrail.protocol.errors import ServiceError
from searchtrail.protocol.patches import python_pattern

log = logging.getLogger(__name__)

# Constraint kinds a Violation can carry. "min"/"max" are lengths (strings, blobs, lists,
# maps), "range" is a number's value, "type" comes from the parser (wrong JSON type).
REQUIRED, MIN, MAX, RANGE, PATTERN, ENUM, UNION, TYPE = (
    "required", "min", "max", "range", "pattern", "enum", "union", "type",
)


@dataclass(frozen=True, slots=True)
class Violation:
    """One failed constraint: ``message`` is the full AWS sentence for that member."""

    path: str
    constraint: str
    message: str


def violation(path: str, constraint: str, value: Any, requirement: str, sensitive: bool = False) -> Violation:
    """Word a violation as AWS does: ``Value 'x' at 'path' failed to satisfy constraint: ...``."""
    shown = "" if sensitive else f" {describe_value(value)}"
    return Violation(path, constraint, f"Value{shown} at '{path}' failed to satisfy constraint: {requirement}")


def violations_error(violations: list[Violation]) -> ServiceError:
    """The single ValidationException that reports all violations, joined as AWS joins them."""
    count = len(violations)
    noun = "error" if count == 1 else "errors"
    details = "; ".join(v.message for v in violations)
    return ServiceError("ValidationException", f"{count} validation {noun} detected: {details}", status=400)


# --- showing values the way AWS's (Java) messages do -------------------------------------

# Caps keep a hostile, deeply nested or huge wrong-typed value from blowing the recursion
# limit or the message size; scalars (the usual case) are shown whole, as AWS does.
_MAX_DEPTH = 4
_MAX_ITEMS = 20


def describe_value(value: Any) -> str:
    """``null`` or the value quoted in Java ``toString`` style: ``'[a, b]'``, ``'{k=v}'``."""
    if value is None:
        return "null"
    return f"'{_java_text(value, 0)}'"


def _java_text(value: Any, depth: int) -> str:
    render = _RENDERERS.get(type(value))
    if render is None:
        return str(value)
    return render(value, depth)


def _render_list(value: list, depth: int) -> str:
    if depth >= _MAX_DEPTH:
        return "[...]"
    items = [_java_text(item, depth + 1) for item in value[:_MAX_ITEMS]]
    if len(value) > _MAX_ITEMS:
        items.append("...")
    return "[" + ", ".join(items) + "]"


def _render_dict(value: dict, depth: int) -> str:
    if depth >= _MAX_DEPTH:
        return "{...}"
    items = [f"{key}={_java_text(item, depth + 1)}" for key, item in islice(value.items(), _MAX_ITEMS)]
    if len(value) > _MAX_ITEMS:
        items.append("...")
    return "{" + ", ".join(items) + "}"


_RENDERERS: dict[type, Callable[[Any, int], str]] = {
    str: lambda value, depth: value,
    bool: lambda value, depth: "true" if value else "false",
    type(None): lambda value, depth: "null",
    list: _render_list,
    tuple: _render_list,
    dict: _render_dict,
    bytes: lambda value, depth: base64.b64encode(value).decode("ascii"),
    datetime: lambda value, depth: value.isoformat(),
}


# --- compiled checkers ---------------------------------------------------------------------

# check(value, path, out) appends the violations of ``value`` (found at ``path``) to ``out``.
Check = Callable[[Any, str, list[Violation]], None]

_compiled_operations: dict[OperationModel, Check | None] = {}
_warned_patterns: set[str] = set()


def find_violations(operation_model: OperationModel, params: dict[str, Any]) -> list[Violation]:
    """Every constraint ``params`` (as ``parse_request`` returns them) breaks, in model order."""
    check = _compiled_operations.get(operation_model, _MISSING)
    if check is _MISSING:
        check = prepare(operation_model)
    if check is None:
        return []
    found: list[Violation] = []
    check(params, "", found)
    return found


def validate_params(operation_model: OperationModel, params: dict[str, Any]) -> None:
    """Raise one ValidationException naming every violation; return quietly when there is none."""
    found = find_violations(operation_model, params)
    if found:
        raise violations_error(found)


def prepare(operation_model: OperationModel) -> Check | None:
    """Compile (once) and cache the checker of an operation's input; None when nothing to check."""
    shape = operation_model.input_shape
    check = _compile(shape, {}) if shape is not None else None
    _compiled_operations[operation_model] = check
    return check


_MISSING: Any = object()


def _compile(shape: Shape, memo: dict[str, Any]) -> Check | None:
    """One checker per shape; None when neither the shape nor anything under it has a constraint."""
    if shape.name in memo:
        return memo[shape.name]
    kind = "document" if shape.metadata.get("document") else shape.type_name
    builder = _BUILDERS.get(kind, _no_constraints)
    # A forwarder lets a recursive shape refer to itself before its checker exists.
    cell: list[Check | None] = [None]
    memo[shape.name] = lambda value, path, out: cell[0](value, path, out) if cell[0] else None
    cell[0] = builder(shape, memo)
    memo[shape.name] = cell[0]
    return cell[0]


def _no_constraints(shape: Shape, memo: dict[str, Any]) -> None:
    return None


def _build_structure(shape: Shape, memo: dict[str, Any]) -> Check | None:
    required = set(shape.required_members)
    members: list[tuple[str, bool, Check | None]] = []
    for name, member_shape in shape.members.items():
        check = _compile(member_shape, memo)
        if check is not None or name in required:
            members.append((name, name in required, check))
    is_union = bool(shape.metadata.get("union"))
    if not members and not is_union:
        return None
    union_names = tuple(shape.members) if is_union else ()

    def check_structure(value: dict[str, Any], path: str, out: list[Violation]) -> None:
        prefix = f"{path}." if path else ""
        for name, is_required, check in members:
            member_value = value.get(name)
            if member_value is None:
                if is_required:
                    out.append(violation(prefix + name, REQUIRED, None, "Member must not be null"))
            elif check is not None:
                check(member_value, prefix + name, out)
        if union_names:
            chosen = [name for name in union_names if value.get(name) is not None]
            if len(chosen) != 1:
                out.append(violation(path or shape.name, UNION, value, "Member must have exactly one member set"))

    return check_structure


def _build_list(shape: Shape, memo: dict[str, Any]) -> Check | None:
    own_check = _scalar_check(_length_rules(shape), shape)
    item_check = _compile(shape.member, memo)
    if own_check is None and item_check is None:
        return None

    def check_list(value: list[Any], path: str, out: list[Violation]) -> None:
        if own_check is not None:
            own_check(value, path, out)
        if item_check is not None:
            for index, item in enumerate(value):
                if item is not None:
                    item_check(item, f"{path}.{index}", out)

    return check_list


def _build_map(shape: Shape, memo: dict[str, Any]) -> Check | None:
    own_check = _scalar_check(_length_rules(shape), shape)
    key_rules = _string_rules(shape.key)
    value_check = _compile(shape.value, memo)
    if own_check is None and key_rules is None and value_check is None:
        return None

    def check_map(value: dict[str, Any], path: str, out: list[Violation]) -> None:
        if own_check is not None:
            own_check(value, path, out)
        for key, item in value.items():
            if key_rules is not None and not key_rules.accepts(key):
                # AWS reports a bad key at the map's own path, wrapped as "Map keys must ...".
                for constraint, requirement in key_rules.broken(key):
                    out.append(violation(path, constraint, key, f"Map keys must satisfy constraint: [{requirement}]"))
            if value_check is not None and item is not None:
                value_check(item, f"{path}.{key}", out)

    return check_map


def _build_string(shape: Shape, memo: dict[str, Any]) -> Check | None:
    return _scalar_check(_string_rules(shape), shape)


def _build_length_only(shape: Shape, memo: dict[str, Any]) -> Check | None:
    return _scalar_check(_length_rules(shape), shape)


class _Rules(NamedTuple):
    """A scalar's constraints: one fast combined test, and the per-rule wording for failures."""

    accepts: Callable[[Any], bool]
    rules: list[tuple[str, Callable[[Any], bool], str]]  # (constraint kind, holds(value), requirement)

    def broken(self, value: Any) -> list[tuple[str, str]]:
        return [(constraint, requirement) for constraint, holds, requirement in self.rules if not holds(value)]


def _scalar_check(rules: _Rules | None, shape: Shape) -> Check | None:
    """Check a value against its own rules; one violation per broken rule, as AWS lists them."""
    if rules is None:
        return None
    accepts, broken = rules.accepts, rules.broken
    sensitive = bool(shape.metadata.get("sensitive"))

    def check_scalar(value: Any, path: str, out: list[Violation]) -> None:
        if not accepts(value):
            for constraint, requirement in broken(value):
                out.append(violation(path, constraint, value, requirement, sensitive))

    return check_scalar


def _build_number(shape: Shape, memo: dict[str, Any]) -> Check | None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    rules = []
    if low is not None:
        rules.append((RANGE, lambda value: value >= low, f"Member must have value greater than or equal to {low}"))
    if high is not None:
        rules.append((RANGE, lambda value: value <= high, f"Member must have value less than or equal to {high}"))
    if not rules:
        return None
    floor = -math.inf if low is None else low
    ceiling = math.inf if high is None else high
    return _scalar_check(_Rules(lambda value: floor <= value <= ceiling, rules), shape)


def _length_bounds(shape: Shape) -> tuple[int, float, list]:
    low, high = shape.metadata.get("min") or 0, shape.metadata.get("max")
    rules = []
    # min 0 can never fail; skipping it keeps unconstrained shapes checker-free.
    if low:
        rules.append((MIN, lambda value: len(value) >= low, f"Member must have length greater than or equal to {low}"))
    if high is not None:
        rules.append((MAX, lambda value: len(value) <= high, f"Member must have length less than or equal to {high}"))
    return low, math.inf if high is None else high, rules


def _length_rules(shape: Shape) -> _Rules | None:
    low, high, rules = _length_bounds(shape)
    if not rules:
        return None
    return _Rules(lambda value: low <= len(value) <= high, rules)


def _string_rules(shape: Shape) -> _Rules | None:
    low, high, rules = _length_bounds(shape)
    pattern = shape.metadata.get("pattern")
    compiled = _compile_pattern(pattern, shape.name) if pattern is not None else None
    fullmatch = compiled.fullmatch if compiled is not None else None
    if fullmatch is not None:
        # An over-long value is already rejected by its length; running a regex over
        # unbounded input would hand clients a way to burn CPU, so it is not matched.
        rules.append((PATTERN, lambda value: len(value) > high or fullmatch(value) is not None,
                      f"Member must satisfy regular expression pattern: {pattern}"))
    enum = shape.metadata.get("enum")
    allowed = frozenset(enum) if enum else None
    if allowed is not None:
        rules.append((ENUM, lambda value: value in allowed, f"Member must satisfy enum value set: [{', '.join(enum)}]"))
    if not rules:
        return None

    def accepts(value: str) -> bool:
        return (
            low <= len(value) <= high
            and (fullmatch is None or fullmatch(value) is not None)
            and (allowed is None or value in allowed)
        )

    return _Rules(accepts, rules)


def _compile_pattern(pattern: str, shape_name: str) -> re.Pattern[str] | None:
    """Java-dialect model regex as a Python one; None (logged once) when Python cannot express it.

    AWS matches the whole value (Java ``matches()``), hence ``fullmatch``; ``re.ASCII`` because
    Java's ``\\w``, ``\\d`` and ``\\s`` are ASCII-only.
    """
    try:
        return re.compile(python_pattern(pattern), re.ASCII)
    except re.error as error:
        if pattern not in _warned_patterns:
            _warned_patterns.add(pattern)
            # Known and few (tag keys' Unicode classes): a developer's note, not an operator's
            log.debug("pattern of shape %s is not a Python regex, not enforced: %r (%s)",
                      shape_name, pattern, error)
        return None


_BUILDERS: dict[str, Callable[[Shape, dict[str, Any]], Check | None]] = {
    "structure": _build_structure,
    "list": _build_list,
    "map": _build_map,
    "string": _build_string,
    "blob": _build_length_only,
    "integer": _build_number,
    "long": _build_number,
    "float": _build_number,
    "double": _build_number,
    "bigdecimal": _build_number,
    "biginteger": _build_number,
    # booleans, timestamps and documents state no constraints.
}
