"""Small data tables for model facts botocore leaves out: error statuses, regex dialect fixes."""

from __future__ import annotations

import re

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


def _join_surrogates(match: re.Match[str]) -> str:
    high, low = int(match.group(1), 16), int(match.group(2), 16)
    return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08X}"


def python_pattern(java_pattern: str) -> str:
    """The model's Java regex rewritten where Python's ``re`` spells the same thing differently."""
    return _SURROGATE_PAIR_ESCAPE.sub(_join_surrogates, java_pattern)
