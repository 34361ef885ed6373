"""DescribeOrganization: what `aws cloudtrail validate-logs` asks to find an organization
trail's files (their keys carry the organization's id).

Every account of the installation is in one organization, whose management account is the
default account (the one organization trails are made in); its id is the installation's
(``installation.organization_id``), the same the delivery worker writes into keys.
"""

from __future__ import annotations

from typing import Any

from searchtrail.arns import partition
from searchtrail.services.call import Call
from searchtrail.services.registry import Handler
from searchtrail.store import kinds


class OrganizationsProvider:
    def __init__(self, organization_id: str = "") -> None:
        self.organization_id = organization_id

    def handlers(self) -> dict[str, Handler]:
        return {"DescribeOrganization": self.describe_organization}

    def describe_organization(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        management = kinds.default_account(call.resources.scoped("", "")) or call.account_id
        head = f"arn:{partition(call.region)}:organizations::{management}"
        return {"Organization": {
            "Id": self.organization_id,
            "Arn": f"{head}:organization/{self.organization_id}",
            "FeatureSet": "ALL",
            "MasterAccountArn": f"{head}:account/{self.organization_id}/{management}",
            "MasterAccountId": management,
        }}
