"""Calling provider handlers as the gateway does, against the real SQLite store, with a test clock."""

from __future__ import annotations

import copy
from functools import lru_cache
from datetime import datetime, timedelta
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from searchtrail.protocol import serializer
from searchtrail.protocol.errors import ServiceError
from searchtrail.services.call import Call
from searchtrail.store.sqlite.resources import ResourceChanges, SqliteResources


@lru_cache(maxsize=None)
def service_model(service: str) -> Any:
    return botocore.session.get_session().get_service_model(service)


class ProviderHarness:
    """One transaction per call, rolled back on error; inputs and outputs checked against the model.
    Its repositories carry change counters, as the gateway's do, so a call's repeated reads
    come from the transaction's read cache."""

    def __init__(self, conn: Any, service: str, handlers: dict, account: str, region: str,
                 clock: list[datetime]) -> None:
        self.conn = conn
        self.model = service_model(service)
        self.handlers = handlers
        self.account, self.region = account, region
        self.changes = ResourceChanges()  # shared with every harness made by elsewhere()
        self.repo = SqliteResources(conn, account, region, self.changes)
        self.clock = clock  # shared with every harness made by elsewhere()
        self.last: Call | None = None
        self.prepared: dict = {}  # what the gateway's preparer would hand the next calls

    @property
    def now(self) -> datetime:
        return self.clock[0]

    def advance(self, seconds: float) -> None:
        self.clock[0] += timedelta(seconds=seconds)

    def elsewhere(self, account: str | None = None, region: str | None = None) -> "ProviderHarness":
        """The same provider, store and clock, called from another account and/or region."""
        other = copy.copy(self)
        other.account = account or self.account
        other.region = region or self.region
        other.repo = SqliteResources(self.conn, other.account, other.region, self.changes)
        return other

    def __call__(self, operation: str, **params: Any) -> dict:
        op = self.model.operation_model(operation)
        report = ParamValidator().validate(params, op.input_shape)
        assert not report.has_errors(), report.generate_report()
        self.last = Call(account_id=self.account, region=self.region, now=self.now,
                         request_id="r", resources=self.repo, operation=operation,
                         prepared=self.prepared)
        self.conn.execute("BEGIN IMMEDIATE")
        self.changes.forget_reads()  # as the writer's BEGIN does
        try:
            output = self.handlers[operation](self.last, params)
        except BaseException:
            self.conn.execute("ROLLBACK")
            self.changes.bump(None)  # as the writer's rollback does
            raise
        self.conn.execute("COMMIT")
        report = ParamValidator().validate(output, op.output_shape)
        assert not report.has_errors(), report.generate_report()
        serializer.to_wire(op, output)  # every output must serialize
        return output

    def fail(self, operation: str, **params: Any) -> ServiceError:
        with pytest.raises(ServiceError) as info:
            self(operation, **params)
        return info.value
