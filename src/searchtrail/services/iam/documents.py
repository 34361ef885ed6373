"""Policy document validation, through ``auth.policy.validate_policy_document`` when present.

``validate(text, kind)`` is the single entry point IAM and STS use. ``kind`` is one of
``identity`` (inline and managed policies), ``trust`` (a role's AssumeRolePolicyDocument)
and ``session`` (STS session policies).

The full validator lives in ``searchtrail.auth.policy`` (written separately). It is imported
lazily, on each call, and used when it exists with the signature
``validate_policy_document(text: str, kind: str)``; it may raise ``ServiceError`` or
``ValueError``, or return a list of problems (empty: valid). Until then — or if its
signature does not fit — the local check below applies: JSON syntax and the statement
grammar (Effect, Action/NotAction, Resource/NotResource, Principal where required or
prohibited). Either way the result is the parsed document, or MalformedPolicyDocument.
"""

from __future__ import annotations

import inspect
import json
import logging
from typing import Any, Callable

from searchtrail.protocol.errors import ServiceError

from .common import malformed

log = logging.getLogger(__name__)

IDENTITY, TRUST, SESSION = "identity", "trust", "session"
SYNTAX = "Syntax errors in policy."
_TOP_LEVEL = {"Version", "Id", "Statement"}
_STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource",
                   "Principal", "NotPrincipal", "Condition"}
_VERSIONS = {"2012-10-17", "2008-10-17"}
_warned: set[str] = set()


def _external() -> Callable[[str, str], Any] | None:
    try:
        from searchtrail.auth import policy  # noqa: PLC0415 (written separately; optional)
    except ImportError:
        return None
    function = getattr(policy, "validate_policy_document", None)
    if function is None:
        return None
    try:
        inspect.signature(function).bind("{}", IDENTITY)
    except (TypeError, ValueError):
        if "validate" not in _warned:
            _warned.add("validate")
            log.warning("auth.policy.validate_policy_document(text, kind) has another "
                        "signature; using the local JSON check")
        return None
    return function


def validate(text: str, kind: str) -> dict[str, Any]:
    """The parsed document, or MalformedPolicyDocument (400) saying what is wrong."""
    function = _external()
    if function is not None:
        try:
            problems = function(text, kind)
        except ServiceError as error:
            raise malformed(error.message) from None
        except ValueError as error:
            raise malformed(str(error) or SYNTAX) from None
        if isinstance(problems, (list, tuple)) and problems:
            first = problems[0]
            raise malformed(getattr(first, "message", None) or str(first))
        if isinstance(problems, str) and problems:
            raise malformed(problems)
        return _parse(text)
    return local_validate(text, kind)


def _parse(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise malformed(SYNTAX) from None
    if not isinstance(document, dict):
        raise malformed(SYNTAX)
    return document


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return value
    return None


def local_validate(text: str, kind: str) -> dict[str, Any]:
    document = _parse(text)
    if set(document) - _TOP_LEVEL:
        raise malformed(SYNTAX)
    version = document.get("Version")
    if version is not None and version not in _VERSIONS:
        raise malformed("The policy failed legacy parsing")
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements \
            or not all(isinstance(item, dict) for item in statements):
        raise malformed(SYNTAX)
    for statement in statements:
        _statement(statement, kind)
    return document


def _statement(statement: dict[str, Any], kind: str) -> None:
    if set(statement) - _STATEMENT_KEYS:
        raise malformed(SYNTAX)
    if statement.get("Effect") not in ("Allow", "Deny"):
        raise malformed(f"Invalid effect: {statement.get('Effect')}" if "Effect" in statement
                        else "Missing required field Effect")
    if ("Action" in statement) == ("NotAction" in statement):
        raise malformed("Policy statement must contain actions.")
    actions = _strings(statement.get("Action", statement.get("NotAction")))
    if actions is None:
        raise malformed(SYNTAX)
    for action in actions:
        if action != "*" and (action.count(":") != 1 or not action.split(":")[0]):
            raise malformed("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, "
                            "ec2, etc.")
    has_principal = "Principal" in statement or "NotPrincipal" in statement
    has_resource = "Resource" in statement or "NotResource" in statement
    if kind == TRUST:
        if not has_principal:
            raise malformed("Missing required field Principal")
        if has_resource:
            raise malformed("Has prohibited field Resource")
        principal = statement.get("Principal", statement.get("NotPrincipal"))
        if principal != "*" and not (isinstance(principal, dict) and principal and all(
                _strings(value) is not None for value in principal.values())):
            raise malformed("Invalid principal in policy")
    else:
        if has_principal:
            raise malformed("Policy document should not specify a principal.")
        if not has_resource:
            raise malformed("Policy statement must contain resources.")
        if _strings(statement.get("Resource", statement.get("NotResource"))) is None:
            raise malformed(SYNTAX)
    condition = statement.get("Condition")
    if condition is not None and not (isinstance(condition, dict) and all(
            isinstance(block, dict) for block in condition.values())):
        raise malformed(SYNTAX)
