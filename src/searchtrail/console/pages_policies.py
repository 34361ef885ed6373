"""Policy pages: encryption and network (security) policies and data access policies — list,
view, create, edit the JSON document (errors shown beside the editor), delete."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from searchtrail.console.ui import PREFIX, Outcome, Ui, Viewer

# type -> (label, API family: security or access)
POLICY_TYPES: dict[str, tuple[str, str]] = {
    "encryption": ("Encryption policy", "security"),
    "network": ("Network policy", "security"),
    "data": ("Data access policy", "access"),
}
NAME = re.compile(r"^[a-z][a-z0-9-]{2,31}$")
MAX_POLICY = 20 * 1024


def template(kind: str, account_id: str) -> str:
    """A starting document for a new policy of this type."""
    collection = ["collection/my-collection*"]
    if kind == "encryption":
        doc: Any = {"Rules": [{"ResourceType": "collection", "Resource": collection}],
                    "AWSOwnedKey": True}
    elif kind == "network":
        doc = [{"Rules": [{"ResourceType": "collection", "Resource": collection},
                          {"ResourceType": "dashboard", "Resource": collection}],
                "AllowFromPublic": True}]
    else:
        doc = [{"Rules": [{"ResourceType": "collection", "Resource": collection,
                           "Permission": ["aoss:*"]},
                          {"ResourceType": "index", "Resource": ["index/my-collection*/*"],
                           "Permission": ["aoss:*"]}],
                "Principal": [f"arn:aws:iam::{account_id}:root"]}]
    return json.dumps(doc, indent=2)


def json_problem(text: str) -> str:
    """Why ``text`` is not a JSON document, or "" when it is one."""
    if not text.strip():
        return "Enter the policy document (JSON)."
    if len(text.encode()) > MAX_POLICY:
        return f"A policy document has at most {MAX_POLICY} bytes."
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"Not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}."
    except RecursionError:
        return "Not valid JSON: arrays and objects nest too deeply."
    return ""


def _operations(kind: str) -> tuple[str, str]:
    family = POLICY_TYPES[kind][1]
    noun = "SecurityPolicy" if family == "security" else "AccessPolicy"
    return noun, "securityPolicyDetail" if family == "security" else "accessPolicyDetail"


class PolicyPages:
    def __init__(self, ui: Ui) -> None:
        self._ui = ui

    def routes(self) -> list[Route]:
        page, action = self._ui.page, self._ui.action
        return [
            Route("/policies", page(self.listing)),
            Route("/policies/new", page(self.new)),
            Route("/policies", action(self.create), methods=["POST"]),
            Route("/policies/validate", action(self.validate), methods=["POST"]),
            Route("/policies/{type}/{name}", page(self.detail)),
            Route("/policies/{type}/{name}", action(self.update), methods=["POST"]),
            Route("/policies/{type}/{name}/delete", action(self.delete), methods=["POST"]),
        ]

    async def listing(self, request: Request, viewer: Viewer) -> Response:
        sections = []
        for kind, (label, family) in POLICY_TYPES.items():
            operation = "ListSecurityPolicies" if family == "security" else "ListAccessPolicies"
            outcome = await self._ui.call(request, viewer, operation, {"type": kind})
            key = "securityPolicySummaries" if family == "security" else "accessPolicySummaries"
            sections.append({"kind": kind, "heading": label.removesuffix("y") + "ies",
                             "outcome": outcome,
                             "items": (outcome.result or {}).get(key, [])})
        return self._ui.render(request, "policies.html", {
            "title": "Policies", "nav": "policies", "sections": sections,
            "notice": self._ui.notice(request, viewer, 200)},
            status=403 if all(section["outcome"].denied for section in sections) else 200)

    async def new(self, request: Request, viewer: Viewer) -> Response:
        kind = request.query_params.get("type", "encryption")
        kind = kind if kind in POLICY_TYPES else "encryption"
        return self._new_form(request, {"type": kind, "name": "", "description": "",
                                        "policy": template(kind, viewer.session.account_id)})

    def _new_form(self, request: Request, values: dict[str, str], *,
                  errors: dict[str, str] | None = None, outcome: Outcome | None = None,
                  status: int = 200) -> Response:
        return self._ui.render(request, "policy_new.html", {
            "title": "Create policy", "nav": "policies", "values": values,
            "errors": errors or {}, "outcome": outcome, "types": POLICY_TYPES}, status=status)

    async def create(self, request: Request, viewer: Viewer, form: FormData) -> Response:
        values = {key: str(form.get(key) or "") for key in ("type", "name", "description",
                                                             "policy")}
        values["name"] = values["name"].strip()
        errors: dict[str, str] = {}
        if values["type"] not in POLICY_TYPES:
            errors["type"] = "Choose a policy type."
        if not NAME.match(values["name"]):
            errors["name"] = ("A policy name has 3 to 32 characters: lower-case letters, digits "
                              "and hyphens, starting with a letter.")
        problem = json_problem(values["policy"])
        if problem:
            errors["policy"] = problem
        if errors:
            return self._new_form(request, values, errors=errors, status=400)
        noun, _ = _operations(values["type"])
        params = {"type": values["type"], "name": values["name"], "policy": values["policy"]}
        if values["description"].strip():
            params["description"] = values["description"].strip()
        outcome = await self._ui.call(request, viewer, f"Create{noun}", params)
        if not outcome.ok:
            return self._new_form(request, values, outcome=outcome,
                                  errors={"policy": outcome.error_message},
                                  status=403 if outcome.denied else 400)
        return RedirectResponse(
            f"{PREFIX}/policies/{values['type']}/{values['name']}?" + self._ui.notice_query(
                viewer, f"Created {POLICY_TYPES[values['type']][0].lower()} {values['name']}."),
            status_code=303)

    async def validate(self, request: Request, viewer: Viewer, form: FormData) -> Response:
        return self._ui.render(request, "_policy_check.html",
                               {"problem": json_problem(str(form.get("policy") or ""))})

    async def _get(self, request: Request, viewer: Viewer) -> tuple[str, Outcome, dict | None]:
        kind, name = request.path_params["type"], request.path_params["name"]
        if kind not in POLICY_TYPES:
            return kind, Outcome(None), None
        noun, detail_key = _operations(kind)
        outcome = await self._ui.call(request, viewer, f"Get{noun}", {"type": kind,
                                                                     "name": name})
        return kind, outcome, (outcome.result or {}).get(detail_key)

    async def detail(self, request: Request, viewer: Viewer) -> Response:
        kind, outcome, policy = await self._get(request, viewer)
        if policy is None and (outcome.ok or outcome.error_code == "ResourceNotFoundException"):
            return self._missing(request)
        return self._detail(request, kind, outcome, policy, {
            "policy": json.dumps(policy.get("policy"), indent=2) if policy else "",
            "description": (policy or {}).get("description", "")},
            notice=self._ui.notice(request, viewer, 200))

    def _detail(self, request: Request, kind: str, outcome: Outcome, policy: dict | None,
                values: dict[str, str], *, errors: dict[str, str] | None = None,
                notice: str = "", status: int = 200) -> Response:
        return self._ui.render(request, "policy.html", {
            "title": request.path_params["name"], "nav": "policies", "kind": kind,
            "label": POLICY_TYPES[kind][0], "outcome": outcome, "policy": policy,
            "values": values, "errors": errors or {}, "notice": notice},
            status=403 if outcome.denied else status)

    async def update(self, request: Request, viewer: Viewer, form: FormData) -> Response:
        kind, outcome, policy = await self._get(request, viewer)
        if policy is None:
            return self._missing(request) if outcome.ok or outcome.error_code == \
                "ResourceNotFoundException" else self._detail(request, kind, outcome, None, {})
        values = {"policy": str(form.get("policy") or ""),
                  "description": str(form.get("description") or "").strip()}
        problem = json_problem(values["policy"])
        if problem:
            return self._detail(request, kind, outcome, policy, values,
                                errors={"policy": problem}, status=400)
        noun, _ = _operations(kind)
        params = {"type": kind, "name": policy["name"], "policy": values["policy"],
                  "policyVersion": str(form.get("policyVersion") or policy["policyVersion"]),
                  "description": values["description"]}
        result = await self._ui.call(request, viewer, f"Update{noun}", params)
        if not result.ok:
            return self._detail(request, kind, result, policy, values,
                                errors={"policy": result.error_message},
                                status=403 if result.denied else 400)
        return RedirectResponse(f"{PREFIX}/policies/{kind}/{policy['name']}?"
                                + self._ui.notice_query(viewer, "Saved a new version of the "
                                                        "policy."), status_code=303)

    async def delete(self, request: Request, viewer: Viewer, form: FormData) -> Response:
        kind, name = request.path_params["type"], request.path_params["name"]
        if kind not in POLICY_TYPES:
            return self._missing(request)
        noun, _ = _operations(kind)
        outcome = await self._ui.call(request, viewer, f"Delete{noun}", {"type": kind,
                                                                        "name": name})
        if not outcome.ok:
            _, _, policy = await self._get(request, viewer)
            return self._detail(request, kind, outcome, policy, {
                "policy": json.dumps((policy or {}).get("policy"), indent=2),
                "description": (policy or {}).get("description", "")},
                status=403 if outcome.denied else 400)
        return RedirectResponse(f"{PREFIX}/policies?"
                                + self._ui.notice_query(viewer, f"Deleted {name}."),
                                status_code=303)

    def _missing(self, request: Request) -> Response:
        return self._ui.render(request, "error.html", {
            "title": "Policy not found", "nav": "policies",
            "message": f"No {request.path_params['type']} policy named "
                       f"{request.path_params['name']} in this region."}, status=404)
