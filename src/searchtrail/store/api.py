"""Repository interfaces the services and the audit trail are written against."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol


class Conflict(Exception):
    """A row with the same key exists already (driver integrity errors become this)."""


class StoreUnavailable(Exception):
    """The store cannot write: the call must fail closed before any side effect."""


class KeysCounted(NamedTuple):
    """A count a unit reads first, which the writer may read ahead for its batch: how many
    documents of ``kind`` in (account, region) have a key starting with ``prefix``. A
    provider names it with account and region empty; the gateway fills in the call's."""

    kind: str
    prefix: str
    account: str = ""
    region: str = ""


class ResourceRepository(Protocol):
    """JSON documents keyed by (kind, key), scoped to one account and region.

    Documents hold JSON types only (str, int, float, bool, None, list, dict); dates are
    epoch milliseconds as ints. Every method runs inside the caller's unit of work.
    """

    def get(self, kind: str, key: str) -> dict[str, Any] | None: ...

    def get_many(self, kind: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The documents of those keys that exist, by key (one round trip)."""

    def insert(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        """Add a new document; raises Conflict when the key exists."""

    def put(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        """Create or replace."""

    def delete(self, kind: str, key: str) -> bool:
        """Remove; False when there was nothing to remove."""

    def delete_below(self, kind: str, key: str, limit: int | None = None) -> int:
        """Remove the documents of a kind whose key sorts before ``key`` (the first ``limit``
        of them in key order, when given); how many."""

    def list(self, kind: str, prefix: str = "") -> list[dict[str, Any]]:
        """All documents of a kind whose key starts with prefix, ordered by key."""

    def count(self, kind: str, prefix: str = "") -> int:
        """How many documents of a kind have a key starting with prefix."""

    def get_and_count(self, kind: str, key: str, prefix: str) -> tuple[dict[str, Any] | None, int]:
        """get(kind, key) and count(kind, prefix) in one read (one round trip): a create's
        check that its name is free and its quota count."""

    def scoped(self, account_id: str, region: str) -> "ResourceRepository":
        """The same repository, looking at another account/region (region '' = global)."""
