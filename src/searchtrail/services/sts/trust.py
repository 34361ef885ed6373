"""Role trust policies: may this caller assume this role?

``allows(document, request)`` uses ``searchtrail.auth.policy.evaluate_trust`` (the full
policy evaluator, written separately) when it is importable with the signature
``evaluate_trust(document, policy.TrustRequest(role_arn=, action=, principal_arn=,
principal_account=, federated=, context=)) -> TrustDecision``; otherwise (or if that
signature changes) the local evaluator below decides. It covers what trust policies use in
practice:

- ``Action``/``NotAction`` with ``*``/``?`` wildcards (case-insensitive);
- ``Principal``: ``"*"``, ``{"AWS": …}`` (``*``, a 12-digit account id, ``…:root``, user,
  role, assumed-role session and federated-user ARNs), ``{"Federated": …}`` (OIDC provider
  ARNs), ``{"Service": …}`` (never matches: no service calls here); ``NotPrincipal`` is
  not supported and never matches;
- ``Condition`` with the String*, Arn*, Bool and Null operators, ``…IfExists`` and the
  ``ForAnyValue:``/``ForAllValues:`` qualifiers. A statement with an operator it does not
  know never grants (Allow) and always applies (Deny): it fails closed;
- an explicit Deny wins over any Allow.

Only the trust policy is decided here. AWS also wants the caller's own identity policy to
allow ``sts:AssumeRole`` when the trust policy names just the caller's account (always
across accounts): that is the authorizer's part (``auth.policy.authorize_assume_role``).
"""

from __future__ import annotations

import inspect
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable

log = logging.getLogger(__name__)

_warned: set[str] = set()


@dataclass(frozen=True)
class TrustRequest:
    """What is asked: ``action`` (``sts:AssumeRole``…) on ``role_arn``, by an AWS caller
    (``caller_arn``, ``caller_account`` and, for a role session, ``caller_role_arn``) or a
    web identity (``federated``: the OIDC provider ARN); ``context`` holds the condition
    keys (lower-cased names → values)."""

    action: str
    role_arn: str
    caller_arn: str | None = None
    caller_account: str | None = None
    caller_role_arn: str | None = None
    federated: str | None = None
    context: dict[str, list[str]] = field(default_factory=dict)

    def identifiers(self) -> dict[str, frozenset[str]]:
        """The ``Principal`` values that name this caller, by principal type."""
        if self.federated is not None:
            return {"Federated": frozenset({self.federated})}
        values = {value for value in (self.caller_arn, self.caller_role_arn) if value}
        if self.caller_account:
            values |= {self.caller_account, f"arn:aws:iam::{self.caller_account}:root"}
        return {"AWS": frozenset(values)}


def for_caller(principal: Any, action: str, role_arn: str,
               context: dict[str, list[str]]) -> TrustRequest:
    return TrustRequest(action, role_arn, caller_arn=principal.arn,
                        caller_account=principal.account_id,
                        caller_role_arn=principal.issuer_arn if principal.kind == "AssumedRole"
                        else None, context=context)


# --- the entry point ---------------------------------------------------------------------


def _external() -> tuple[Callable[..., Any], Any] | None:
    try:
        from searchtrail.auth import policy  # noqa: PLC0415 (written separately; optional)
    except ImportError:
        return None
    function = getattr(policy, "evaluate_trust", None)
    request_type = getattr(policy, "TrustRequest", None)
    if function is None or request_type is None:
        return None
    try:
        inspect.signature(function).bind({}, None)
        inspect.signature(request_type).bind(role_arn="", action="", principal_arn=None,
                                             principal_account=None, federated=None, context={})
    except (TypeError, ValueError):
        if "trust" not in _warned:
            _warned.add("trust")
            log.warning("auth.policy.evaluate_trust/TrustRequest have other signatures than "
                        "expected; using the local trust check")
        return None
    return function, request_type


def allows(document: dict[str, Any], request: TrustRequest) -> bool:
    external = _external()
    if external is None:
        return local_allows(document, request)
    function, request_type = external
    decision = function(document, request_type(
        role_arn=request.role_arn, action=request.action, principal_arn=request.caller_arn,
        principal_account=request.caller_account, federated=request.federated,
        context=request.context))
    return bool(getattr(decision, "allowed", decision))


