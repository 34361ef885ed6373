"""JSON objects that repeat a member name, refused: another parser on the path (a proxy, a
WAF) may keep the other value, so what ran would not be what the record shows."""

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
