"""The policy machinery shared by security, access (data) and lifecycle policies.

Each family is a `PolicyFamily`: its storage kind, its output member names, a schema per
policy type, its quotas and how to read resource patterns out of a document. The
operations (Create/Get/Update/Delete/List and BatchGet) behave the same for every family:

- the key is (`type`, `name`); a duplicate create is a ConflictException, an unknown policy
  a ResourceNotFoundException (moto's texts);
- `policyVersion` is base64 of "<lastModifiedDate ms>_1"; an update must name the current
  version (else ValidationException) and a real change yields a new, later version;
- documents are validated (one ValidationException listing every problem) and returned as
  JSON; the text may be at most `max_bytes` bytes (ServiceQuotaExceededException);
- policies of a type count against a per-account-and-Region quota;
- for the types in `unique_types`, a resource pattern may appear in one policy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from searchtrail.store.api import Conflict, KeysCounted

from .common import (
    Schema,
    aoss_arn,
    conflict,
    epoch_ms,
    new_version,
    listed,
    not_found,
    not_found_detail,
    paginate,
    parse_document,
    policy_version,
    quota_exceeded,
    reference,
    resources_overlap,
    validation,
    without_none,
)

# Per-policy size (OpenSearch Serverless quotas page: 10,240 bytes per policy).
MAX_POLICY_BYTES = 10_240


@dataclass(frozen=True)
class PolicyFamily:
    kind: str  # storage kind; keys are "<type>/<name>"
    arn_word: str  # ARN-like CloudTrail identifier: ...:<arn_word>/<type>/<name>
    resource_type: str  # CloudTrail resources[].type
    detail_member: str  # e.g. securityPolicyDetail
    summaries_member: str  # e.g. securityPolicySummaries
    list_operation: str  # names the List operation in its pagination tokens
    schemas: dict[str, Schema]  # policy type -> document schema
    quotas: dict[str, int]  # policy type -> policies per account and Region
    resources_of: Callable[[str, Any], list[str]]  # (type, valid document) -> patterns
    unique_types: dict[str, str] = field(default_factory=dict)  # type -> why (message tail)
    max_bytes: int = MAX_POLICY_BYTES
    page_default: int = 20  # List page size when maxResults is not given

    # --- helpers ------------------------------------------------------------------------

    def arn(self, call: Any, policy_type: str, name: str) -> str:
        """ARN-like identifier for CloudTrail `resources` (AWS defines no ARN for policies)."""
        return aoss_arn(call.region, call.account_id, f"{self.arn_word}/{policy_type}/{name}")

    @staticmethod
    def key(policy_type: str, name: str) -> str:
        """A policy's key under the family's kind."""
        return f"{policy_type}/{name}"

    @staticmethod
    def prefix(policy_type: str) -> str:
        """How the keys of a type's policies start."""
        return f"{policy_type}/"

    def reads_first(self, creates: bool, params: dict[str, Any]
                    ) -> list[tuple[str, str] | KeysCounted]:
        """What a create (its name's document and its type's count) or a delete (its
        document) reads first: the writer may read them ahead for a batch of calls."""
        policy_type = params["type"]
        scopes: list[tuple[str, str] | KeysCounted] = [
            (self.kind, self.key(policy_type, params["name"]))]
        if creates:
            scopes.append(KeysCounted(self.kind, self.prefix(policy_type)))
        return scopes

    def reference(self, call: Any, policy_type: str, name: str) -> None:
        reference(call, self.arn(call, policy_type, name), self.resource_type)

    def _not_found(self, policy_type: str, name: str) -> Exception:
        return not_found(f"Policy with name {name} and type {policy_type} is not found")

    def stored(self, call: Any, policy_type: str) -> list[dict[str, Any]]:
        """Every policy of a type, ordered by name."""
        return call.resources.list(self.kind, self.prefix(policy_type))

    def count(self, call: Any, policy_type: str) -> int:
        return call.resources.count(self.kind, self.prefix(policy_type))  # no documents parsed

    def detail(self, stored: dict[str, Any], with_policy: bool = True) -> dict[str, Any]:
        return without_none(
            {
                "type": stored["type"],
                "name": stored["name"],
                "policyVersion": stored["policyVersion"],
                "description": stored.get("description"),
                "policy": stored["policy"] if with_policy else None,
                "createdDate": stored["createdDate"],
                "lastModifiedDate": stored["lastModifiedDate"],
            }
        )

    def parse(self, call: Any, policy_type: str, name: str, text: str) -> tuple[Any, list[str]]:
        """The validated document and its resource patterns."""
        size = len(text.encode("utf-8"))
        if size > self.max_bytes:
            raise quota_exceeded(
                f"The policy document is {size} bytes; a {policy_type} policy can be at most "
                f"{self.max_bytes} bytes.",
                resourceType=self.arn_word,
            )
        doc = parse_document(text, self.schemas[policy_type])
        resources = self.resources_of(policy_type, doc)
        if policy_type in self.unique_types:
            self._check_unique_patterns(call, policy_type, name, resources)
        return doc, resources

    def _check_unique_patterns(
        self, call: Any, policy_type: str, name: str, resources: list[str]
    ) -> None:
        why = self.unique_types[policy_type]
        seen: set[str] = set()
        for pattern in resources:
            if pattern in seen:
                raise validation(
                    f"Resource pattern {pattern} appears more than once in the policy. {why}"
                )
            seen.add(pattern)
        for other in self.stored(call, policy_type):
            if other["name"] == name:
                continue
            for pattern in other["resources"]:
                if pattern in seen:
                    raise validation(
                        f"Resource pattern {pattern} is already used in {policy_type} policy "
                        f"{other['name']}. {why}"
                    )

    # --- operations ---------------------------------------------------------------------

    def create(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        policy_type, name = params["type"], params["name"]
        key = self.key(policy_type, name)
        self.reference(call, policy_type, name)
        # the name's check and the quota's count in one read: on PostgreSQL a round trip each
        existing, count = call.resources.get_and_count(self.kind, key, self.prefix(policy_type))
        if existing is not None:
            raise conflict(f"Policy with name {name} and type {policy_type} already exists")
        doc, resources = self.parse(call, policy_type, name, params["policy"])
        quota = self.quotas[policy_type]
        if count >= quota:
            raise quota_exceeded(
                f"You have reached the quota of {quota} {policy_type} policies for this account "
                "and Region. Delete a policy you no longer need, or request a quota increase.",
                resourceType=self.arn_word,
            )
        now = epoch_ms(call.now)
        stored = {
            "type": policy_type,
            "name": name,
            "policyVersion": policy_version(now),
            "description": params.get("description"),
            "policy": doc,
            "resources": resources,
            "createdDate": now,
            "lastModifiedDate": now,
        }
        try:
            call.resources.insert(self.kind, key, stored)
        except Conflict:
            raise conflict(f"Policy with name {name} and type {policy_type} already exists") from None
        return {self.detail_member: self.detail(stored)}

    def get(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        policy_type, name = params["type"], params["name"]
        stored = call.resources.get(self.kind, self.key(policy_type, name))
        if stored is None:
            raise self._not_found(policy_type, name)
        self.reference(call, policy_type, name)
        return {self.detail_member: self.detail(stored)}

    def update(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        policy_type, name = params["type"], params["name"]
        key = self.key(policy_type, name)
        stored = call.resources.get(self.kind, key)
        if stored is None:
            raise self._not_found(policy_type, name)
        self.reference(call, policy_type, name)
        if params["policyVersion"] != stored["policyVersion"]:
            raise validation(
                "Policy version specified in the request refers to an older version and policy "
                "has since changed"
            )
        changed = False
        if params.get("policy") is not None:
            doc, resources = self.parse(call, policy_type, name, params["policy"])
            if doc != stored["policy"]:
                stored["policy"], stored["resources"] = doc, resources
                changed = True
        if "description" in params and params["description"] != stored.get("description"):
            stored["description"] = params["description"]
            changed = True
        if changed:
            new_version(stored, call.now, "policyVersion")
            call.resources.put(self.kind, key, stored)
        return {self.detail_member: self.detail(stored)}

    def delete(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        policy_type, name = params["type"], params["name"]
        if not call.resources.delete(self.kind, self.key(policy_type, name)):
            raise self._not_found(policy_type, name)
        self.reference(call, policy_type, name)
        return {}

    def list(self, call: Any, params: dict[str, Any], filter_member: str) -> dict[str, Any]:
        """Summaries of one type, by name; `filter_member` names the resource filter list."""
        filters = params.get(filter_member) or []
        rows = (
            ((stored["name"],), stored)
            for stored in self.stored(call, params["type"])
            if not filters
            or any(resources_overlap(wanted, pattern)
                   for wanted in filters for pattern in stored["resources"])
        )
        page, token = paginate(self.list_operation, params, rows, 1, self.page_default,
                               listing=params["type"])
        return listed(self.summaries_member, [self.detail(s, with_policy=False) for s in page], token)

    def batch_get(
        self, call: Any, identifiers: list[dict[str, str]], what: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(details, error details) for {type, name} identifiers, each asked-for one once."""
        details, errors = [], []
        unique = dict.fromkeys((ident["type"], ident["name"]) for ident in identifiers)
        for policy_type, name in unique:
            stored = call.resources.get(self.kind, self.key(policy_type, name))
            if stored is None:
                errors.append(not_found_detail(what, type=policy_type, name=name))
                continue
            self.reference(call, policy_type, name)
            details.append(self.detail(stored))
        return details, errors
