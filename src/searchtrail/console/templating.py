"""The console's Jinja2 environment: its templates folder and the filters pages share."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from starlette.templating import Jinja2Templates

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def when(value: Any) -> str:
    """Any date the APIs return (epoch seconds or ms, ISO text, datetime) as UTC text."""
    if value in (None, ""):
        return ""
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 10**11 else value
        value = datetime.fromtimestamp(seconds, timezone.utc)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def number(value: int) -> str:
    return f"{value:,}"


def size(value: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


def console_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES)
    templates.env.filters.update(when=when, number=number, size=size)
    templates.env.trim_blocks = True
    templates.env.lstrip_blocks = True
    return templates
