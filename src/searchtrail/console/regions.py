"""The regions the region selector offers: where botocore's endpoint data has the aoss API."""

from __future__ import annotations

import botocore.session


def console_regions(default_region: str) -> tuple[str, ...]:
    regions = botocore.session.get_session().get_available_regions("opensearchserverless")
    return tuple(sorted({default_region, "us-east-1", *regions}))
