"""IAM: the subset of the identity API searchtrail serves (users, keys, roles, policies)."""

from searchtrail.services.iam.provider import IamProvider

__all__ = ["IamProvider"]
