"""Dispatch from a model operation to its provider handler (and to its preparer, if any);
every other operation is refused cleanly."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Awaitable, Callable, Iterable, Mapping

from searchtrail.protocol.errors import ServiceError
from searchtrail.store.api import KeysCounted
from searchtrail.services.call import Call

Handler = Callable[[Call, dict], dict]
# params -> what the handler finds in call.prepared, worked out before the unit of work
Preparer = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
# (params, now) -> the (kind, key) of each document the unit reads first, and each count
# (KeysCounted) it reads first (none: [])
ReadAhead = Callable[[dict[str, Any], datetime], "list[tuple[str, str] | KeysCounted]"]
# (call, params) -> the other accounts that get a copy of the call's record
Recipients = Callable[[Call, dict[str, Any]], list[str]]

# Modelled client errors to answer an unimplemented operation with, best first.
_UNSUPPORTED_ERRORS = ("UnsupportedOperationException", "OperationNotPermittedException",
                       "ValidationException")


def _unsupported(operation_name: str, code: str) -> Handler:
    def refuse(call: Call, params: dict) -> dict:
        raise ServiceError(code, f"{operation_name} is not supported by searchtrail yet.", status=400)

    return refuse


class ServiceRegistry:
    def __init__(self, service_models: Iterable[Any], providers: dict[str, Any]) -> None:
        self._handlers: dict[tuple[str, str], Handler] = {}
        self._preparers: dict[tuple[str, str], Preparer] = {}
        self._reads_ahead: dict[tuple[str, str], ReadAhead] = {}
        self._recipients: dict[tuple[str, str], Recipients] = {}
        self._implemented: dict[str, set[str]] = {}
        self._providers = providers
        for service_model in service_models:
            provider = providers.get(service_model.service_name)
            handlers = provider.handlers() if provider else {}
            unknown = set(handlers) - set(service_model.operation_names)
            if unknown:
                raise RuntimeError(f"{service_model.service_name} provider names operations "
                                   f"the model lacks: {sorted(unknown)}")
            self._implemented[service_model.service_name] = set(handlers)
            preparers = provider.preparers() if hasattr(provider, "preparers") else {}
            unhandled = set(preparers) - set(handlers)
            if unhandled:
                raise RuntimeError(f"{service_model.service_name} provider prepares operations "
                                   f"it does not handle: {sorted(unhandled)}")
            for name, preparer in preparers.items():
                self._preparers[(service_model.service_name, name)] = preparer
            reads_ahead = provider.reads_ahead() if hasattr(provider, "reads_ahead") else {}
            for name, read_ahead in reads_ahead.items():
                self._reads_ahead[(service_model.service_name, name)] = read_ahead
            recipients = getattr(provider, "record_recipients", dict)()
            for name, recipient in recipients.items():
                self._recipients[(service_model.service_name, name)] = recipient
            for name in service_model.operation_names:
                operation = service_model.operation_model(name)
                handler = handlers.get(name)
                if handler is None:
                    codes = {shape.name for shape in operation.error_shapes}
                    code = next((c for c in _UNSUPPORTED_ERRORS if c in codes), "ValidationException")
                    handler = _unsupported(name, code)
                self._handlers[(service_model.service_name, name)] = handler
        self._recipient_services = frozenset(service for service, _ in self._recipients)

    def handler(self, operation: Any) -> Handler:
        return self._handlers[(operation.service_model.service_name, operation.name)]

    def implemented(self, service_name: str) -> set[str]:
        return set(self._implemented.get(service_name, ()))

    def preparer(self, operation: Any) -> Preparer | None:
        """What works out, before the operation's unit of work and off the event loop, what
        its handler finds in ``call.prepared`` (a password's hash); None for most."""
        return self._preparers.get((operation.service_model.service_name, operation.name))

    def read_ahead(self, operation: Any) -> ReadAhead | None:
        """What tells, before the operation's unit runs, which documents and counts it reads
        first (so a batch's can be read in one statement); None for most."""
        return self._reads_ahead.get((operation.service_model.service_name, operation.name))

    def record_recipients(self, service_name: str, operation: Any) -> Recipients | None:
        """What names, before authorization, the other accounts that get a copy of a call's
        record whatever its outcome (a cross-account AssumeRole: the role's owner); None
        for most (told by the service's name alone: this runs for every call)."""
        if service_name not in self._recipient_services:
            return None
        return self._recipients.get((service_name, operation.name))

    def resource_condition_keys(self, repo: Any, service: str, operation: str,
                                params: Mapping[str, Any], resource: str) -> list[dict[str, Any]]:
        """The condition keys from stored state (aws:ResourceTag/<key>, aoss:collection, ...) of
        the resource an operation acts on, from its provider: one dict per resource (a batch
        names several under ``*``); [] when the provider knows none."""
        provider = self._providers.get(service)
        keys = getattr(provider, "resource_condition_keys", None)
        return keys(repo, operation, params, resource) if keys else []

    def resource_grant(self, repo: Any, service: str, operation: str, resource: str,
                       account: str) -> str | None:
        """What a resource of another account grants ``account`` by itself, as a resource-based
        policy would (policy.ResourceGrant: "account" or None), from its provider."""
        provider = self._providers.get(service)
        grant = getattr(provider, "resource_grant", None)
        return grant(repo, operation, resource, account) if grant else None

    def violation_error(self, operation: Any, violations: list[Any]) -> ServiceError | None:
        """A service-specific error for model violations (CloudTrail has its own), or None."""
        provider = self._providers.get(operation.service_model.service_name)
        mapper = getattr(provider, "violation_error", None)
        return mapper(operation.name, violations) if mapper else None
