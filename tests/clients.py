"""boto3 clients for tests, made from one shared session: a new session parses a service's
model again, ~100 ms a client, and the suite makes hundreds of clients."""

from __future__ import annotations

import functools
import threading
from typing import Any

import boto3


@functools.cache
def _shared() -> tuple[boto3.session.Session, threading.Lock]:
    return boto3.session.Session(), threading.Lock()


def boto3_client(service: str, **kwargs: Any) -> Any:
    """``boto3.session.Session().client(service, **kwargs)``, from the shared session. Each
    client still has its own event hooks, credentials and configuration."""
    session, lock = _shared()
    with lock:  # a session is not thread-safe while it makes clients
        return session.client(service, **kwargs)


def env_exports(printed: str) -> dict[str, str]:
    """The variables ``eval "$(searchtrail env)"`` exports (its ``unset`` lines set none)."""
    return dict(line.removeprefix("export ").split("=", 1) for line in printed.splitlines()
                if line.startswith("export "))
