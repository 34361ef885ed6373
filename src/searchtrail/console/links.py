"""Where a resource ARN leads in the console: its own page, and all of its events."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from searchtrail.console.ui import PREFIX


def resource_page(arn: str, current_region: str) -> str | None:
    """The console page of the resource an ARN names, switching region when it lives in
    another one; None for resources the console has no page for."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return None
    service, region, resource = parts[2], parts[3], parts[5]
    path = None
    segments = resource.split("/")
    if service == "aoss":
        if segments[0] == "collection" and len(segments) == 2:
            path = f"{PREFIX}/collections/{quote(segments[1])}"
        elif segments[0] == "security-policy" and len(segments) == 3:
            path = f"{PREFIX}/policies/{quote(segments[1])}/{quote(segments[2])}"
        elif segments[0] == "access-policy" and len(segments) == 3:
            path = f"{PREFIX}/policies/{quote(segments[1])}/{quote(segments[2])}"
    elif service == "cloudtrail" and segments[0] == "trail" and len(segments) == 2:
        path = f"{PREFIX}/trails/{quote(segments[1])}"
    if path is None:
        return None
    if region and region != current_region:
        return f"{PREFIX}/region?" + urlencode({"region": region, "next": path})
    return path


def resource_events(arn: str) -> str:
    return f"{PREFIX}/events?" + urlencode({"attr": "ResourceName", "value": arn,
                                             "range": "90d"})
