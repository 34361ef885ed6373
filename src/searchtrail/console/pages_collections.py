"""Collection pages: the list with status, creation (with the encryption and network policies
a collection needs, explained and offered), details, and deletion."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from searchtrail.console.links import resource_events
from searchtrail.console.ui import PREFIX, Outcome, Ui, Viewer

COLLECTION_TYPES = ("SEARCH", "TIMESERIES", "VECTORSEARCH")
NAME = re.compile(r"^[a-z][a-z0-9-]{2,31}$")
NAME_RULE = ("3 to 32 characters: lower-case letters, digits and hyphens, starting with a "
             "letter.")


def policy_name(collection: str, suffix: str) -> str:
    """An automatic policy name for a collection (policy names have the same rule)."""
    return f"{collection[:32 - len(suffix) - 1]}-{suffix}"


def encryption_policy(collection: str) -> dict[str, Any]:
    return {"Rules": [{"ResourceType": "collection", "Resource": [f"collection/{collection}"]}],
            "AWSOwnedKey": True}


def network_policy(collection: str) -> list[dict[str, Any]]:
    resource = [f"collection/{collection}"]
    return [{"Rules": [{"ResourceType": "collection", "Resource": resource},
                       {"ResourceType": "dashboard", "Resource": resource}],
             "AllowFromPublic": True}]


class CollectionPages:
    def __init__(self, ui: Ui) -> None:
        self._ui = ui

    def routes(self) -> list[Route]:
        page, action = self._ui.page, self._ui.action
        return [
            Route("/collections", page(self.listing)),
            Route("/collections/new", page(self.new)),
            Route("/collections", action(self.create), methods=["POST"]),
            Route("/collections/{id}", page(self.detail)),
            Route("/collections/{id}/delete", page(self.confirm_delete)),
            Route("/collections/{id}/delete", action(self.delete), methods=["POST"]),
        ]

    async def listing(self, request: Request, viewer: Viewer) -> Response:
        outcome = await self._ui.call(request, viewer, "ListCollections", {"maxResults": 100})
        items = (outcome.result or {}).get("collectionSummaries", [])
        return self._ui.render(request, "collections.html", {
            "title": "Collections", "nav": "collections", "outcome": outcome,
            "collections": sorted(items, key=lambda item: item.get("name", "")),
            "notice": self._ui.notice(request, viewer, 200)},
            status=403 if outcome.denied else 200)

    async def new(self, request: Request, viewer: Viewer) -> Response:
        return await self._form(request, viewer, {"name": "", "type": "SEARCH",
                                                  "description": "", "standby": "ENABLED",
                                                  "encryption": "create", "network": "public"})

    async def _form(self, request: Request, viewer: Viewer, values: dict[str, str], *,
                    errors: dict[str, str] | None = None, outcome: Outcome | None = None,
                    done: list[str] | None = None, status: int = 200) -> Response:
        policies = await self._ui.call(request, viewer, "ListSecurityPolicies",
                                       {"type": "encryption"})
        return self._ui.render(request, "collection_new.html", {
            "title": "Create collection", "nav": "collections", "values": values,
            "errors": errors or {}, "outcome": outcome, "done": done or [],
            "types": COLLECTION_TYPES, "name_rule": NAME_RULE,
            "encryption_policies": (policies.result or {}).get("securityPolicySummaries", []),
            "sample_encryption": json.dumps(encryption_policy(values["name"] or "NAME"), indent=2),
            "sample_network": json.dumps(network_policy(values["name"] or "NAME"), indent=2),
        }, status=status)

    async def create(self, request: Request, viewer: Viewer, form: FormData) -> Response:
        values = {key: str(form.get(key) or "").strip() for key in
                  ("name", "type", "description", "standby", "encryption", "network")}
        errors: dict[str, str] = {}
        name = values["name"]
        if not NAME.match(name):
            errors["name"] = "A collection name has " + NAME_RULE
        if values["type"] not in COLLECTION_TYPES:
            errors["type"] = "Choose a collection type."
        if len(values["description"]) > 1000:
            errors["description"] = "A description has at most 1000 characters."
        if errors:
            return await self._form(request, viewer, values, errors=errors, status=400)
        done: list[str] = []
        steps = []
        if values["encryption"] == "create":
            steps.append(("CreateSecurityPolicy", {
                "type": "encryption", "name": policy_name(name, "encryption"),
                "description": f"Encryption for collection {name} (created in the console)",
                "policy": json.dumps(encryption_policy(name))},
                f"encryption policy {policy_name(name, 'encryption')}"))
        if values["network"] == "public":
            steps.append(("CreateSecurityPolicy", {
                "type": "network", "name": policy_name(name, "network"),
                "description": f"Public access to collection {name} (created in the console)",
                "policy": json.dumps(network_policy(name))},
                f"network policy {policy_name(name, 'network')}"))
        collection: dict[str, Any] = {"name": name, "type": values["type"],
                                      "standbyReplicas": ("DISABLED" if values["standby"] ==
                                                          "DISABLED" else "ENABLED")}
        if values["description"]:
            collection["description"] = values["description"]
        steps.append(("CreateCollection", collection, f"collection {name}"))
        for operation, params, label in steps:
            outcome = await self._ui.call(request, viewer, operation, params)
            if not outcome.ok:
                return await self._form(request, viewer, values, outcome=outcome, done=done,
                                        status=403 if outcome.denied else 400)
            done.append(label)
        created = (outcome.result or {}).get("createCollectionDetail", {})
        notice = self._ui.notice_query(viewer, f"Creating collection {name}. Created: "
                                                f"{', '.join(done)}.")
        return RedirectResponse(f"{PREFIX}/collections/{quote(created.get('id', ''))}"
                                f"?{notice}", status_code=303)

    async def _one(self, request: Request, viewer: Viewer) -> tuple[Outcome, dict | None]:
        outcome = await self._ui.call(request, viewer, "BatchGetCollection",
                                      {"ids": [request.path_params["id"]]})
        details = (outcome.result or {}).get("collectionDetails") or []
        return outcome, details[0] if details else None

    async def detail(self, request: Request, viewer: Viewer) -> Response:
        outcome, collection = await self._one(request, viewer)
        if outcome.ok and collection is None:
            return self._missing(request)
        return self._ui.render(request, "collection.html", {
            "title": collection["name"] if collection else "Collection", "nav": "collections",
            "outcome": outcome, "collection": collection,
            "events_url": resource_events(collection["arn"]) if collection else "",
            "notice": self._ui.notice(request, viewer)},
            status=403 if outcome.denied else 200)

    async def confirm_delete(self, request: Request, viewer: Viewer) -> Response:
        outcome, collection = await self._one(request, viewer)
        if outcome.ok and collection is None:
            return self._missing(request)
        return self._ui.render(request, "collection_delete.html", {
            "title": "Delete collection", "nav": "collections", "outcome": outcome,
            "collection": collection, "error": ""})

    async def delete(self, request: Request, viewer: Viewer, form: FormData) -> Response:
        outcome, collection = await self._one(request, viewer)
        if collection is None:
            return self._missing(request) if outcome.ok else self._ui.render(
                request, "collection_delete.html", {"title": "Delete collection",
                                                    "nav": "collections", "outcome": outcome,
                                                    "collection": None, "error": ""},
                status=403 if outcome.denied else 400)
        if str(form.get("confirm") or "").strip() != collection["name"]:
            return self._ui.render(request, "collection_delete.html", {
                "title": "Delete collection", "nav": "collections", "outcome": None,
                "collection": collection,
                "error": f"Type {collection['name']} to confirm the deletion."}, status=400)
        outcome = await self._ui.call(request, viewer, "DeleteCollection",
                                      {"id": collection["id"]})
        if not outcome.ok:
            return self._ui.render(request, "collection_delete.html", {
                "title": "Delete collection", "nav": "collections", "outcome": outcome,
                "collection": collection, "error": ""}, status=403 if outcome.denied else 400)
        notice = self._ui.notice_query(viewer, f"Deleting collection {collection['name']}.")
        return RedirectResponse(f"{PREFIX}/collections?{notice}", status_code=303)

    def _missing(self, request: Request) -> Response:
        return self._ui.render(request, "error.html", {
            "title": "Collection not found", "nav": "collections",
            "message": f"No collection {request.path_params['id']} in this region."}, status=404)
