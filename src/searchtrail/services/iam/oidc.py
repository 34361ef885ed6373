"""IAM OpenID Connect providers (the identity providers AssumeRoleWithWebIdentity trusts).

A provider's signing keys are never fetched: give them locally with
``Identities.set_oidc_jwks`` (stored as the document's ``Jwks``) or through the STS
provider's per-issuer ``jwks`` setting.
"""

from __future__ import annotations

import re
from typing import Any

from searchtrail.auth.identities import KIND_OIDC_PROVIDER, iso
from searchtrail.auth.webidentity import issuer_path, provider_arn

from .common import (
    already_exists,
    date,
    identities,
    invalid_input,
    limit_exceeded,
    merged_tags,
    no_such_entity,
)

CLIENT_IDS_PER_PROVIDER = 100
THUMBPRINTS_PER_PROVIDER = 5
_ARN = re.compile(r"^arn:aws:iam::(\d{12}):oidc-provider/[\x21-\x7e]+$")


def _scope(call: Any) -> Any:
    return identities(call).scope(call.account_id)


def _require(call: Any, arn: str) -> dict[str, Any]:
    if not _ARN.match(arn):
        raise invalid_input(f"ARN {arn} is not valid.")
    provider = _scope(call).get(KIND_OIDC_PROVIDER, arn)
    if provider is None:
        raise no_such_entity(f"OpenIDConnect Provider not found for arn {arn}")
    return provider


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def create_open_id_connect_provider(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    url = params["Url"]
    if not url.lower().startswith("https://") or not issuer_path(url):
        raise invalid_input(f"Invalid URL {url}: an OpenID Connect provider URL must begin "
                            "with https://")
    if not _ARN.match(provider_arn(call.account_id, url)):  # else never found by its ARN again
        raise invalid_input(f"Invalid URL {url}: an OpenID Connect provider URL holds printable "
                            "ASCII only (no spaces)")
    client_ids = _unique(params.get("ClientIDList") or [])
    thumbprints = _unique(params.get("ThumbprintList") or [])
    if len(client_ids) > CLIENT_IDS_PER_PROVIDER:
        raise limit_exceeded(f"Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: "
                             f"{CLIENT_IDS_PER_PROVIDER}")
    if len(thumbprints) > THUMBPRINTS_PER_PROVIDER:
        raise limit_exceeded(f"Cannot exceed quota for ThumbprintsPerOpenIdConnectProvider: "
                             f"{THUMBPRINTS_PER_PROVIDER}")
    arn = provider_arn(call.account_id, url)
    scope = _scope(call)
    if scope.get(KIND_OIDC_PROVIDER, arn) is not None:
        raise already_exists(f"Provider with url {url} already exists.")
    provider: dict[str, Any] = {
        "Arn": arn,
        "Url": issuer_path(url),
        "ClientIDList": client_ids,
        "ThumbprintList": thumbprints,
        "CreateDate": iso(call.now),
    }
    tags = merged_tags([], params.get("Tags") or [], "TagsPerOpenIdConnectProvider")
    if tags:
        provider["Tags"] = tags
    scope.insert(KIND_OIDC_PROVIDER, arn, provider)
    output: dict[str, Any] = {"OpenIDConnectProviderArn": arn}
    if tags:
        output["Tags"] = tags
    return output


def get_open_id_connect_provider(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    provider = _require(call, params["OpenIDConnectProviderArn"])
    output: dict[str, Any] = {
        "Url": provider["Url"],
        "ClientIDList": list(provider.get("ClientIDList", [])),
        "ThumbprintList": list(provider.get("ThumbprintList", [])),
        "CreateDate": date(provider["CreateDate"]),
    }
    if provider.get("Tags"):
        output["Tags"] = [dict(tag) for tag in provider["Tags"]]
    return output


def list_open_id_connect_providers(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    return {"OpenIDConnectProviderList": [{"Arn": provider["Arn"]}
                                          for provider in _scope(call).list(KIND_OIDC_PROVIDER)]}


def delete_open_id_connect_provider(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    provider = _require(call, params["OpenIDConnectProviderArn"])
    _scope(call).delete(KIND_OIDC_PROVIDER, provider["Arn"])
    return {}


def add_client_id(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    provider = _require(call, params["OpenIDConnectProviderArn"])
    client_ids = _unique(provider.get("ClientIDList", []) + [params["ClientID"]])
    if len(client_ids) > CLIENT_IDS_PER_PROVIDER:
        raise limit_exceeded(f"Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: "
                             f"{CLIENT_IDS_PER_PROVIDER}")
    provider["ClientIDList"] = client_ids
    _scope(call).put(KIND_OIDC_PROVIDER, provider["Arn"], provider)
    return {}


def remove_client_id(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    provider = _require(call, params["OpenIDConnectProviderArn"])
    provider["ClientIDList"] = [client for client in provider.get("ClientIDList", [])
                                if client != params["ClientID"]]
    _scope(call).put(KIND_OIDC_PROVIDER, provider["Arn"], provider)
    return {}


def update_thumbprints(call: Any, params: dict[str, Any]) -> dict[str, Any]:
    provider = _require(call, params["OpenIDConnectProviderArn"])
    thumbprints = _unique(params["ThumbprintList"])
    if len(thumbprints) > THUMBPRINTS_PER_PROVIDER:
        raise limit_exceeded(f"Cannot exceed quota for ThumbprintsPerOpenIdConnectProvider: "
                             f"{THUMBPRINTS_PER_PROVIDER}")
    provider["ThumbprintList"] = thumbprints
    _scope(call).put(KIND_OIDC_PROVIDER, provider["Arn"], provider)
    return {}
