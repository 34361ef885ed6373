"""Event history pages: the table, an event's detail, the chart, and the downloads."""

from __future__ import annotations

import contextlib
import json
import secrets
from datetime import datetime
from typing import Any, AsyncIterator, Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from searchtrail.console.chart import SPLITS, build_chart
from searchtrail.console.export import ExportTracker, csv_stream, json_stream
from searchtrail.console.history import (
    ATTRIBUTE_LABELS,
    COLUMNS,
    PRESETS,
    EventRow,
    HistoryFilter,
    column_labels,
    parse_filter,
    whole_number,
)
from searchtrail.console.links import resource_events, resource_page
from searchtrail.console.reading import HistoryReader, Refused
from searchtrail.console.ui import PREFIX, Ui, Viewer

CHART_CAP = 10_000  # events counted for one chart
MAX_BACK = 20  # pages remembered for "Newer events"; before them, "Newest events"
EXPORT_FORMATS = ("csv", "json")


class EventPages:
    def __init__(self, ui: Ui, reader: HistoryReader, exports: ExportTracker,
                 clock: Callable[[], datetime]) -> None:
        self._ui = ui
        self._reader = reader
        self._exports = exports
        self._clock = clock

    def routes(self) -> list[Route]:
        page = self._ui.page
        return [
            Route("/events", page(self.table)),
            Route("/events/chart", page(self.chart)),
            Route("/events/export", page(self.export)),
            Route("/events/export/progress", page(self.progress)),
            Route("/events/{event_id}", page(self.detail)),
        ]

    async def table(self, request: Request, viewer: Viewer) -> Response:
        flt = parse_filter(request.query_params, self._clock())
        token = request.query_params.get("token") or None
        back = request.query_params.getlist("prev")[-MAX_BACK:]
        # the page's number travels in the URL: only the last MAX_BACK page tokens do
        page_number = max(whole_number(request.query_params.get("page"), 6) or 1, len(back) + 1)
        outcome, rows, next_token = None, [], None
        if not flt.errors:
            outcome, records, next_token = await self._reader.page(request, viewer, flt, token)
            rows = [EventRow(record) for record in records]
        here = f"{PREFIX}/events"
        older = flt.query(token=next_token, prev=[*back, token or ""][-MAX_BACK:],
                          page=page_number + 1)
        newer = flt.query(token=back[-1] or None, prev=back[:-1], page=page_number - 1) \
            if back else None
        return self._ui.render(request, "events.html", {
            "title": "Event history", "nav": "events", "flt": flt, "rows": rows,
            "outcome": outcome, "columns": list(zip(flt.columns, column_labels(flt.columns))),
            "all_columns": COLUMNS, "attributes": ATTRIBUTE_LABELS, "presets": PRESETS,
            "page_number": page_number,
            "older_url": f"{here}?{older}" if next_token else None,
            "newer_url": f"{here}?{newer}" if newer else None,
            "newest_url": f"{here}?{flt.query()}" if page_number > 1 and not back else None,
            "refresh_url": f"{here}?{flt.query(pin=False)}",
            "query": flt.query(), "export_id": secrets.token_urlsafe(12),
            "export_formats": EXPORT_FORMATS,
            "splits": SPLITS, "resource_page": lambda arn: resource_page(arn, viewer.region),
            "resource_events": resource_events,
        })

    async def detail(self, request: Request, viewer: Viewer) -> Response:
        event_id = request.path_params["event_id"]
        now = self._clock().replace(microsecond=0)
        flt = HistoryFilter(("EventId", event_id), "90d", now - PRESETS["90d"][1], now)
        outcome, records, _ = await self._reader.page(request, viewer, flt)
        if outcome.ok and not records:
            return self._ui.render(request, "error.html", {
                "title": "Event not found", "nav": "events",
                "message": f"No event {event_id} in the last 90 days of {viewer.region}."},
                status=404)
        record = records[0] if records else {}
        resources = [{"type": item.get("type", ""), "arn": item.get("ARN", ""),
                      "page": resource_page(item.get("ARN", ""), viewer.region),
                      "events": resource_events(item.get("ARN", ""))}
                     for item in record.get("resources") or ()]
        return self._ui.render(request, "event.html", {
            "title": record.get("eventName", "Event"), "nav": "events", "outcome": outcome,
            "record": record, "row": EventRow(record), "resources": resources,
            "pretty": json.dumps(record, indent=2, ensure_ascii=False)},
            status=200 if outcome.ok else 403 if outcome.denied else 400)

    async def chart(self, request: Request, viewer: Viewer) -> Response:
        flt = parse_filter(request.query_params, self._clock())
        split = request.query_params.get("split")
        split = split if split in SPLITS else "name"
        records: list[dict[str, Any]] = []
        truncated = False
        error = None
        if not flt.errors:
            try:
                async with contextlib.aclosing(self._reader.pages(request, viewer, flt)) as pages:
                    async for page in pages:
                        records.extend(page)
                        if len(records) >= CHART_CAP:
                            truncated, records = True, records[:CHART_CAP]
                            break
            except Refused as refused:
                error = refused.outcome
        chart = build_chart(records, flt.start, flt.end, split, truncated=truncated)
        fragment = bool(request.headers.get("hx-request"))
        return self._ui.render(request, "_chart.html" if fragment else "chart_page.html", {
            "title": "Events over time", "nav": "events",
            "chart": chart, "error": error, "flt": flt, "splits": SPLITS,
            "query": flt.query()})

    async def export(self, request: Request, viewer: Viewer) -> Response:
        fmt = request.query_params.get("format")
        flt = parse_filter(request.query_params, self._clock())
        if fmt not in EXPORT_FORMATS or flt.errors:
            return self._ui.render(request, "error.html", {
                "title": "Cannot download", "nav": "events",
                "message": "Choose CSV or JSON, and a valid filter."}, status=400)
        export_id = (request.query_params.get("export") or secrets.token_urlsafe(12))[:32]
        progress = self._exports.start(viewer.session.key, export_id)
        pages = self._reader.pages(request, viewer, flt)
        try:
            first = await pages.__anext__()
        except Refused as refused:
            progress.fail(refused.outcome.error_message)
            progress.finish()
            return self._ui.render(request, "error.html", {
                "title": "Cannot download", "nav": "events",
                "message": refused.outcome.error_message},
                status=403 if refused.outcome.denied else 400)

        async def every_page() -> AsyncIterator[list[dict[str, Any]]]:
            yield first
            async for page in pages:
                yield page

        stream = (csv_stream if fmt == "csv" else json_stream)(every_page(), progress)
        stamp = self._clock().strftime("%Y%m%dT%H%M%SZ")
        name = f"event-history-{viewer.region}-{stamp}.{fmt}"
        return StreamingResponse(stream, media_type=("text/csv; charset=utf-8" if fmt == "csv"
                                                     else "application/json"),
                                 headers={"Content-Disposition": f'attachment; filename="{name}"',
                                          "Cache-Control": "no-store"})

    async def progress(self, request: Request, viewer: Viewer) -> Response:
        export_id = request.query_params.get("export", "")[:32]
        slot = request.query_params.get("slot")
        return self._ui.render(request, "_export_progress.html", {
            "progress": self._exports.get(viewer.session.key, export_id),
            "export_id": export_id, "slot": slot if slot in EXPORT_FORMATS else "csv",
            "polls": whole_number(request.query_params.get("n"), 3) or 0})
