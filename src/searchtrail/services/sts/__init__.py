"""STS: caller identity and temporary credentials (AssumeRole, web identity, tokens)."""

from searchtrail.services.sts.provider import StsProvider

__all__ = ["StsProvider"]
