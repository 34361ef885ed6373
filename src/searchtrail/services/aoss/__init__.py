"""OpenSearch Serverless control plane: one provider, domain rules per resource family."""

from searchtrail.services.aoss.provider import OpenSearchServerlessProvider

__all__ = ["OpenSearchServerlessProvider"]
