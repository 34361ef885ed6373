"""Resource kinds (and well-known keys and settings) that more than one package reads or writes.

Kept free of the project's imports (type hints aside) so that a command-line tool can name a
kind without loading a service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from searchtrail.store.api import ResourceRepository

TRAIL = "cloudtrail.trail"  # scope (owner account, ''), key = trail ARN
TRAIL_STATUS = "cloudtrail.trail-status"  # the delivery worker's outcomes, same scope and key
SETTING = "setting"  # global scope ('', '')
DEFAULT_ACCOUNT = "default-account"  # the SETTING naming the default (management) account


def set_default_account(global_scope: ResourceRepository, account_id: str) -> None:
    """Name ``account_id`` the default (management) account, through a repository of the
    global scope."""
    global_scope.put(SETTING, DEFAULT_ACCOUNT, {"AccountId": account_id})


def default_account(global_scope: ResourceRepository) -> str | None:
    """The default (management) account's id from its setting, read through a repository of
    the global scope; None before the first start made one."""
    doc = global_scope.get(SETTING, DEFAULT_ACCOUNT)
    return doc["AccountId"] if doc else None
