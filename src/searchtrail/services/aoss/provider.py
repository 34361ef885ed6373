"""OpenSearch Serverless (`opensearchserverless`, awsJson 1.0) control-plane provider.

Every handler is ``handler(call, params) -> output``: `params` is the parsed input already
validated against the botocore model (wire member names); the output uses the model's
output member names with native types (dates as epoch-millisecond ints, `policy` as a JSON
document). Errors are raised as `ServiceError`; all state goes through `call.resources`
and all time through `call.now`.

Resources recorded in `call.referenced_resources` (for the CloudTrail `resources` field):
- collections: ``{"ARN": <collection ARN>, "type": "AWS::AOSS::Collection"}``, by every
  collection or tag operation that resolved a collection (Create, BatchGet hits, Update,
  Delete, Tag/Untag/ListTags), also when the call then fails a later check;
- security policies: ``{"ARN": "arn:aws:aoss:<region>:<account>:security-policy/<type>/<name>",
  "type": "AWS::AOSS::SecurityPolicy"}`` (AWS has no ARN for these; this is the same
  ARN-like value everywhere) by Create/Get/Update/Delete;
- List* operations reference nothing (they enumerate, they do not act on a resource).
"""

from __future__ import annotations

from typing import Any, Callable

from . import collections, policies, tags
from .idempotency import idempotent

Handler = Callable[[Any, dict[str, Any]], dict[str, Any]]

# Operations whose `clientToken` makes retries idempotent.
IDEMPOTENT = frozenset(
    {
        "CreateSecurityPolicy",
        "UpdateSecurityPolicy",
        "DeleteSecurityPolicy",
        "CreateCollection",
        "UpdateCollection",
        "DeleteCollection",
    }
)


class OpenSearchServerlessProvider:
    """The aoss operations implemented so far, as a name -> handler table."""

    def __init__(self, create_seconds: float = 3.0, delete_seconds: float = 3.0) -> None:
        self.timing = collections.Timing(create_seconds, delete_seconds)

    # collections ---------------------------------------------------------------------
    def create_collection(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return collections.create_collection(call, params, self.timing)

    def batch_get_collection(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return collections.batch_get_collection(call, params)

    def list_collections(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return collections.list_collections(call, params)

    def update_collection(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return collections.update_collection(call, params)

    def delete_collection(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return collections.delete_collection(call, params, self.timing)

    # security policies ---------------------------------------------------------------
    def create_security_policy(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return policies.create_security_policy(call, params)

    def get_security_policy(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return policies.get_security_policy(call, params)

    def list_security_policies(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return policies.list_security_policies(call, params)

    def update_security_policy(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return policies.update_security_policy(call, params)

    def delete_security_policy(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return policies.delete_security_policy(call, params)

    # tags ----------------------------------------------------------------------------
    def tag_resource(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return tags.tag_resource(call, params, collections.tag_target)

    def untag_resource(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return tags.untag_resource(call, params, collections.tag_target)

    def list_tags_for_resource(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return tags.list_tags_for_resource(call, params, collections.tag_target)

    def handlers(self) -> dict[str, Handler]:
        table: dict[str, Handler] = {
            "CreateCollection": self.create_collection,
            "BatchGetCollection": self.batch_get_collection,
            "ListCollections": self.list_collections,
            "UpdateCollection": self.update_collection,
            "DeleteCollection": self.delete_collection,
            "CreateSecurityPolicy": self.create_security_policy,
            "GetSecurityPolicy": self.get_security_policy,
            "ListSecurityPolicies": self.list_security_policies,
            "UpdateSecurityPolicy": self.update_security_policy,
            "DeleteSecurityPolicy": self.delete_security_policy,
            "TagResource": self.tag_resource,
            "UntagResource": self.untag_resource,
            "ListTagsForResource": self.list_tags_for_resource,
        }
        return {
            name: idempotent(name, handler) if name in IDEMPOTENT else handler
            for name, handler in table.items()
        }
