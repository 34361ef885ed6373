"""OpenSearch Serverless (`opensearchserverless`, awsJson 1.0) control-plane provider: all 54
operations of the 2021-11-01 model.

Every handler is ``handler(call, params) -> output``: `params` is the parsed input already
validated against the botocore model (wire member names); the output uses the model's
output member names with native types (dates as epoch-millisecond ints, `Timestamp`
members as datetimes, policy documents and index schemas as JSON). Errors are raised as
`ServiceError`; all state goes through `call.resources` and all time through `call.now`.
Every operation that takes a `clientToken` is idempotent on it (`idempotency`).

Resources recorded in `call.referenced_resources` (for the CloudTrail `resources` field),
by every operation that resolved the resource (Create, Get, BatchGet hits, Update, Delete,
Cancel, Tag/Untag/ListTags), also when the call then fails a later check:
- collections ``collection/<id>`` (AWS::AOSS::Collection), collection groups
  ``collection-group/<id>`` (AWS::AOSS::CollectionGroup), ingestion jobs and streams
  ``collection/<id>/ingestion-job|ingestion-stream/<id>`` (AWS::AOSS::IngestionJob,
  AWS::AOSS::IngestionStream): their real ARNs;
- ARN-like identifiers (``arn:aws:aoss:<region>:<account>:`` + path) where AWS defines no
  ARN: ``security-policy/<type>/<name>`` (AWS::AOSS::SecurityPolicy),
  ``access-policy/data/<name>`` (AWS::AOSS::AccessPolicy),
  ``lifecycle-policy/retention/<name>`` (AWS::AOSS::LifecyclePolicy; also the policies
  BatchGetEffectiveLifecyclePolicy found), ``security-config/<id>``
  (AWS::AOSS::SecurityConfig), ``vpc-endpoint/<id>`` (AWS::AOSS::VpcEndpoint),
  ``collection/<id>/index/<name>`` (AWS::AOSS::Index);
- List* operations, account settings and GetPoliciesStats reference nothing.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any, Callable

from . import (
    access_policies,
    account,
    collection_groups,
    collections,
    indexes,
    ingestion,
    lifecycle,
    policies,
    security_configs,
    tags,
    vpc_endpoints,
)
from searchtrail.store.api import KeysCounted

from .common import Timing
from .idempotency import PrunedDays, idempotent, token_records

Handler = Callable[[Any, dict[str, Any]], dict[str, Any]]

# The creates and deletes of one policy document, by operation
POLICY_WRITES = {
    "CreateSecurityPolicy": policies.SECURITY_POLICIES,
    "DeleteSecurityPolicy": policies.SECURITY_POLICIES,
    "CreateAccessPolicy": access_policies.ACCESS_POLICIES,
    "DeleteAccessPolicy": access_policies.ACCESS_POLICIES,
    "CreateLifecyclePolicy": lifecycle.LIFECYCLE_POLICIES,
    "DeleteLifecyclePolicy": lifecycle.LIFECYCLE_POLICIES,
}

# Operations whose `clientToken` makes retries idempotent: every one that takes it.
IDEMPOTENT = frozenset(
    {
        "CreateSecurityPolicy",
        "UpdateSecurityPolicy",
        "DeleteSecurityPolicy",
        "CreateAccessPolicy",
        "UpdateAccessPolicy",
        "DeleteAccessPolicy",
        "CreateLifecyclePolicy",
        "UpdateLifecyclePolicy",
        "DeleteLifecyclePolicy",
        "CreateSecurityConfig",
        "UpdateSecurityConfig",
        "DeleteSecurityConfig",
        "CreateCollection",
        "UpdateCollection",
        "DeleteCollection",
        "CreateCollectionGroup",
        "UpdateCollectionGroup",
        "DeleteCollectionGroup",
        "CreateVpcEndpoint",
        "UpdateVpcEndpoint",
        "DeleteVpcEndpoint",
        "CreateIngestionJob",
        "CancelIngestionJob",
        "CreateIngestionStream",
        "DeleteIngestionStream",
    }
)

# ARN resource paths the tag operations accept, and who finds them.
TAG_FINDERS = (
    (collections.TAG_PATH, collections.tag_target),
    (collection_groups.TAG_PATH, collection_groups.tag_target),
    (ingestion.JOB_TAG_PATH, ingestion.JOBS.tag_target),
    (ingestion.STREAM_TAG_PATH, ingestion.STREAMS.tag_target),
)


def tag_target(call: Any, arn: str) -> tags.TagTarget:
    return tags.resolve(call, arn, TAG_FINDERS)


class OpenSearchServerlessProvider:
    """The aoss operations as a name -> handler table.

    `create_seconds` is how long collections and VPC endpoints stay CREATING/PENDING,
    ingestion jobs and streams CREATING (and a job ACTIVE); `delete_seconds` how long
    collections, VPC endpoints and ingestion streams stay DELETING and jobs CANCELLING.
    """

    def __init__(self, create_seconds: float = 3.0, delete_seconds: float = 3.0,
                 pruned: PrunedDays | None = None) -> None:
        self.timing = Timing(create_seconds, delete_seconds)
        # shared by every idempotent operation's handler
        self.pruned = pruned if pruned is not None else PrunedDays()

    def reads_ahead(self) -> dict[str, Callable[..., Any]]:
        """What a call's unit reads first, known before it runs (ServiceRegistry.read_ahead):
        an idempotent operation's token records; the policy a delete removes (its DELETE's
        row count is then known beforehand: PostgreSQL sends it with the next statement); a
        policy create's name check and quota count."""
        return {name: partial(_reads_first, name) for name in IDEMPOTENT}

    @staticmethod
    def resource_condition_keys(repo: Any, operation: str, params: dict[str, Any],
                                resource: str) -> list[dict[str, Any]]:
        """ServiceRegistry.resource_condition_keys: a collection's."""
        return collections.condition_keys(repo, operation, params, resource)

    def handlers(self) -> dict[str, Handler]:
        timing = self.timing
        table: dict[str, Handler] = {
            # collections
            "CreateCollection": partial(collections.create_collection, timing=timing),
            "BatchGetCollection": collections.batch_get_collection,
            "ListCollections": collections.list_collections,
            "UpdateCollection": collections.update_collection,
            "DeleteCollection": partial(collections.delete_collection, timing=timing),
            # collection groups
            "CreateCollectionGroup": collection_groups.create_collection_group,
            "BatchGetCollectionGroup": collection_groups.batch_get_collection_group,
            "ListCollectionGroups": collection_groups.list_collection_groups,
            "UpdateCollectionGroup": collection_groups.update_collection_group,
            "DeleteCollectionGroup": collection_groups.delete_collection_group,
            # security policies
            "CreateSecurityPolicy": policies.create_security_policy,
            "GetSecurityPolicy": policies.get_security_policy,
            "ListSecurityPolicies": policies.list_security_policies,
            "UpdateSecurityPolicy": policies.update_security_policy,
            "DeleteSecurityPolicy": policies.delete_security_policy,
            # access (data) policies
            "CreateAccessPolicy": access_policies.create_access_policy,
            "GetAccessPolicy": access_policies.get_access_policy,
            "ListAccessPolicies": access_policies.list_access_policies,
            "UpdateAccessPolicy": access_policies.update_access_policy,
            "DeleteAccessPolicy": access_policies.delete_access_policy,
            # lifecycle policies
            "CreateLifecyclePolicy": lifecycle.create_lifecycle_policy,
            "BatchGetLifecyclePolicy": lifecycle.batch_get_lifecycle_policy,
            "BatchGetEffectiveLifecyclePolicy": lifecycle.batch_get_effective_lifecycle_policy,
            "ListLifecyclePolicies": lifecycle.list_lifecycle_policies,
            "UpdateLifecyclePolicy": lifecycle.update_lifecycle_policy,
            "DeleteLifecyclePolicy": lifecycle.delete_lifecycle_policy,
            # security configs
            "CreateSecurityConfig": security_configs.create_security_config,
            "GetSecurityConfig": security_configs.get_security_config,
            "ListSecurityConfigs": security_configs.list_security_configs,
            "UpdateSecurityConfig": security_configs.update_security_config,
            "DeleteSecurityConfig": security_configs.delete_security_config,
            # VPC endpoints
            "CreateVpcEndpoint": partial(vpc_endpoints.create_vpc_endpoint, timing=timing),
            "BatchGetVpcEndpoint": vpc_endpoints.batch_get_vpc_endpoint,
            "ListVpcEndpoints": vpc_endpoints.list_vpc_endpoints,
            "UpdateVpcEndpoint": vpc_endpoints.update_vpc_endpoint,
            "DeleteVpcEndpoint": partial(vpc_endpoints.delete_vpc_endpoint, timing=timing),
            # account
            "GetAccountSettings": account.get_account_settings,
            "UpdateAccountSettings": account.update_account_settings,
            "GetPoliciesStats": account.get_policies_stats,
            # indexes
            "CreateIndex": indexes.create_index,
            "GetIndex": indexes.get_index,
            "UpdateIndex": indexes.update_index,
            "DeleteIndex": indexes.delete_index,
            # ingestion
            "CreateIngestionJob": partial(ingestion.create_ingestion_job, timing=timing),
            "GetIngestionJob": ingestion.get_ingestion_job,
            "ListIngestionJobs": ingestion.list_ingestion_jobs,
            "CancelIngestionJob": partial(ingestion.cancel_ingestion_job, timing=timing),
            "CreateIngestionStream": partial(ingestion.create_ingestion_stream, timing=timing),
            "GetIngestionStream": ingestion.get_ingestion_stream,
            "ListIngestionStreams": ingestion.list_ingestion_streams,
            "DeleteIngestionStream": partial(ingestion.delete_ingestion_stream, timing=timing),
            # tags
            "TagResource": partial(tags.tag_resource, resolve=tag_target),
            "UntagResource": partial(tags.untag_resource, resolve=tag_target),
            "ListTagsForResource": partial(tags.list_tags_for_resource, resolve=tag_target),
        }
        return {
            name: idempotent(name, handler, self.pruned) if name in IDEMPOTENT else handler
            for name, handler in table.items()
        }


def _reads_first(operation: str, params: dict[str, Any],
                 now: datetime) -> list[tuple[str, str] | KeysCounted]:
    """The (kind, key) of the documents a call of ``operation`` reads first, and the counts
    (KeysCounted)."""
    scopes: list[tuple[str, str] | KeysCounted] = list(token_records(operation, params, now))
    family = POLICY_WRITES.get(operation)
    if family is not None:
        scopes.extend(family.reads_first(operation.startswith("Create"), params))
    return scopes
