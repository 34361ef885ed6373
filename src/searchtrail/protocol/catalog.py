"""The botocore service models this server speaks, indexed for one dict lookup per request."""

from __future__ import annotations

from typing import Iterable, Iterator

import botocore.session
from botocore.model import OperationModel, ServiceModel

DEFAULT_SERVICES = ("opensearchserverless", "cloudtrail")

# CloudTrail records readOnly by AWS's naming convention for these verbs.
READ_ONLY_PREFIXES = ("Get", "List", "BatchGet", "Describe", "Lookup")


def content_type(service_model: ServiceModel) -> str:
    """``application/x-amz-json-1.0`` or ``-1.1``, from the model's ``jsonVersion``."""
    return f"application/x-amz-json-{service_model.metadata.get('jsonVersion', '1.0')}"


class ServiceCatalog:
    """Operations of the loaded services, keyed by their ``X-Amz-Target`` value."""

    def __init__(self, service_models: Iterable[ServiceModel]) -> None:
        self._services: dict[str, ServiceModel] = {model.service_name: model for model in service_models}
        self._by_target: dict[str, OperationModel] = {}
        self._read_only: dict[str, bool] = {}
        for service_model in self._services.values():
            prefix = service_model.metadata["targetPrefix"]
            for name in service_model.operation_names:
                self._by_target[f"{prefix}.{name}"] = service_model.operation_model(name)
                self._read_only[name] = name.startswith(READ_ONLY_PREFIXES)

    @classmethod
    def load(cls, service_names: Iterable[str] = DEFAULT_SERVICES) -> ServiceCatalog:
        """Read the named services' models from the installed botocore."""
        session = botocore.session.get_session()
        return cls(session.get_service_model(name) for name in service_names)

    def resolve(self, target: str) -> OperationModel | None:
        """The operation an ``X-Amz-Target`` header names, or None when no service has it."""
        return self._by_target.get(target)

    def service(self, name: str) -> ServiceModel:
        """A loaded service model by botocore name (``opensearchserverless``); KeyError if absent."""
        return self._services[name]

    def services(self) -> tuple[ServiceModel, ...]:
        return tuple(self._services.values())

    def operations(self) -> Iterator[OperationModel]:
        """Every operation of every loaded service (to warm compiled caches at start-up)."""
        return iter(self._by_target.values())

    def content_type(self, service_model: ServiceModel) -> str:
        return content_type(service_model)

    def is_read_only(self, operation_name: str) -> bool:
        """Whether CloudTrail records the operation as ``readOnly`` (by its verb prefix)."""
        read_only = self._read_only.get(operation_name)
        if read_only is None:
            return operation_name.startswith(READ_ONLY_PREFIXES)
        return read_only
