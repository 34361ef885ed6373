"""Request JSON refused before it runs: objects that repeat a member name (another parser on
the path, a proxy or a WAF, may keep the other value, so what ran would not be what the record
shows), and nesting deeper than a record can hold."""

from __future__ import annotations

from typing import Any


class DuplicateMember(ValueError):
    """An object repeats the member name in ``args[0]``."""


def unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: the object, or DuplicateMember naming its first repeated name."""
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise DuplicateMember(name)
            seen.add(name)
    return members


# orjson writes at most 254 levels back out, and a call's record holds its request; no
# model's input comes near this.
MAX_DEPTH = 100


def nested_too_deeply(body: bytes, document: Any) -> bool:
    """Whether the arrays and objects of ``document`` (parsed from ``body``) nest more than
    MAX_DEPTH levels. Bodies with fewer brackets than that, nearly all, are not walked."""
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return False
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            return True
        members = value.values() if type(value) is dict else value
        pending += [(member, depth + 1) for member in members
                    if type(member) is dict or type(member) is list]
    return False
