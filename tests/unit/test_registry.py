"""The service registry: each model operation's handler, the refusal of those not served, and
the preparers providers run before a unit of work."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from searchtrail.auth.password_threads import PasswordThreads
from searchtrail.protocol.catalog import ServiceCatalog
from searchtrail.protocol.errors import ServiceError
from searchtrail.services.iam.provider import IamProvider
from searchtrail.services.registry import ServiceRegistry


@pytest.fixture(scope="module")
def iam_model():  # type: ignore[no-untyped-def]
    return ServiceCatalog.load(["iam"]).service("iam")


def test_login_profile_writes_have_their_password_hashed_first(iam_model) -> None:
    registry = ServiceRegistry([iam_model], {"iam": IamProvider(
        password_threads=PasswordThreads())})
    create = registry.preparer(iam_model.operation_model("CreateLoginProfile"))
    assert create is not None
    prepared = asyncio.run(create({"UserName": "dana", "Password": "Some-Pa55word!x"}))
    assert prepared["PasswordHash"]["Algorithm"] == "scrypt"
    assert asyncio.run(create({"UserName": "dana"})) == {}  # the handler says what is missing
    assert registry.preparer(iam_model.operation_model("UpdateLoginProfile")) is not None
    assert registry.preparer(iam_model.operation_model("ListUsers")) is None
    bare = ServiceRegistry([iam_model], {"iam": IamProvider()})  # no threads: the handler hashes
    assert bare.preparer(iam_model.operation_model("CreateLoginProfile")) is None


class _Provider:
    def __init__(self, handlers: dict[str, Any], preparers: dict[str, Any]) -> None:
        self._handlers, self._preparers = handlers, preparers

    def handlers(self) -> dict[str, Any]:
        return self._handlers

    def preparers(self) -> dict[str, Any]:
        return self._preparers


def test_a_provider_must_name_operations_its_model_has_and_prepare_only_what_it_handles(
        iam_model) -> None:
    def handler(call: Any, params: dict) -> dict:
        return {}

    async def preparer(params: dict) -> dict:
        return {}

    with pytest.raises(RuntimeError, match="the model lacks"):
        ServiceRegistry([iam_model], {"iam": _Provider({"NoSuchOperation": handler}, {})})
    with pytest.raises(RuntimeError, match="does not handle"):
        ServiceRegistry([iam_model], {"iam": _Provider({"ListUsers": handler},
                                                       {"CreateUser": preparer})})
    registry = ServiceRegistry([iam_model], {"iam": _Provider({"ListUsers": handler}, {})})
    refuse = registry.handler(iam_model.operation_model("CreateUser"))
    with pytest.raises(ServiceError, match="not supported"):
        refuse(None, {})
