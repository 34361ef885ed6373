"""The SQLite resource repository's key prefixes and multi-key reads against plain Python."""

from __future__ import annotations

import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from searchtrail.store.sqlite.connection import migrate
from searchtrail.store.sqlite.resources import SqliteResources

# Characters at the edges of the ranges the prefix bounds step over: the last code point,
# either side of the surrogates, the end of the BMP, and ordinary key characters.
EDGE_CHARACTERS = "/0ab\x7f\x80\ud7ff\ue000\uffff\U00010000\U0010ffff"
KEYS = st.lists(st.text(alphabet=EDGE_CHARACTERS, min_size=0, max_size=4), max_size=25,
                unique=True)
PREFIXES = st.text(alphabet=EDGE_CHARACTERS, max_size=3)


def repository() -> SqliteResources:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn)
    return SqliteResources(conn, "111122223333", "us-east-1")


def stored(keys: list[str]) -> SqliteResources:
    resources = repository()
    for key in keys:
        resources.insert("thing", key, {"key": key})
        resources.insert("other-thing", key, {"key": key})  # another kind: never counted
    resources.scoped("111122223333", "eu-west-1").insert("thing", "/", {"key": "elsewhere"})
    return resources


@settings(max_examples=300, deadline=None)
@given(keys=KEYS, prefix=PREFIXES)
def test_list_and_count_by_prefix_match_startswith(keys: list[str], prefix: str) -> None:
    resources = stored(keys)
    expected = sorted((key for key in keys if key.startswith(prefix)),
                      key=lambda key: key.encode())  # SQLite's binary order of UTF-8
    assert [doc["key"] for doc in resources.list("thing", prefix)] == expected
    assert resources.count("thing", prefix) == len(expected)


@settings(max_examples=100, deadline=None)
@given(keys=KEYS, asked=st.lists(st.text(alphabet=EDGE_CHARACTERS, max_size=4), max_size=5))
def test_get_many_returns_the_documents_that_exist(keys: list[str], asked: list[str]) -> None:
    resources = stored(keys)
    assert resources.get_many("thing", asked) == {key: {"key": key} for key in asked
                                                  if key in keys}


@settings(max_examples=100, deadline=None)
@given(keys=KEYS, bound=st.text(alphabet=EDGE_CHARACTERS, max_size=3),
       limit=st.none() | st.integers(min_value=0, max_value=30))
def test_delete_below_removes_the_keys_that_sort_first(keys: list[str], bound: str,
                                                       limit: int | None) -> None:
    resources = stored(keys)
    below = sorted((key for key in keys if key.encode() < bound.encode()), key=str.encode)
    below = below[:limit] if limit is not None else below  # the first ones, in key order
    assert resources.delete_below("thing", bound, limit) == len(below)
    assert sorted(doc["key"] for doc in resources.list("thing")) == sorted(set(keys) - set(below))
    assert resources.count("other-thing") == len(keys)  # another kind keeps all of its own
