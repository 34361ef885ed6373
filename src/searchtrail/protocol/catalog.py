"""The botocore service models this server speaks, indexed for one dict lookup per request.

awsJson services (OpenSearch Serverless, CloudTrail) are found by their ``X-Amz-Target``
header (``resolve``); query services (IAM, STS) by the ``Version`` and ``Action`` form
parameters (``resolve_query``).
"""

from __future__ import annotations

from typing import Iterable, Iterator, Mapping

import botocore.session
from botocore.model import OperationModel, ServiceModel

DEFAULT_SERVICES = ("opensearchserverless", "cloudtrail")

QUERY_PROTOCOL = "query"
QUERY_CONTENT_TYPE = "application/x-www-form-urlencoded"

# CloudTrail records readOnly by AWS's naming convention for these verbs.
READ_ONLY_PREFIXES = ("Get", "List", "BatchGet", "Describe", "Lookup")

# The readOnly rule per service where it is not the verb prefixes above:
# - IAM: Get*, List* and Simulate* (SimulatePrincipalPolicy / SimulateCustomPolicy only
#   evaluate policies) are read-only; everything else, Generate* included (it starts a
#   report job), writes.
# - STS: every call is recorded with readOnly true -- AssumeRole*, GetCallerIdentity,
#   GetSessionToken, GetFederationToken, DecodeAuthorizationMessage ... none of them change
#   a resource, they only mint or describe credentials.
READ_ONLY_PREFIXES_BY_SERVICE: dict[str, tuple[str, ...]] = {
    "iam": ("Get", "List", "Simulate"),
    "sts": ("",),  # every name starts with ""
}


def content_type(service_model: ServiceModel) -> str:
    """The request content type a service's clients send (without ``; charset``).

    awsJson: ``application/x-amz-json-1.0`` or ``-1.1`` from the model's ``jsonVersion``;
    query: ``application/x-www-form-urlencoded``.
    """
    if service_model.protocol == QUERY_PROTOCOL:
        return QUERY_CONTENT_TYPE
    return f"application/x-amz-json-{service_model.metadata.get('jsonVersion', '1.0')}"


def read_only_rule(service_name: str, operation_name: str) -> bool:
    """Whether CloudTrail records ``operation_name`` of ``service_name`` as ``readOnly``."""
    prefixes = READ_ONLY_PREFIXES_BY_SERVICE.get(service_name, READ_ONLY_PREFIXES)
    return operation_name.startswith(prefixes)


class ServiceCatalog:
    """Operations of the loaded services, keyed by ``X-Amz-Target`` or by (Version, Action)."""

    def __init__(self, service_models: Iterable[ServiceModel]) -> None:
        self._services: dict[str, ServiceModel] = {model.service_name: model for model in service_models}
        self._operations: list[OperationModel] = []
        self._by_target: dict[str, OperationModel] = {}
        self._by_action: dict[tuple[str, str], OperationModel] = {}
        self._read_only: dict[str, bool] = {}
        self._read_only_by_service: dict[tuple[str, str], bool] = {}
        for service_model in self._services.values():
            service_name = service_model.service_name
            is_query = service_model.protocol == QUERY_PROTOCOL
            prefix = None if is_query else service_model.metadata["targetPrefix"]
            version = service_model.api_version
            for name in service_model.operation_names:
                operation = service_model.operation_model(name)
                self._operations.append(operation)
                if is_query:
                    self._by_action[(version, name)] = operation
                else:
                    # botocore's prefix, and the Smithy service name the newer SDKs send
                    # (JavaScript v3, Go v2: CloudTrail_20131101.LookupEvents); AWS takes both.
                    for each in dict.fromkeys((prefix, prefix.rsplit(".", 1)[-1])):
                        self._by_target.setdefault(f"{each}.{name}", operation)
                read_only = read_only_rule(service_name, name)
                self._read_only_by_service[(service_name, name)] = read_only
                # By bare name the first loaded service wins; pass the operation model to be exact.
                self._read_only.setdefault(name, read_only)

    @classmethod
    def load(cls, service_names: Iterable[str] = DEFAULT_SERVICES) -> ServiceCatalog:
        """Read the named services' models from the installed botocore."""
        session = botocore.session.get_session()
        return cls(session.get_service_model(name) for name in service_names)

    def resolve(self, target: str) -> OperationModel | None:
        """The operation an ``X-Amz-Target`` header names, or None when no service has it."""
        return self._by_target.get(target)

    def resolve_query(self, form: Mapping[str, str]) -> OperationModel | None:
        """The query-protocol operation a form's ``Version`` and ``Action`` name, else None.

        Both are required and exact (``Version=2010-05-08&Action=GetUser`` is IAM's GetUser,
        ``Version=2011-06-15&Action=AssumeRole`` STS's AssumeRole). None when either is
        missing or names nothing loaded; the caller answers that with an error.
        """
        version, action = form.get("Version"), form.get("Action")
        if not version or not action:
            return None
        return self._by_action.get((version, action))

    def query_versions(self) -> dict[str, ServiceModel]:
        """API version -> query-protocol service model (``2010-05-08`` -> iam)."""
        return {model.api_version: model for model in self._services.values() if model.protocol == QUERY_PROTOCOL}

    def service(self, name: str) -> ServiceModel:
        """A loaded service model by botocore name (``opensearchserverless``); KeyError if absent."""
        return self._services[name]

    def services(self) -> tuple[ServiceModel, ...]:
        return tuple(self._services.values())

    def operations(self) -> Iterator[OperationModel]:
        """Every operation of every loaded service (to warm compiled caches at start-up)."""
        return iter(self._operations)

    def content_type(self, service_model: ServiceModel) -> str:
        return content_type(service_model)

    def is_query(self, service_model: ServiceModel) -> bool:
        return service_model.protocol == QUERY_PROTOCOL

    def is_read_only(self, operation: str | OperationModel) -> bool:
        """Whether CloudTrail records the operation as ``readOnly`` (see ``read_only_rule``).

        Given an OperationModel the answer is per service; given a bare name it is the first
        loaded service's answer for that name, else the generic verb-prefix rule.
        """
        if isinstance(operation, OperationModel):
            service_name = operation.service_model.service_name
            read_only = self._read_only_by_service.get((service_name, operation.name))
            return read_only_rule(service_name, operation.name) if read_only is None else read_only
        read_only = self._read_only.get(operation)
        if read_only is None:
            return operation.startswith(READ_ONLY_PREFIXES)
        return read_only
