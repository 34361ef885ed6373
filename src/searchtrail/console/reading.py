"""Reading a filter's events: the first page through LookupEvents (authorized and recorded as
the viewer's call), further pages through the same EventHistory query on the token it issued."""

from __future__ import annotations

from datetime import datetime
from typing import Any, AsyncIterator, Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from searchtrail.audit.query import EventHistory
from searchtrail.console.history import PAGE_SIZE, HistoryFilter
from searchtrail.console.readers import ThreadConnections
from searchtrail.console.ui import Outcome, Ui, Viewer

BULK_PAGE = 500  # events per query after the first page (exports, charts)


class Refused(Exception):
    """LookupEvents refused the first page (denied, bad token, ...)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.error_message)
        self.outcome = outcome


class HistoryReader:
    def __init__(self, ui: Ui, history: EventHistory, reads: ThreadConnections,
                 clock: Callable[[], datetime]) -> None:
        self._ui = ui
        self._history = history
        self._reads = reads
        self._clock = clock

    async def page(self, request: Request, viewer: Viewer, flt: HistoryFilter,
                   token: str | None = None) -> tuple[Outcome, list[dict[str, Any]], str | None]:
        """One page as LookupEvents answers it: (outcome, records newest first, next token)."""
        outcome = await self._ui.call(request, viewer, "LookupEvents",
                                      flt.lookup_params(limit=PAGE_SIZE, token=token),
                                      service="cloudtrail")
        if not outcome.ok or outcome.result is None:
            return outcome, [], None
        records = [orjson.loads(item["CloudTrailEvent"]) for item in outcome.result["Events"]]
        return outcome, records, outcome.result.get("NextToken")

    async def pages(self, request: Request, viewer: Viewer,
                    flt: HistoryFilter) -> AsyncIterator[list[dict[str, Any]]]:
        """Every event of the filter, page by page; raises Refused before the first one when
        LookupEvents refuses."""
        outcome, records, token = await self.page(request, viewer, flt)
        if not outcome.ok:
            raise Refused(outcome)
        yield records
        event_filter = flt.event_filter(viewer.session.account_id, viewer.region)
        while token:
            page = await run_in_threadpool(self._next, event_filter, token)
            token = page.next_token
            yield [orjson.loads(event.record) for event in page.events]

    def _next(self, event_filter: Any, token: str) -> Any:
        return self._history.page(self._reads.get(), event_filter, limit=BULK_PAGE, token=token,
                                  now=self._clock())