# --- the local evaluator ----------------------------------------------------------------


def local_allows(document: dict[str, Any], request: TrustRequest) -> bool:
    principals = request.identifiers()
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements or []:
        if not isinstance(statement, dict):
            continue
        effect = statement.get("Effect")
        if not _action_matches(statement, request.action):
            continue
        if not _principal_matches(statement, principals):
            continue
        if not _conditions_match(statement.get("Condition"), request.context,
                                 unknown=(effect == "Deny")):
            continue
        if effect == "Deny":
            return False
        if effect == "Allow":
            allowed = True
    return allowed


def _values(value: Any) -> list[str]:
    if isinstance(value, list):
        return [_text(item) for item in value]
    return [_text(value)]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@lru_cache(maxsize=1024)
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def _action_matches(statement: dict[str, Any], action: str) -> bool:
    if "Action" in statement:
        return any(_like(pattern, action, True) for pattern in _values(statement["Action"]))
    if "NotAction" in statement:
        return not any(_like(pattern, action, True) for pattern in _values(statement["NotAction"]))
    return False


def _principal_matches(statement: dict[str, Any], principals: dict[str, frozenset[str]]) -> bool:
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for kind, values in principal.items():
        have = principals.get(kind)
        if not have:
            continue
        for value in _values(values):
            if value == "*" or value in have:
                return True
    return False


# operator -> (compare(policy value, context value), negated)
_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "stringequals": (lambda want, have: want == have, False),
    "stringnotequals": (lambda want, have: want == have, True),
    "stringequalsignorecase": (lambda want, have: want.lower() == have.lower(), False),
    "stringnotequalsignorecase": (lambda want, have: want.lower() == have.lower(), True),
    "stringlike": (lambda want, have: _like(want, have), False),
    "stringnotlike": (lambda want, have: _like(want, have), True),
    "arnequals": (lambda want, have: _like(want, have), False),
    "arnlike": (lambda want, have: _like(want, have), False),
    "arnnotequals": (lambda want, have: _like(want, have), True),
    "arnnotlike": (lambda want, have: _like(want, have), True),
    "bool": (lambda want, have: want.lower() == have.lower(), False),
}


def _conditions_match(conditions: Any, context: dict[str, list[str]], *, unknown: bool) -> bool:
    if not conditions:
        return True
    if not isinstance(conditions, dict):
        return unknown
    for operator, block in conditions.items():
        if not isinstance(block, dict):
            return unknown
        for key, wanted in block.items():
            result = _condition(operator, key.lower(), _values(wanted), context)
            if result is None:
                return unknown
            if not result:
                return False
    return True


def _condition(operator: str, key: str, wanted: list[str],
               context: dict[str, list[str]]) -> bool | None:
    qualifier = ""
    if ":" in operator:
        qualifier, operator = operator.split(":", 1)
        qualifier = qualifier.lower()
        if qualifier not in ("foranyvalue", "forallvalues"):
            return None
    name = operator.lower()
    have = context.get(key)
    if name == "null":
        return (have is None) == (wanted[0].lower() == "true") if wanted else None
    if_exists = name.endswith("ifexists")
    if if_exists:
        name = name[: -len("ifexists")]
    if name not in _OPERATORS:
        return None
    compare, negated = _OPERATORS[name]
    if have is None:
        if qualifier == "forallvalues":
            return True
        return True if (if_exists or negated) else False
    hits = [any(compare(want, value) for want in wanted) for value in have]
    if qualifier == "forallvalues":
        return all(not hit for hit in hits) if negated else all(hits)
    if qualifier == "foranyvalue" and negated:
        return any(not hit for hit in hits)
    if negated:
        return not any(hits)
    return any(hits)


def context_from(pairs: Iterable[tuple[str, Any]]) -> dict[str, list[str]]:
    """Condition keys with lower-cased names; None values are left out."""
    context: dict[str, list[str]] = {}
    for key, value in pairs:
        if value is None:
            continue
        context[key.lower()] = _values(value) if isinstance(value, list) else [_text(value)]
    return context
