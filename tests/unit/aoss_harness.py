"""The aoss provider under the shared ProviderHarness, with the constants and shortcuts its tests share."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import botocore.session

from searchtrail.services.aoss import OpenSearchServerlessProvider
from tests.unit.harness import ProviderHarness

ACCOUNT = "111122223333"
REGION = "us-east-1"
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
T0_MS = 1740830400123
MODEL = botocore.session.get_session().get_service_model("opensearchserverless")
KMS = "arn:aws:kms:us-east-1:111122223333:key/93fd6da4-a317-4c17-bfe9-382b5d988b36"
NO_POLICY = (
    "No matching security policy of encryption type found for collection name: {}. "
    "Please create security policy of encryption type for this collection."
)


def version_of(ms):
    """The policyVersion aoss gives a policy last written at `ms` (epoch milliseconds)."""
    return base64.b64encode(f"{ms}_1".encode()).decode()


class AossHarness(ProviderHarness):
    """OpenSearchServerlessProvider (3 s to create, 3 s to delete unless given another), clock at T0."""

    def __init__(self, conn, account=ACCOUNT, region=REGION, provider=None, clock=None):
        self.provider = provider or OpenSearchServerlessProvider(3.0, 3.0)
        super().__init__(conn, "opensearchserverless", self.provider.handlers(), account, region,
                         clock if clock is not None else [T0])

    # shortcuts
    def policy(self, name, *resources, kms=None):
        doc = {"Rules": [{"ResourceType": "collection", "Resource": list(resources)}]}
        doc.update({"AWSOwnedKey": False, "KmsARN": kms} if kms else {"AWSOwnedKey": True})
        self("CreateSecurityPolicy", type="encryption", name=name, policy=json.dumps(doc))

    def encrypt_all(self):
        """Add the encryption policy "all-enc" (AWS-owned key, every collection); returns self."""
        self.policy("all-enc", "collection/*")
        return self

    def create(self, name, **params):
        return self("CreateCollection", name=name, **params)["createCollectionDetail"]

    def group(self, name, standby="ENABLED", **params):
        return self("CreateCollectionGroup", name=name, standbyReplicas=standby,
                    **params)["createCollectionGroupDetail"]

    def get(self, collection_id):
        out = self("BatchGetCollection", ids=[collection_id])
        return out["collectionDetails"][0] if out["collectionDetails"] else None

    def status(self, collection_id):
        found = self.get(collection_id)
        return None if found is None else found["status"]

    def tags(self, arn):
        return self("ListTagsForResource", resourceArn=arn)["tags"]
