"""Deterministic valid sample values for any botocore shape, shared by the test suites."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

from botocore.model import Shape

from searchtrail.protocol.patches import python_pattern

try:  # Python 3.11 moved sre_parse to re._parser
    import re._parser as regex_parser
    from re import _constants as regex_codes
except ImportError:  # pragma: no cover
    import sre_constants as regex_codes
    import sre_parse as regex_parser

# A fixed instant with milliseconds (AWS's precision on the wire), so sub-second precision is
# part of every round trip.
SAMPLE_MOMENT = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=timezone.utc)


# --- a deterministic value generator for any shape -----------------------------------------

def sample_string_for_pattern(pattern: str, repeat: int) -> str:
    """A string the regex matches, unbounded repeats repeated ``repeat`` times (bounded)."""
    return "".join(_regex_text(regex_parser.parse(python_pattern(pattern)), repeat))


def _regex_text(items: Any, repeat: int) -> list[str]:
    out: list[str] = []
    for opcode, argument in items:
        out.extend(_REGEX_WRITERS[opcode](argument, repeat))
    return out


def _class_char(members: list[tuple[Any, Any]]) -> str:
    if members and members[0][0] is regex_codes.NEGATE:
        excluded = re.compile("[" + "".join(_class_source(member) for member in members[1:]) + "]", re.ASCII)
        return next(char for char in "azAZ09-_ " if not excluded.match(char))
    opcode, argument = members[0]
    if opcode is regex_codes.LITERAL:
        return chr(argument)
    if opcode is regex_codes.RANGE:
        return chr(argument[0])
    return _CATEGORY_SAMPLES[argument]


def _class_source(member: tuple[Any, Any]) -> str:
    opcode, argument = member
    if opcode is regex_codes.LITERAL:
        return re.escape(chr(argument))
    if opcode is regex_codes.RANGE:
        return f"{re.escape(chr(argument[0]))}-{re.escape(chr(argument[1]))}"
    return _CATEGORY_SOURCES[argument]


_CATEGORY_SAMPLES = {
    regex_codes.CATEGORY_DIGIT: "0",
    regex_codes.CATEGORY_WORD: "w",
    regex_codes.CATEGORY_SPACE: " ",
    regex_codes.CATEGORY_NOT_DIGIT: "d",
    regex_codes.CATEGORY_NOT_WORD: "-",
    regex_codes.CATEGORY_NOT_SPACE: "s",
}
_CATEGORY_SOURCES = {
    regex_codes.CATEGORY_DIGIT: r"\d",
    regex_codes.CATEGORY_WORD: r"\w",
    regex_codes.CATEGORY_SPACE: r"\s",
    regex_codes.CATEGORY_NOT_DIGIT: r"\D",
    regex_codes.CATEGORY_NOT_WORD: r"\W",
    regex_codes.CATEGORY_NOT_SPACE: r"\S",
}


def _repeat_text(argument: Any, repeat: int) -> list[str]:
    low, high, items = argument
    count = max(low, min(high, repeat))
    return _regex_text(items, repeat) * count


_REGEX_WRITERS = {
    regex_codes.LITERAL: lambda argument, repeat: [chr(argument)],
    regex_codes.NOT_LITERAL: lambda argument, repeat: ["b" if argument == ord("a") else "a"],
    regex_codes.ANY: lambda argument, repeat: ["a"],
    regex_codes.IN: lambda argument, repeat: [_class_char(argument)],
    regex_codes.MAX_REPEAT: _repeat_text,
    regex_codes.MIN_REPEAT: _repeat_text,
    regex_codes.SUBPATTERN: lambda argument, repeat: _regex_text(argument[-1], repeat),
    regex_codes.BRANCH: lambda argument, repeat: _regex_text(argument[1][0], repeat),
    regex_codes.AT: lambda argument, repeat: [],
    regex_codes.CATEGORY: lambda argument, repeat: [_CATEGORY_SAMPLES[argument]],
    # Lookarounds consume nothing; the caller checks the sample really matches.
    regex_codes.ASSERT: lambda argument, repeat: [],
    regex_codes.ASSERT_NOT: lambda argument, repeat: [],
    regex_codes.POSSESSIVE_REPEAT: _repeat_text,
    regex_codes.ATOMIC_GROUP: lambda argument, repeat: _regex_text(argument, repeat),
}


def sample_string(shape: Shape) -> str:
    low = shape.metadata.get("min", 0)
    high = shape.metadata.get("max", 10**6)
    if shape.enum:
        return shape.enum[-1]
    pattern = shape.metadata.get("pattern")
    if pattern is not None:
        compiled = re.compile(python_pattern(pattern), re.ASCII)
        for repeat in range(1, 130):
            text = sample_string_for_pattern(pattern, repeat)
            if low <= len(text) <= high and compiled.fullmatch(text):
                return text
        raise AssertionError(f"no sample for pattern {pattern!r} within length {low}..{high}")
    # Non-ASCII on purpose: the round trip must keep it intact.
    base = "välue-ü-" * (1 + max(low, 8) // 8)
    return base[: max(low, min(high, 12))]


def sample_number(shape: Shape, integral: bool) -> int | float:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and high is not None:
        middle = (low + high) / 2
        return int(middle) if integral else middle + 0.25 if middle + 0.25 <= high else middle
    if low is not None:
        return low + 3 if integral else low + 2.5
    if high is not None:
        return high - 1 if integral else high - 0.5
    return 17 if integral else 2.75


def sample_value(shape: Shape, depth: int = 0) -> Any:
    kind = "document" if shape.metadata.get("document") else shape.type_name
    return SAMPLERS[kind](shape, depth)


def _sample_structure(shape: Shape, depth: int) -> dict[str, Any]:
    if depth > 8:  # recursive shapes stop here
        return {}
    return {name: sample_value(member, depth + 1) for name, member in shape.members.items()}


def _sample_count(shape: Shape) -> int:
    return max(shape.metadata.get("min", 0), min(shape.metadata.get("max", 2), 2))


def _sample_list(shape: Shape, depth: int) -> list[Any]:
    item = shape.member
    if item.metadata.get("enum"):  # distinct enum values, in case the service treats the list as a set
        values = list(item.metadata["enum"])
        return [values[i % len(values)] for i in range(_sample_count(shape))]
    return [sample_value(item, depth + 1) for _ in range(_sample_count(shape))]


def _sample_map(shape: Shape, depth: int) -> dict[str, Any]:
    keys = list(shape.key.metadata.get("enum") or ()) or [sample_string(shape.key)]
    return {key: sample_value(shape.value, depth + 1) for key in keys[: max(1, shape.metadata.get("min", 1))]}


def _sample_blob(shape: Shape, depth: int) -> bytes:
    size = max(shape.metadata.get("min", 0), min(shape.metadata.get("max", 9), 9))
    return (b"\x00\xffbin\x01ary" * size)[:size]


SAMPLERS = {
    "structure": _sample_structure,
    "list": _sample_list,
    "map": _sample_map,
    "string": lambda shape, depth: sample_string(shape),
    "integer": lambda shape, depth: sample_number(shape, integral=True),
    "long": lambda shape, depth: sample_number(shape, integral=True) if shape.metadata else 1715000000123,
    "float": lambda shape, depth: sample_number(shape, integral=False),
    "double": lambda shape, depth: sample_number(shape, integral=False),
    "boolean": lambda shape, depth: True,
    "timestamp": lambda shape, depth: SAMPLE_MOMENT,
    "blob": _sample_blob,
    # A null inside a document is content, not an absent member: it must survive.
    "document": lambda shape, depth: {"Rules": [{"Resource": ["collection/x*"], "n": 1.5}], "Empty": None},
}
