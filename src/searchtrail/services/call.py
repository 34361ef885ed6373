"""What a provider method receives: who calls, where, when, and the storage to act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from searchtrail.store.api import ResourceRepository


@dataclass
class Call:
    """One operation invocation, handed to a provider handler as ``handler(call, params)``.

    ``params`` (passed separately) is the parsed and validated input, keyed by wire member
    names; the handler returns the output dict keyed by wire member names, with native
    types (``datetime`` for timestamps, ``bytes`` for blobs, ``int`` epoch ms where the
    model says long). Errors are raised as ``protocol.errors.ServiceError``.
    """

    account_id: str
    region: str
    now: datetime  # timezone-aware UTC; the single clock reading for this call
    request_id: str
    resources: ResourceRepository  # scoped to (account_id, region)
    operation: str
    settings: Any = None
    principal: Any = None
    # Filled by handlers for the CloudTrail record: [{"ARN", "accountId", "type"}]
    referenced_resources: list[dict[str, str]] = field(default_factory=list)
    # Event history bound to this unit's connection (used by LookupEvents).
    events: Any = None
    # What the operation's preparer (ServiceRegistry.preparer) worked out before the unit,
    # off the event loop.
    prepared: dict[str, Any] = field(default_factory=dict)
    # Other accounts that get a copy of this call's record (cross-account AssumeRole), each
    # copy sharing one sharedEventID, as CloudTrail does.
    shared_with_accounts: list[str] = field(default_factory=list)
    # Allocates a store sequence number above every record's so far, this transaction's
    # included (a new trail delivers only the records stored after it).
    next_seq: Callable[[], int] | None = None
    # The request's address, transport and User-Agent, for the condition keys a provider
    # evaluates itself (a role's trust policy: aws:SourceIp, aws:SecureTransport, ...).
    source_ip: str | None = None
    secure_transport: bool = False
    user_agent: str | None = None
