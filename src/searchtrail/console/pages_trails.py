"""Trail pages: the list, creation, start/stop, and a trail's status — latest delivery, digest
and notification with their errors, what waits to be delivered — and the files it delivered."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Callable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from searchtrail.audit.delivery import Backlog, trail_backlog
from searchtrail.audit.objectstore import ObjectStore, ObjectStoreError, ObjectSummary
from searchtrail.console.links import resource_events
from searchtrail.console.readers import ThreadConnections
from searchtrail.console.ui import PREFIX, Outcome, Ui, Viewer
from searchtrail.services.cloudtrail import naming
from searchtrail.store import kinds
from searchtrail.store.sqlite.resources import SqliteResources

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,127}$")
FILES_SHOWN = 50
FILES_SCANNED = 5000


class TrailPages:
    def __init__(self, ui: Ui, store: ObjectStore, reads: ThreadConnections,
                 clock: Callable[[], datetime]) -> None:
        self._ui = ui
        self._store = store
        self._reads = reads  # the trail's backlog, read from the store
        self._clock = clock

    def routes(self) -> list[Route]:
        page, action = self._ui.page, self._ui.action
        return [
            Route("/trails", page(self.listing)),
            Route("/trails/new", page(self.new)),
            Route("/trails", action(self.create), methods=["POST"]),
            Route("/trails/{name}", page(self.detail)),
            Route("/trails/{name}/logging", action(self.logging), methods=["POST"]),
        ]

    async def listing(self, request: Request, viewer: Viewer) -> Response:
        outcome = await self._ui.call(request, viewer, "DescribeTrails", {}, service="cloudtrail")
        trails = []
        for trail in (outcome.result or {}).get("trailList", []):
            status = await self._ui.call(request, viewer, "GetTrailStatus",
                                         {"Name": trail["TrailARN"]}, service="cloudtrail")
            trails.append({**trail, "status": status.result or {}})
        return self._ui.render(request, "trails.html", {
            "title": "Trails", "nav": "trails", "outcome": outcome, "trails": trails,
            "notice": self._ui.notice(request, viewer, 200)},
            status=403 if outcome.denied else 200)

    async def new(self, request: Request, viewer: Viewer) -> Response:
        return self._form(request, {"name": "", "bucket": "", "prefix": "", "multi": "on",
                                    "validation": "on", "sns": "", "start": "on"})

    def _form(self, request: Request, values: dict[str, str], *,
              errors: dict[str, str] | None = None, outcome: Outcome | None = None,
              status: int = 200) -> Response:
        buckets = getattr(self._store, "buckets", None)
        return self._ui.render(request, "trail_new.html", {
            "title": "Create trail", "nav": "trails", "values": values, "errors": errors or {},
            "outcome": outcome, "buckets": [b.name for b in buckets()] if buckets else []},
            status=status)

    async def create(self, request: Request, viewer: Viewer, form: FormData) -> Response:
        values = {key: str(form.get(key) or "").strip() for key in
                  ("name", "bucket", "prefix", "multi", "validation", "sns", "start")}
        errors = {}
        if not NAME.match(values["name"]):
            errors["name"] = ("A trail name has 3 to 128 characters: letters, digits, periods, "
                              "underscores and hyphens, starting with a letter or digit.")
        if not values["bucket"]:
            errors["bucket"] = "Enter the bucket the trail delivers its log files to."
        if errors:
            return self._form(request, values, errors=errors, status=400)
        params: dict[str, Any] = {"Name": values["name"], "S3BucketName": values["bucket"],
                                  "IsMultiRegionTrail": values["multi"] == "on",
                                  "EnableLogFileValidation": values["validation"] == "on"}
        if values["prefix"]:
            params["S3KeyPrefix"] = values["prefix"]
        if values["sns"]:
            params["SnsTopicName"] = values["sns"]
        outcome = await self._ui.call(request, viewer, "CreateTrail", params, service="cloudtrail")
        if not outcome.ok:
            return self._form(request, values, outcome=outcome,
                              status=403 if outcome.denied else 400)
        notice = f"Created trail {values['name']}."
        if values["start"] == "on":
            started = await self._ui.call(request, viewer, "StartLogging",
                                          {"Name": values["name"]}, service="cloudtrail")
            notice += (" Logging started." if started.ok
                       else f" Logging did not start: {started.error_message}")
        return RedirectResponse(f"{PREFIX}/trails/{quote(values['name'])}?"
                                + self._ui.notice_query(viewer, notice), status_code=303)

    async def detail(self, request: Request, viewer: Viewer) -> Response:
        name = request.path_params["name"]
        outcome = await self._ui.call(request, viewer, "GetTrail", {"Name": name},
                                      service="cloudtrail")
        trail = (outcome.result or {}).get("Trail")
        if trail is None and outcome.error_code in ("", "TrailNotFoundException"):
            return self._ui.render(request, "error.html", {
                "title": "Trail not found", "nav": "trails",
                "message": f"No trail {name} in this region."}, status=404)
        status = files = backlog = None
        files_error = ""
        if trail is not None:
            status = await self._ui.call(request, viewer, "GetTrailStatus", {"Name": name},
                                         service="cloudtrail")
            if status.ok:  # files and backlog: for those who may see the trail's status
                try:
                    files = await run_in_threadpool(self._files, trail, viewer.session.account_id)
                except ObjectStoreError as exc:
                    files_error = f"{exc.code}: {exc.message}"
                backlog = await run_in_threadpool(self._backlog, trail["TrailARN"])
        return self._ui.render(request, "trail.html", {
            "title": name, "nav": "trails", "outcome": outcome, "trail": trail,
            "status": status, "files": files, "files_error": files_error, "backlog": backlog,
            "files_shown": FILES_SHOWN,
            "events_url": resource_events(trail["TrailARN"]) if trail else "",
            "notice": self._ui.notice(request, viewer)},
            status=403 if outcome.denied else 200)

    def _backlog(self, arn: str) -> Backlog | None:
        """What the trail has recorded and not yet stored in its bucket (None once deleted)."""
        conn = self._reads.get()
        _, account, _ = naming.parse_trail_arn(arn)
        stored = SqliteResources(conn, account, "").get(kinds.TRAIL, arn)
        return None if stored is None else trail_backlog(conn, arn, stored,
                                                         self._clock().timestamp())

    def _files(self, trail: dict[str, Any], account_id: str) -> list[ObjectSummary]:
        """The newest delivered log and digest files of this trail for this account."""
        prefix = (trail.get("S3KeyPrefix") or "").strip("/")
        root = f"{prefix}/AWSLogs/" if prefix else "AWSLogs/"
        found: list[ObjectSummary] = []
        after = ""
        logs, digests = f"/{account_id}/CloudTrail/", f"/{account_id}/CloudTrail-Digest/"
        scanned = 0
        while scanned < FILES_SCANNED:
            page, truncated = self._store.list_objects(trail["S3BucketName"], prefix=root,
                                                       start_after=after, max_keys=1000)
            scanned += len(page)
            found += [item for item in page if logs in item.key or (
                digests in item.key and f"_{trail['Name']}_" in item.key)]
            if not truncated or not page:
                break
            after = page[-1].key
        return sorted(found, key=lambda item: item.last_modified, reverse=True)[:FILES_SHOWN]

    async def logging(self, request: Request, viewer: Viewer, form: FormData) -> Response:
        name = request.path_params["name"]
        operation = "StartLogging" if form.get("logging") == "start" else "StopLogging"
        outcome = await self._ui.call(request, viewer, operation, {"Name": name},
                                      service="cloudtrail")
        notice = (("Logging started." if operation == "StartLogging" else "Logging stopped.")
                  if outcome.ok else f"{outcome.error_code}: {outcome.error_message}")
        return RedirectResponse(f"{PREFIX}/trails/{quote(name)}?"
                                + self._ui.notice_query(viewer, notice), status_code=303)
