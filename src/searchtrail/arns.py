"""ARN building blocks shared by the services and the audit trail."""

from __future__ import annotations


def partition(region: str) -> str:
    """The AWS partition a region belongs to (aws, aws-cn, aws-us-gov)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"
