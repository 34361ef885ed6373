"""AWS Organizations: the one organization every account of the installation belongs to."""

from searchtrail.services.organizations.provider import OrganizationsProvider

__all__ = ["OrganizationsProvider"]
