"""Small data tables for model facts botocore leaves out: error statuses, regex dialect fixes."""

from __future__ import annotations

import functools
import re
import unicodedata

# HTTP statuses for errors whose shapes carry no ``error.httpStatusCode``. aoss values come
# from the Smithy model (via SDK code generated from it); CloudTrail errors are observed as
# 400, which is also the fallback, so it needs no table.
ERROR_STATUS_BY_SERVICE: dict[str, dict[str, int]] = {
    "opensearchserverless": {
        "ValidationException": 400,
        "ResourceNotFoundException": 404,
        "ConflictException": 409,
        "ServiceQuotaExceededException": 402,
        "OcuLimitExceededException": 402,
        "InternalServerException": 500,
    },
}

# Codes any service may answer with although no model lists them.
COMMON_ERROR_STATUS: dict[str, int] = {
    "InternalFailure": 500,
    "InternalServerException": 500,
    "ServiceUnavailable": 503,
}

DEFAULT_ERROR_STATUS = 400

# Model patterns are Java regexes. Java writes astral characters as UTF-16 surrogate pairs
# (``\uD800\uDC00``), which Python's ``re`` rejects inside classes; Python wants the code point.
_SURROGATE_PAIR_ESCAPE = re.compile(r"\\u(D[89AB][0-9A-Fa-f]{2})\\u(D[C-Fa-f][0-9A-Fa-f]{2})", re.I)

# ``.*[X]+.*`` (aoss PolicyDocument, samlMetadata, saml*Attribute) backtracks catastrophically
# in a backtracking engine: a 4 KB policy took 70 s to reject. It is rewritten to a regex
# for the same language that runs in linear time.
_ANY_RUN_ANY = re.compile(r"\.\*(\[(?:\\.|[^\]\\])+\])\+\.\*")


# Java's Unicode property classes (IAM, STS and Organizations tag keys and values:
# ``[\p{L}\p{Z}\p{N}_.:/=+\-@]+``), which Python's ``re`` lacks, as the code point ranges of
# their general categories; a class of its own where one stands outside brackets.
_PROPERTY_CLASS = re.compile(r"\\p\{([LZN])\}")
# Letters, numbers and separators lie in planes 0 to 3 (the planes above hold none)
_LAST_CODE_POINT_WITH_THEM = 0x3FFFF


@functools.lru_cache(maxsize=1)
def _category_ranges() -> dict[str, str]:
    """For each of the general categories L, Z and N, its code points as ranges for a
    character class, e.g. ``\\U00000041-\\U0000005a...``, found in one pass."""
    ranges: dict[str, list[str]] = {"L": [], "Z": [], "N": []}
    run_category, run_start = "", 0
    for code in range(_LAST_CODE_POINT_WITH_THEM + 2):
        category = unicodedata.category(chr(code))[0] if code <= _LAST_CODE_POINT_WITH_THEM \
            else ""
        if category != run_category:
            if run_category in ranges:
                ranges[run_category].append(f"\\U{run_start:08x}-\\U{code - 1:08x}")
            run_category, run_start = category, code
    return {category: "".join(parts) for category, parts in ranges.items()}


def _expand_property_classes(pattern: str) -> str:
    out, in_class, position = [], False, 0
    while position < len(pattern):
        found = _PROPERTY_CLASS.match(pattern, position)
        if found is not None:
            ranges = _category_ranges()[found.group(1)]
            out.append(ranges if in_class else f"[{ranges}]")
            position = found.end()
            continue
        char = pattern[position]
        if char == "\\":
            out.append(pattern[position:position + 2])
            position += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        position += 1
    return "".join(out)


def _join_surrogates(match: re.Match[str]) -> str:
    high, low = int(match.group(1), 16), int(match.group(2), 16)
    return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08X}"


def _linear_any_run_any(char_class: str) -> str:
    """``.*X+.*`` without backtracking (``.`` excludes only the newline).

    A value without newlines matches when it holds one X. A value with newlines matches only
    if X includes the newline and everything from its first to its last newline is in X.
    """
    some_x_no_newline = f"(?=.*{char_class}).*"
    if re.fullmatch(char_class, "\n") is None:
        return some_x_no_newline
    x_but_newline = f"(?:(?!\\n){char_class})"
    newlines_inside_one_x_run = f".*+\\n(?:{x_but_newline}*+\\n)*+.*+"
    return f"{some_x_no_newline}|{newlines_inside_one_x_run}"


def python_pattern(java_pattern: str) -> str:
    """The model's Java regex as a Python regex for the same language, safe to run on any input."""
    pattern = _SURROGATE_PAIR_ESCAPE.sub(_join_surrogates, java_pattern)
    if "\\p{" in pattern:
        pattern = _expand_property_classes(pattern)
    any_run_any = _ANY_RUN_ANY.fullmatch(pattern)
    if any_run_any is not None:
        return _linear_any_run_any(any_run_any.group(1))
    return pattern
