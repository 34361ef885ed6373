"""IAM policy evaluation: identity-based, session and boundary policies, and role trust policies.

Pure and I/O free. A policy document (dict, JSON text or bytes) is parsed once into compiled
matchers (cached by its canonical text); :func:`evaluate` then answers one request at a time.

Evaluation (AWS "Policy evaluation logic", single account, no SCPs / resource-based policies)::

    root principal, resource in its own account ............ allow ("root")
    explicit Deny in identity, then boundary, then session .. deny ("explicit_deny")
    no identity-based Allow ................................. deny ("no_identity_allow")
    boundary given and no Allow in it ....................... deny ("no_boundary_allow")
    session policies given and no Allow in any of them ...... deny ("no_session_allow")
    resource in another account ............................. deny ("no_resource_allow")
    otherwise ............................................... allow ("allowed")

Semantics chosen where AWS leaves room (all pinned by tests/unit/test_policy.py and the
independent tests/unit/reference_evaluator.py):

* Action / NotAction: glob (``*`` any run, ``?`` one character), case-insensitive.
* Resource / NotResource: glob over the whole ARN, case-sensitive; ``*`` may cross ``:`` and
  ``/``. The request resource ``*`` (operations without resource-level permissions) is only
  matched by patterns that match the literal text ``*`` (``*`` itself).
* An identity/session/boundary statement without Resource or NotResource (malformed for IAM):
  an Allow never applies, a Deny applies to every resource (fail-safe).
* Condition keys are case-insensitive (``aws:PrincipalTag/Team`` = ``aws:principaltag/team``).
  All operators of a Condition block AND together, all keys of one operator AND together, the
  values of one key OR together. Negated operators (``StringNotEquals``, ``StringNotLike``,
  ``NumericNotEquals``, ``DateNotEquals``, ``NotIpAddress``, ``ArnNotEquals``, ``ArnNotLike``)
  are true when no request value matches any policy value -- so they are true for a missing
  key, as AWS documents.
* Missing key (absent, None or an empty list): plain positive operator false, plain negated
  operator true, ``...IfExists`` true, ``ForAllValues:`` true (vacuous), ``ForAnyValue:``
  false -- ``ForAnyValue:`` ignores ``IfExists``. ``Null``: ``true`` iff the key is missing.
* A multivalued request key without a set operator behaves like ``ForAnyValue:`` for positive
  operators and as "no value matches" for negated ones.
* ``ArnEquals`` = ``ArnLike``: the six colon-separated ARN parts are matched one by one (the last
  part may contain ``:``), wildcards never cross a part boundary; values with fewer than six parts
  never match.
* A request value that cannot be read by the operator (a non-IP for IpAddress, a non-number for
  Numeric*) matches no policy value.
* Unknown operators (including ``Null`` with ``IfExists`` or a set operator, and ``IfExists``
  spelled differently), and policy values the operator cannot read (``"abc"`` for Numeric*,
  ``"1.2.3.4/99"`` for IpAddress, ...) make the condition *unevaluable*: an Allow statement with
  an unevaluable condition never applies; a Deny statement treats it as satisfied, so the Deny
  applies when its other conditions hold (fail closed: an unknown operator can deny, never
  allow). Operator names are case-sensitive.
* Policy variables (``${aws:username}``, ``${aws:PrincipalTag/team}``, ``${key, 'default'}``,
  ``${*}``, ``${?}``, ``${$}``) are expanded in Resource/NotResource and in the values of String*
  and Arn* conditions, only in Version 2012-10-17 documents. A substituted value is literal text
  (its ``*``/``?`` are not wildcards). A variable whose key is missing or multivalued (and has no
  default) makes that one pattern/value match nothing.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal, Union

from searchtrail.protocol.errors import ServiceError
from searchtrail.protocol.strictjson import unique_members

VERSION_2012 = "2012-10-17"
VERSION_2008 = "2008-10-17"
VERSIONS = (VERSION_2012, VERSION_2008)

PolicyDocument = Union[str, bytes, Mapping[str, Any], "CompiledPolicy"]
ContextValue = Union[str, bool, int, float, Decimal, datetime, bytes, Sequence[Any], None]

IDENTITY_POLICY = "identity-based policy"
SESSION_POLICY = "session policy"
PERMISSIONS_BOUNDARY = "permissions boundary"
RESOURCE_POLICY = "resource-based policy"
TRUST_POLICY = "trust policy"


class MalformedPolicyError(ValueError):
    """The document cannot be evaluated at all (not JSON, no Statement, bad Effect, ...)."""


# --------------------------------------------------------------------------------------------
# Patterns: globs, ARN globs and policy variables
# --------------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DEFAULT = re.compile(r"\s*'([^']*)'\s*")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


@dataclass(frozen=True)
class _Var:
    """``${key}`` / ``${key, 'default'}``; ``key`` is lowercased."""

    key: str
    default: str | None


@dataclass(frozen=True)
class _Literal:
    """Text taken literally (an escape such as ``${*}``): never a wildcard."""

    text: str


_Part = Union[str, _Var, _Literal]  # str: pattern text whose * and ? are wildcards


def _split_variables(text: str, allow_variables: bool) -> tuple[_Part, ...]:
    if not allow_variables or "${" not in text:
        return (text,)
    parts: list[_Part] = []
    position = 0
    for match in _VARIABLE.finditer(text):
        inner = match.group(1)
        _, comma, rest = inner.partition(",")
        key = _variable_key(inner)
        default: str | None = None
        if comma:
            default_match = _DEFAULT.fullmatch(rest)
            default = default_match.group(1) if default_match else None
        if inner in _ESCAPES:
            part: _Part = _Literal(_ESCAPES[inner])
        elif key and not (comma and default is None) and not set(key) & set("'${"):
            part = _Var(key.lower(), default)
        else:
            continue  # not a variable: stays pattern text
        parts.append(text[position:match.start()])
        parts.append(part)
        position = match.end()
    parts.append(text[position:])
    return tuple(p for p in parts if p != "")


def _variable_key(inner: str) -> str:
    """The key a ``${key}`` or ``${key, 'default'}`` names (as written)."""
    return inner.partition(",")[0].strip()


def _has_variables(parts: tuple[_Part, ...]) -> bool:
    return any(not isinstance(p, str) for p in parts)


def _resolve(parts: tuple[_Part, ...], ctx: "_Context") -> list[tuple[str, bool]] | None:
    """Chunks of (text, wildcards active); None when a variable cannot be resolved."""
    chunks: list[tuple[str, bool]] = []
    for part in parts:
        if isinstance(part, str):
            chunks.append((part, True))
        elif isinstance(part, _Literal):
            chunks.append((part.text, False))
        else:
            value = ctx.single_string(part.key)
            if value is None:
                value = part.default
            if value is None:
                return None
            chunks.append((value, False))
    return chunks


def _glob_source(chunks: Iterable[tuple[str, bool]], arn: bool) -> str | None:
    """Regex source for a glob; ``arn`` keeps wildcards inside the first five ARN parts."""
    out: list[str] = []
    colons = 0
    for text, wild in chunks:
        for char in text:
            inside = arn and colons < 5
            if arn and char == ":" and inside:
                colons += 1
                out.append(":")
            elif wild and char == "*":
                out.append("[^:]*" if inside else ".*")
            elif wild and char == "?":
                out.append("[^:]" if inside else ".")
            else:
                out.append(re.escape(char))
    if arn and colons < 5:
        return None
    return "".join(out)


@lru_cache(maxsize=4096)
def _regex(source: str, ignore_case: bool) -> re.Pattern[str]:
    return re.compile(source, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


_NEVER = re.compile(r"(?!)")


class _PatternSet:
    """A list of glob patterns (Action, Resource, StringLike values ...) matched as one."""

    __slots__ = ("match_all", "static", "dynamic", "ignore_case")

    def __init__(self, patterns: Iterable[str], *, ignore_case: bool, allow_variables: bool) -> None:
        static: list[str] = []
        dynamic: list[tuple[_Part, ...]] = []
        self.match_all = False
        self.ignore_case = ignore_case
        for pattern in patterns:
            parts = _split_variables(pattern, allow_variables)
            if _has_variables(parts):
                dynamic.append(parts)
            elif pattern == "*":
                self.match_all = True
            else:
                static.append(_glob_source([(pattern, True)], arn=False) or "")
        self.static = _regex("|".join(f"(?:{s})" for s in static), ignore_case) if static else None
        self.dynamic = tuple(dynamic)

    def matches(self, value: str, ctx: "_Context") -> bool:
        if self.match_all:
            return True
        if self.static is not None and self.static.fullmatch(value):
            return True
        for parts in self.dynamic:
            chunks = _resolve(parts, ctx)
            if chunks is None:
                continue
            source = _glob_source(chunks, arn=False)
            if source is not None and _regex(source, self.ignore_case).fullmatch(value):
                return True
        return False


# --------------------------------------------------------------------------------------------
# Request context
# --------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _to_string(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return _iso(value)
    return None


class _Context:
    """The request context with lowercased keys; every value as a tuple (None: missing)."""

    __slots__ = ("values", "multi")

    def __init__(self, context: Mapping[str, ContextValue]) -> None:
        self.values: dict[str, tuple[Any, ...]] = {}
        self.multi: set[str] = set()
        for key, value in context.items():
            name = key.lower()
            if value is None:
                continue
            if isinstance(value, (list, tuple, set, frozenset)):
                items = tuple(v for v in value if v is not None)
                if items:
                    self.values[name] = items
                    self.multi.add(name)
            else:
                self.values[name] = (value,)

    def get(self, key: str) -> tuple[Any, ...] | None:
        return self.values.get(key)

    def single_string(self, key: str) -> str | None:
        """The value a policy variable expands to: single-valued keys only."""
        if key in self.multi:
            return None
        values = self.values.get(key)
        return _to_string(values[0]) if values else None


# --------------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------------

class _Unreadable(Exception):
    """A policy value the operator cannot read."""


def _parse_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return Decimal(value)
    return None


def _parse_date(value: Any) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    number = _parse_decimal(value)
    if number is not None:
        try:
            return datetime.fromtimestamp(float(number), tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def _parse_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _parse_network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None


def _parse_address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _parse_binary(value: Any) -> bytes | None:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
    return None


def _policy_string(raw: Any) -> str:
    text = _to_string(raw)
    if text is None or isinstance(raw, datetime):
        raise _Unreadable(raw)
    return text


class _Family:
    """How one operator family reads policy values and request values and compares them."""

    variables = False

    def policy_value(self, raw: Any, allow_variables: bool) -> Any:
        raise NotImplementedError

    def request_value(self, raw: Any) -> Any:
        """The request value in comparable form, or None when unreadable."""
        raise NotImplementedError

    def compare(self, test: str, request: Any, policy: Any, ctx: _Context) -> bool:
        raise NotImplementedError


class _StringFamily(_Family):
    variables = True

    def policy_value(self, raw: Any, allow_variables: bool) -> Any:
        return _split_variables(_policy_string(raw), allow_variables)

    def request_value(self, raw: Any) -> Any:
        return _to_string(raw)

    def compare(self, test: str, request: Any, policy: Any, ctx: _Context) -> bool:
        chunks = _resolve(policy, ctx)
        if chunks is None:
            return False
        if test == "like":
            source = _glob_source(chunks, arn=False)
            return source is not None and bool(_regex(source, False).fullmatch(request))
        text = "".join(text for text, _ in chunks)
        if test == "equals_ignore_case":
            return request.lower() == text.lower()
        return request == text


class _ArnFamily(_StringFamily):
    def compare(self, test: str, request: Any, policy: Any, ctx: _Context) -> bool:
        chunks = _resolve(policy, ctx)
        if chunks is None:
            return False
        source = _glob_source(chunks, arn=True)
        if source is None or request.count(":") < 5:
            return False
        return bool(_regex(source, False).fullmatch(request))


_ORDER_TESTS = {
    "eq": lambda a, b: a == b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


class _OrderedFamily(_Family):
    def __init__(self, parse: Any) -> None:
        self.parse = parse

    def policy_value(self, raw: Any, allow_variables: bool) -> Any:
        value = self.parse(raw)
        if value is None:
            raise _Unreadable(raw)
        return value

    def request_value(self, raw: Any) -> Any:
        return self.parse(raw)

    def compare(self, test: str, request: Any, policy: Any, ctx: _Context) -> bool:
        return _ORDER_TESTS[test](request, policy)


class _IpFamily(_Family):
    def policy_value(self, raw: Any, allow_variables: bool) -> Any:
        value = _parse_network(raw)
        if value is None:
            raise _Unreadable(raw)
        return value

    def request_value(self, raw: Any) -> Any:
        return _parse_address(raw)

    def compare(self, test: str, request: Any, policy: Any, ctx: _Context) -> bool:
        return request.version == policy.version and request in policy


_STRING = _StringFamily()
_ARN = _ArnFamily()
_NUMERIC = _OrderedFamily(_parse_decimal)
_DATE = _OrderedFamily(_parse_date)
_BOOL = _OrderedFamily(_parse_bool)
_BINARY = _OrderedFamily(_parse_binary)
_IP = _IpFamily()

# operator -> (family, comparison, negated)
_OPERATORS: dict[str, tuple[_Family, str, bool]] = {
    "StringEquals": (_STRING, "equals", False),
    "StringNotEquals": (_STRING, "equals", True),
    "StringEqualsIgnoreCase": (_STRING, "equals_ignore_case", False),
    "StringNotEqualsIgnoreCase": (_STRING, "equals_ignore_case", True),
    "StringLike": (_STRING, "like", False),
    "StringNotLike": (_STRING, "like", True),
    "NumericEquals": (_NUMERIC, "eq", False),
    "NumericNotEquals": (_NUMERIC, "eq", True),
    "NumericLessThan": (_NUMERIC, "lt", False),
    "NumericLessThanEquals": (_NUMERIC, "le", False),
    "NumericGreaterThan": (_NUMERIC, "gt", False),
    "NumericGreaterThanEquals": (_NUMERIC, "ge", False),
    "DateEquals": (_DATE, "eq", False),
    "DateNotEquals": (_DATE, "eq", True),
    "DateLessThan": (_DATE, "lt", False),
    "DateLessThanEquals": (_DATE, "le", False),
    "DateGreaterThan": (_DATE, "gt", False),
    "DateGreaterThanEquals": (_DATE, "ge", False),
    "Bool": (_BOOL, "eq", False),
    "BinaryEquals": (_BINARY, "eq", False),
    "IpAddress": (_IP, "in", False),
    "NotIpAddress": (_IP, "in", True),
    "ArnEquals": (_ARN, "like", False),
    "ArnLike": (_ARN, "like", False),
    "ArnNotEquals": (_ARN, "like", True),
    "ArnNotLike": (_ARN, "like", True),
}
OPERATORS = frozenset(_OPERATORS) | {"Null"}
SET_OPERATORS = ("ForAllValues:", "ForAnyValue:")
_IF_EXISTS = "IfExists"


@dataclass(frozen=True)
class _OperatorSpec:
    family: _Family | None  # None: Null
    test: str
    negated: bool
    if_exists: bool
    set_operator: Literal["all", "any"] | None


def _operator(name: str) -> _OperatorSpec | None:
    """The parsed operator name; None when unknown."""
    set_operator: Literal["all", "any"] | None = None
    base = name
    if base.startswith("ForAllValues:"):
        set_operator, base = "all", base[len("ForAllValues:"):]
    elif base.startswith("ForAnyValue:"):
        set_operator, base = "any", base[len("ForAnyValue:"):]
    if_exists = base.endswith(_IF_EXISTS) and base != _IF_EXISTS
    if if_exists:
        base = base[: -len(_IF_EXISTS)]
    if base == "Null":
        if if_exists or set_operator:
            return None
        return _OperatorSpec(None, "null", False, False, None)
    spec = _OPERATORS.get(base)
    if spec is None:
        return None
    family, test, negated = spec
    return _OperatorSpec(family, test, negated, if_exists, set_operator)


@dataclass(frozen=True)
class _Condition:
    operator: str
    key: str  # lowercased
    spec: _OperatorSpec | None  # None: unknown operator
    values: tuple[Any, ...] | None  # None: a policy value the operator cannot read

    def evaluate(self, ctx: _Context) -> bool | None:
        """True/False, or None when the condition cannot be evaluated (see module docs)."""
        spec = self.spec
        if spec is None or self.values is None:
            return None
        present = ctx.get(self.key)
        if spec.family is None:  # Null
            return any(want == (present is None) for want in self.values)
        if present is None:
            if spec.set_operator == "all":
                return True
            if spec.set_operator == "any":
                return False
            return True if spec.if_exists else spec.negated
        family = spec.family

        def matches(raw: Any) -> bool:
            request = family.request_value(raw)
            if request is None:
                return False
            return any(family.compare(spec.test, request, policy, ctx) for policy in self.values)

        if spec.set_operator == "all":
            return all(matches(raw) != spec.negated for raw in present)
        if spec.set_operator == "any":
            return any(matches(raw) != spec.negated for raw in present)
        return any(matches(raw) for raw in present) != spec.negated


def _compile_condition(operator: str, key: str, raw_values: Any, allow_variables: bool) -> _Condition:
    values_list = raw_values if isinstance(raw_values, list) else [raw_values]
    for value in values_list:
        if isinstance(value, (dict, list)) or value is None:
            raise MalformedPolicyError(f"Condition values of {operator} {key} must be strings, "
                                       "numbers or booleans")
    spec = _operator(operator)
    if spec is None:
        return _Condition(operator, key.lower(), None, tuple(values_list))
    try:
        if spec.family is None:
            parsed = []
            for value in values_list:
                flag = _parse_bool(value)
                if flag is None:
                    raise _Unreadable(value)
                parsed.append(flag)
            values: tuple[Any, ...] | None = tuple(parsed)
        else:
            family = spec.family
            values = tuple(family.policy_value(v, allow_variables and family.variables)
                           for v in values_list)
    except _Unreadable:
        values = None
    return _Condition(operator, key.lower(), spec, values)


# --------------------------------------------------------------------------------------------
# Statements and compiled policies
# --------------------------------------------------------------------------------------------

_PRINCIPAL_TYPES = ("AWS", "Federated", "Service", "CanonicalUser")


@dataclass(frozen=True)
class _Statement:
    sid: str | None
    allow: bool
    actions: _PatternSet
    not_action: bool
    resources: _PatternSet | None  # None: the statement has neither Resource nor NotResource
    not_resource: bool
    principals: dict[str, tuple[str, ...]] | None  # None: no Principal/NotPrincipal; "*" under "*"
    not_principal: bool
    conditions: tuple[_Condition, ...]

    def action_matches(self, action: str, ctx: _Context) -> bool:
        return self.actions.matches(action, ctx) != self.not_action

    def resource_matches(self, resource: str, ctx: _Context, missing: bool) -> bool:
        if self.resources is None:
            return missing
        return self.resources.matches(resource, ctx) != self.not_resource

    def conditions_hold(self, ctx: _Context) -> bool:
        """Allow statements need every condition true; Deny statements every one not false."""
        for condition in self.conditions:
            result = condition.evaluate(ctx)
            if result is False or (result is None and self.allow):
                return False
        return True


@dataclass(frozen=True)
class CompiledPolicy:
    """A parsed policy document; build with :func:`compile_policy`."""

    version: str
    statements: tuple[_Statement, ...]
    # Every key a condition or a policy variable names, lowercased: what evaluating it may read.
    keys: frozenset[str] = frozenset()

    def _matching(self, allow: bool, action: str, resource: str, ctx: _Context,
                  missing_resource: bool) -> _Statement | None:
        for statement in self.statements:
            if (statement.allow is allow and statement.action_matches(action, ctx)
                    and statement.resource_matches(resource, ctx, missing_resource)
                    and statement.conditions_hold(ctx)):
                return statement
        return None

    def denying(self, action: str, resource: str, ctx: _Context) -> _Statement | None:
        return self._matching(False, action, resource, ctx, True)

    def allowing(self, action: str, resource: str, ctx: _Context) -> _Statement | None:
        return self._matching(True, action, resource, ctx, False)


def _as_list(value: Any, element: str) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise MalformedPolicyError(f"{element} must not be empty")
    for item in items:
        if not isinstance(item, str):
            raise MalformedPolicyError(f"{element} values must be strings")
    return items


def _principals(value: Any) -> dict[str, tuple[str, ...]]:
    if value == "*":
        return {"*": ("*",)}
    if not isinstance(value, dict) or not value:
        raise MalformedPolicyError("Principal must be \"*\" or an object")
    out: dict[str, tuple[str, ...]] = {}
    for kind, entries in value.items():
        if kind not in _PRINCIPAL_TYPES:
            raise MalformedPolicyError(f"Invalid principal type {kind}")
        out[kind] = tuple(_as_list(entries, f"Principal {kind}"))
    return out


def _compile_statement(raw: Any, allow_variables: bool) -> _Statement:
    if not isinstance(raw, dict):
        raise MalformedPolicyError("Each statement must be an object")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise MalformedPolicyError(f"Effect must be Allow or Deny, not {effect!r}")
    if ("Action" in raw) == ("NotAction" in raw):
        raise MalformedPolicyError("A statement needs exactly one of Action and NotAction")
    if "Resource" in raw and "NotResource" in raw:
        raise MalformedPolicyError("A statement cannot have both Resource and NotResource")
    if "Principal" in raw and "NotPrincipal" in raw:
        raise MalformedPolicyError("A statement cannot have both Principal and NotPrincipal")
    action_key = "Action" if "Action" in raw else "NotAction"
    actions = _PatternSet(_as_list(raw[action_key], action_key), ignore_case=True,
                          allow_variables=False)
    resources = None
    resource_key = "Resource" if "Resource" in raw else "NotResource" if "NotResource" in raw else None
    if resource_key:
        resources = _PatternSet(_as_list(raw[resource_key], resource_key), ignore_case=False,
                                allow_variables=allow_variables)
    principal_key = "Principal" if "Principal" in raw else "NotPrincipal" if "NotPrincipal" in raw else None
    principals = _principals(raw[principal_key]) if principal_key else None
    conditions: list[_Condition] = []
    block = raw.get("Condition", {})
    if not isinstance(block, dict):
        raise MalformedPolicyError("Condition must be an object")
    for operator, keys in block.items():
        if not isinstance(keys, dict):
            raise MalformedPolicyError(f"Condition {operator} must map keys to values")
        for key, values in keys.items():
            conditions.append(_compile_condition(operator, key, values, allow_variables))
    sid = raw.get("Sid")
    return _Statement(sid if isinstance(sid, str) else None, effect == "Allow", actions,
                      action_key == "NotAction", resources, resource_key == "NotResource",
                      principals, principal_key == "NotPrincipal", tuple(conditions))


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def parse_document(text: str) -> Any:
    """A policy document's JSON, strictly: a repeated member name ("Effect" twice: which one
    would IAM's parser keep?) and NaN or Infinity (not JSON) are ValueErrors."""
    return json.loads(text, object_pairs_hook=unique_members, parse_constant=_not_json)


@lru_cache(maxsize=2048)
def _compile_text(text: str) -> CompiledPolicy:
    try:
        document = parse_document(text)
    except RecursionError:
        raise MalformedPolicyError("Syntax errors in policy: nested too deeply") from None
    except ValueError as exc:
        raise MalformedPolicyError(f"Syntax errors in policy: {exc}") from None
    return _compile_document(document, text)


def _compile_document(document: Any, text: str) -> CompiledPolicy:
    if not isinstance(document, dict):
        raise MalformedPolicyError("A policy document must be a JSON object")
    version = document.get("Version", VERSION_2008)
    if version not in VERSIONS:
        raise MalformedPolicyError(f"Unsupported policy Version {version!r}")
    if "Statement" not in document:
        raise MalformedPolicyError("A policy document needs a Statement")
    raw = document["Statement"]
    statements = raw if isinstance(raw, list) else [raw]
    allow_variables = version == VERSION_2012
    compiled = tuple(_compile_statement(s, allow_variables) for s in statements)
    keys = {condition.key for statement in compiled for condition in statement.conditions}
    if allow_variables:
        keys.update(_variable_key(match.group(1)).lower() for match in _VARIABLE.finditer(text))
    return CompiledPolicy(version, compiled, frozenset(keys))


def compile_policy(document: PolicyDocument) -> CompiledPolicy:
    """Parse a document once; repeated calls with the same text are served from a cache.

    Raises :class:`MalformedPolicyError` when the document cannot be evaluated at all.
    """
    if isinstance(document, CompiledPolicy):
        return document
    if isinstance(document, (bytes, bytearray)):
        document = bytes(document).decode("utf-8")
    if isinstance(document, str):
        return _compile_text(document)
    if isinstance(document, Mapping):
        try:
            text = json.dumps(document, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise MalformedPolicyError(f"Syntax errors in policy: {exc}") from None
        return _compile_text(text)
    raise MalformedPolicyError(f"A policy document must be JSON text or an object, "
                               f"not {type(document).__name__}")


# --------------------------------------------------------------------------------------------
# Requests and decisions
# --------------------------------------------------------------------------------------------

AWS_OWNED = "aws"  # the account field of what AWS itself owns (managed policies)


def arn_account(arn: str) -> str:
    """The account field of an ARN ("" for ``*``, non-ARNs and account-less ARNs such as S3)."""
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[0] == "arn" else ""


def owning_account(arn: str) -> str:
    """The account a resource belongs to, as authorization sees it: its ARN's account field,
    "" when it has none or when AWS owns it (an AWS managed policy,
    ``arn:aws:iam::aws:policy/...``: anyone's identity policy may let them read it)."""
    owner = arn_account(arn)
    return "" if owner == AWS_OWNED else owner


@dataclass(frozen=True)
class AuthorizationRequest:
    """One authorization question: may ``principal_arn`` do ``action`` on ``resource``?

    ``resource_account`` defaults to the resource's :func:`owning_account`, or to
    ``principal_account`` when it has none (``*``, S3 ARNs, AWS's own: no grant of another
    account is needed for those). ``context`` holds the
    condition keys (any case); build the global ones with :func:`request_context`.
    """

    action: str
    resource: str
    principal_arn: str
    principal_account: str
    resource_account: str = ""
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    _ctx: _Context = field(init=False, repr=False, compare=False, default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if not self.resource_account:
            object.__setattr__(self, "resource_account",
                               owning_account(self.resource) or self.principal_account)
        object.__setattr__(self, "_ctx", _Context(self.context))


@dataclass(frozen=True)
class PolicySet:
    """The policies that apply to one principal.

    ``session``: None when the session has no session policy; a sequence (even an empty one)
    when session policies were passed -- the session may then do only what one of them allows.
    ``boundary``: the permissions boundary, or None.
    """

    identity: Sequence[PolicyDocument] = ()
    session: Sequence[PolicyDocument] | None = None
    boundary: PolicyDocument | None = None
    is_root: bool = False


Reason = Literal["explicit_deny", "no_identity_allow", "no_session_allow", "no_boundary_allow",
                 "no_resource_allow", "no_trust_allow", "root_cannot_assume_role", "root", "allowed"]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: Reason
    denied_by: str | None = None  # "identity-based policy", "session policy", ...
    statement: str | None = field(default=None, compare=False)  # Sid of the deciding statement


ALLOWED = Decision(True, "allowed")
ROOT = Decision(True, "root")

ResourceGrant = Literal["account", "principal"] | None


def evaluate(policies: PolicySet, request: AuthorizationRequest, *,
             resource_grant: ResourceGrant = None) -> Decision:
    """The decision for one request. Pure; raises MalformedPolicyError for unusable documents.

    ``resource_grant`` is what a resource-based policy (a role's trust policy) grants:
    ``"account"`` -- the principal's account is trusted (satisfies the cross-account check, the
    identity-based Allow is still needed); ``"principal"`` -- the principal itself is named
    (in the same account no identity-based Allow is needed; boundaries and session policies
    still apply, which is stricter than AWS for IAM-user ARNs).
    """
    same_account = request.resource_account == request.principal_account
    if policies.is_root:
        if same_account:
            return ROOT
        if resource_grant is None:
            return Decision(False, "no_resource_allow", RESOURCE_POLICY)
        return ALLOWED
    action, resource, ctx = request.action, request.resource, request._ctx
    identity = [compile_policy(doc) for doc in policies.identity]
    boundary = compile_policy(policies.boundary) if policies.boundary is not None else None
    session = ([compile_policy(doc) for doc in policies.session]
               if policies.session is not None else None)

    groups: list[tuple[str, list[CompiledPolicy]]] = [(IDENTITY_POLICY, identity)]
    if boundary is not None:
        groups.append((PERMISSIONS_BOUNDARY, [boundary]))
    if session is not None:
        groups.append((SESSION_POLICY, session))
    for label, group in groups:
        for policy in group:
            statement = policy.denying(action, resource, ctx)
            if statement is not None:
                return Decision(False, "explicit_deny", label, statement.sid)

    direct = resource_grant == "principal" and same_account
    if not direct and not any(p.allowing(action, resource, ctx) for p in identity):
        return Decision(False, "no_identity_allow", IDENTITY_POLICY)
    if boundary is not None and boundary.allowing(action, resource, ctx) is None:
        return Decision(False, "no_boundary_allow", PERMISSIONS_BOUNDARY)
    if session is not None and not any(p.allowing(action, resource, ctx) for p in session):
        return Decision(False, "no_session_allow", SESSION_POLICY)
    if not same_account and resource_grant is None:
        return Decision(False, "no_resource_allow", RESOURCE_POLICY)
    return ALLOWED


def compiled(policies: PolicySet) -> PolicySet:
    """The same set with every document parsed, to evaluate it several times."""
    return PolicySet(
        identity=[compile_policy(document) for document in policies.identity],
        session=(None if policies.session is None
                 else [compile_policy(document) for document in policies.session]),
        boundary=None if policies.boundary is None else compile_policy(policies.boundary),
        is_root=policies.is_root)


def names_key(policies: PolicySet, prefixes: tuple[str, ...]) -> bool:
    """Whether any of these policies names a condition key (or variable) starting with one of
    ``prefixes`` (lowercase): a key worth reading only when some policy can ask for it."""
    documents = [*policies.identity, *(policies.session or ())]
    if policies.boundary is not None:
        documents.append(policies.boundary)
    return any(key.startswith(prefixes) for document in documents
               for key in compile_policy(document).keys)


def authorize(policies: PolicySet, requests: Iterable[AuthorizationRequest]) -> Decision:
    """Evaluate every request (one per resource an operation touches); raise on the first deny."""
    decision = ALLOWED
    for request in requests:
        decision = evaluate(policies, request)
        if not decision.allowed:
            raise access_denied(request.principal_arn, request.action, request.resource, decision)
    return decision


# --------------------------------------------------------------------------------------------
# The AccessDenied error
# --------------------------------------------------------------------------------------------

_QUERY_PROTOCOL_PREFIXES = ("iam:", "sts:")


def _article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def access_denied_message(principal_arn: str, action: str, resource: str, decision: Decision) -> str:
    """AWS's wording; " on resource: ..." is left out when the resource is ``*``."""
    if decision.reason == "root_cannot_assume_role":
        return "Roles may not be assumed by root accounts."
    if action.lower() == "sts:assumerolewithwebidentity":
        return "Not authorized to perform sts:AssumeRoleWithWebIdentity"
    head = f"User: {principal_arn} is not authorized to perform: {action}"
    if resource and resource != "*":
        head += f" on resource: {resource}"
    if decision.reason in ("no_trust_allow",) or decision.denied_by == TRUST_POLICY:
        return head
    if decision.reason == "explicit_deny":
        label = decision.denied_by or IDENTITY_POLICY
        return f"{head} with an explicit deny in {_article(label)} {label}"
    label = {"no_session_allow": SESSION_POLICY, "no_boundary_allow": PERMISSIONS_BOUNDARY,
             "no_resource_allow": RESOURCE_POLICY}.get(decision.reason, IDENTITY_POLICY)
    return f"{head} because no {label} allows the {action} action"


def access_denied(principal_arn: str, action: str, resource: str, decision: Decision) -> ServiceError:
    """The error for a denied call: 403 ``AccessDeniedException`` (``AccessDenied`` for the
    query-protocol services iam and sts, as AWS names it there)."""
    code = ("AccessDenied" if action.lower().startswith(_QUERY_PROTOCOL_PREFIXES)
            else "AccessDeniedException")
    return ServiceError(code, access_denied_message(principal_arn, action, resource, decision),
                        status=403)


# --------------------------------------------------------------------------------------------
# Request context builder
# --------------------------------------------------------------------------------------------

PrincipalType = Literal["Account", "User", "AssumedRole", "FederatedUser", "Anonymous"]


def request_context(*, principal_arn: str, principal_account: str, principal_type: PrincipalType,
                    userid: str, now: datetime, region: str, source_ip: str | None = None,
                    secure_transport: bool | None = None, username: str | None = None,
                    mfa_present: bool | None = None,
                    principal_tags: Mapping[str, str] | None = None,
                    token_issue_time: datetime | None = None, source_identity: str | None = None,
                    federated_provider: str | None = None, user_agent: str | None = None,
                    organization_id: str | None = None,
                    extra: Mapping[str, ContextValue] | None = None) -> dict[str, ContextValue]:
    """The global condition keys for one request.

    ``principal_arn`` is ``aws:PrincipalArn``: the *role* ARN for an assumed-role session (not
    the ``sts ... assumed-role`` session ARN). ``username`` only for IAM users; ``mfa_present``
    None (key absent) for long-term access keys, a bool for temporary credentials, which also
    give ``token_issue_time`` (``aws:TokenIssueTime``: what AWS's "revoke older sessions"
    policy compares). Calls come straight from their caller, never from an AWS service.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    ctx: dict[str, ContextValue] = {
        "aws:PrincipalArn": principal_arn,
        "aws:PrincipalAccount": principal_account,
        "aws:PrincipalType": principal_type,
        "aws:userid": userid,
        "aws:PrincipalIsAWSService": False,
        **global_request_keys(now=now, region=region, source_ip=source_ip,
                              secure_transport=secure_transport, user_agent=user_agent),
    }
    mfa_age = (max(0, int((now - token_issue_time).total_seconds()))
               if mfa_present and token_issue_time is not None else None)  # MFA at issue
    optional = {"aws:username": username, "aws:MultiFactorAuthPresent": mfa_present,
                "aws:TokenIssueTime": token_issue_time, "aws:MultiFactorAuthAge": mfa_age,
                "aws:SourceIdentity": source_identity,
                "aws:FederatedProvider": federated_provider,
                "aws:PrincipalOrgID": organization_id or None}
    ctx.update({key: value for key, value in optional.items() if value is not None})
    for tag, value in (principal_tags or {}).items():
        ctx[f"aws:PrincipalTag/{tag}"] = value
    ctx.update(extra or {})
    return ctx


def global_request_keys(*, now: datetime, region: str, source_ip: str | None = None,
                        secure_transport: bool | None = None,
                        user_agent: str | None = None) -> dict[str, ContextValue]:
    """The global condition keys of the request itself, whoever makes it (an unsigned
    AssumeRoleWithWebIdentity has no principal keys)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    ctx: dict[str, ContextValue] = {
        "aws:CurrentTime": now,
        "aws:EpochTime": int(now.timestamp()),
        "aws:RequestedRegion": region,
        "aws:ViaAWSService": False,
    }
    optional = {"aws:SourceIp": source_ip, "aws:SecureTransport": secure_transport,
                "aws:UserAgent": user_agent}
    ctx.update({key: value for key, value in optional.items() if value is not None})
    return ctx


# --------------------------------------------------------------------------------------------
# Trust policies (sts:AssumeRole, sts:AssumeRoleWithWebIdentity)
# --------------------------------------------------------------------------------------------

_ACCOUNT_ID = re.compile(r"\d{12}")
_ROOT_ARN = re.compile(r"arn:[a-z-]+:iam::(\d{12}):root")
_ROLE_ARN = re.compile(r"arn:([a-z-]+):iam::(\d{12}):role/(?:.*/)?([^/]+)")
_SESSION_ARN = re.compile(r"arn:([a-z-]+):sts::(\d{12}):assumed-role/([^/]+)/.+")


@dataclass(frozen=True)
class TrustRequest:
    """Who wants to assume ``role_arn``.

    AssumeRole: ``principal_arn`` (the caller's ARN; for a role session its
    ``arn:aws:sts::<acct>:assumed-role/<role>/<session>`` ARN) and ``principal_account``.
    AssumeRoleWithWebIdentity: ``federated`` (the OIDC provider ARN
    ``arn:aws:iam::<acct>:oidc-provider/<host>`` or a well-known name such as
    ``accounts.google.com``) and the token claims in ``context`` as ``<host>:aud``,
    ``<host>:sub``, ...
    """

    role_arn: str
    action: str = "sts:AssumeRole"
    principal_arn: str | None = None
    principal_account: str | None = None
    federated: str | None = None
    service: str | None = None
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    _ctx: _Context = field(init=False, repr=False, compare=False, default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ctx", _Context(self.context))


@dataclass(frozen=True)
class TrustDecision:
    allowed: bool
    reason: Literal["explicit_deny", "no_trust_allow", "allowed"]
    grant: ResourceGrant = None  # how an Allow matched: "principal" or only via "account"
    statement: str | None = field(default=None, compare=False)


def _aws_principal_match(entry: str, request: TrustRequest) -> ResourceGrant:
    caller, account = request.principal_arn, request.principal_account
    if caller is None:
        return None
    if entry == "*":
        return "principal"
    if _ACCOUNT_ID.fullmatch(entry):
        return "account" if entry == account else None
    root = _ROOT_ARN.fullmatch(entry)
    if root:
        return "account" if root.group(1) == account else None
    if entry == caller:
        return "principal"
    role, session = _ROLE_ARN.fullmatch(entry), _SESSION_ARN.fullmatch(caller)
    if role and session and role.group(1, 2, 3) == session.group(1, 2, 3):
        return "principal"
    return None


def _principal_match(principals: dict[str, tuple[str, ...]], request: TrustRequest) -> ResourceGrant:
    best: ResourceGrant = None
    for kind, entries in principals.items():
        for entry in entries:
            if kind == "*":
                found: ResourceGrant = "principal"
            elif kind == "AWS":
                found = _aws_principal_match(entry, request)
            elif kind == "Federated":
                found = "principal" if request.federated is not None and entry in (
                    "*", request.federated) else None
            elif kind == "Service":
                found = "principal" if request.service is not None and entry in (
                    "*", request.service) else None
            else:
                found = None
            if found == "principal":
                return "principal"
            best = best or found
    return best


def evaluate_trust(trust_policy: PolicyDocument, request: TrustRequest) -> TrustDecision:
    """Whether the role's trust policy lets the principal perform ``request.action``.

    Statements without Principal never match; Resource (not valid in trust policies) is
    matched against the role ARN when present.
    """
    policy = compile_policy(trust_policy)
    ctx = request._ctx
    grant: ResourceGrant = None
    allow_sid: str | None = None
    for statement in policy.statements:
        if statement.principals is None:
            continue
        if not statement.action_matches(request.action, ctx):
            continue
        if not statement.resource_matches(request.role_arn, ctx, True):
            continue
        found = _principal_match(statement.principals, request)
        if statement.not_principal:
            found = None if found else "principal"
        if found is None or not statement.conditions_hold(ctx):
            continue
        if not statement.allow:
            return TrustDecision(False, "explicit_deny", None, statement.sid)
        if statement.not_principal:
            continue  # AWS supports NotPrincipal with Deny only: it never grants
        if grant != "principal":
            grant, allow_sid = found, statement.sid
    if grant is None:
        return TrustDecision(False, "no_trust_allow")
    return TrustDecision(True, "allowed", grant, allow_sid)


def authorize_assume_role(trust_policy: PolicyDocument, trust_request: TrustRequest,
                          caller_policies: PolicySet | None = None,
                          caller_request: AuthorizationRequest | None = None) -> Decision:
    """The whole AssumeRole decision: the trust policy and, for IAM callers, their own policies.

    Web identity / service callers pass no ``caller_policies``. For IAM callers pass their
    PolicySet and the request for ``sts:AssumeRole`` on the role ARN. Rules: an explicit deny
    anywhere denies; root callers are refused; a trust policy naming only the caller's account
    also needs an identity-based Allow (always needed across accounts).
    """
    if caller_policies is not None and caller_policies.is_root:
        return Decision(False, "root_cannot_assume_role", TRUST_POLICY)
    trust = evaluate_trust(trust_policy, trust_request)
    if trust.reason == "explicit_deny":
        return Decision(False, "explicit_deny", TRUST_POLICY, trust.statement)
    if caller_policies is None or caller_request is None:
        if trust.allowed:
            return Decision(True, "allowed", None, trust.statement)
        return Decision(False, "no_trust_allow", TRUST_POLICY)
    identity = evaluate(caller_policies, caller_request, resource_grant=trust.grant)
    if identity.reason == "explicit_deny":
        return identity
    if not trust.allowed:
        return Decision(False, "no_trust_allow", TRUST_POLICY)
    return identity


# --------------------------------------------------------------------------------------------
# Validation (IAM MalformedPolicyDocument)
# --------------------------------------------------------------------------------------------

_SID = re.compile(r"[0-9A-Za-z]*")
_ACTION = re.compile(r"[A-Za-z0-9-]+:[A-Za-z0-9*?]+")
_STATEMENT_FIELDS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource",
                     "Principal", "NotPrincipal", "Condition"}
_PRINCIPAL_ARN = re.compile(
    r"arn:[a-z-]+:(?:iam::\d{12}:(?:root|user/.+|role/.+|federated-user/.+|oidc-provider/.+|"
    r"saml-provider/.+)|sts::\d{12}:(?:assumed-role/.+/.+|federated-user/.+))")


def _value_problems(operator: str, key: str, values: Any) -> list[str]:
    problems: list[str] = []
    items = values if isinstance(values, list) else [values]
    if not items:
        problems.append(f"Condition {operator} {key} has no values.")
    for value in items:
        if isinstance(value, (dict, list)) or value is None:
            problems.append(f"Condition {operator} {key}: values must be strings, numbers or "
                            "booleans.")
            return problems
    spec = _operator(operator)
    if spec is None:
        return [f"Invalid Condition type : {operator}."]
    if ":" not in key:
        problems.append(f"Condition key {key} must be prefixed with a vendor (aws:, aoss:, ...).")
    if spec.family is None:
        if any(_parse_bool(v) is None for v in items):
            problems.append(f"Condition Null {key} takes \"true\" or \"false\".")
        return problems
    try:
        for value in items:
            spec.family.policy_value(value, False)
    except _Unreadable as exc:
        problems.append(f"Invalid value {exc.args[0]!r} for condition operator {operator}.")
    return problems


def _principal_problems(value: Any) -> list[str]:
    if value == "*":
        return []
    if not isinstance(value, dict) or not value:
        return ["Invalid principal in policy."]
    problems: list[str] = []
    for kind, entries in value.items():
        if kind not in _PRINCIPAL_TYPES:
            problems.append(f"Invalid principal in policy: unknown principal type {kind}.")
            continue
        items = entries if isinstance(entries, list) else [entries]
        for entry in items:
            if not isinstance(entry, str) or not entry:
                problems.append(f"Invalid principal in policy: {entry!r}.")
            elif entry != "*" and ("*" in entry or "?" in entry):  # never part of a name
                problems.append(f"Invalid principal in policy: \"{kind}\":\"{entry}\"")
            elif kind == "AWS" and entry != "*" and not (
                    _ACCOUNT_ID.fullmatch(entry) or _PRINCIPAL_ARN.fullmatch(entry)):
                problems.append(f"Invalid principal in policy: \"AWS\":\"{entry}\"")
    return problems


def validate_policy_document(text: str | bytes | Mapping[str, Any],
                             kind: Literal["identity", "trust", "session"] = "identity",
                             max_size: int | None = None) -> list[str]:
    """Every reason IAM would answer MalformedPolicyDocument for; [] when the document is fine.

    ``identity`` (managed/inline/boundary policies) and ``session`` need Resource and forbid
    Principal; ``trust`` (role trust policies) needs Principal, forbids Resource and only takes
    sts actions. ``max_size`` counts characters without white space, as IAM does.
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            return ["Syntax errors in policy."]
    if isinstance(text, str):
        if max_size is not None and len(re.sub(r"\s", "", text)) > max_size:
            return [f"Cannot exceed quota for PolicySize: {max_size}"]
        try:
            document = parse_document(text)
        except (ValueError, RecursionError):
            return ["Syntax errors in policy."]
    else:
        document = text
    if not isinstance(document, dict):
        return ["Syntax errors in policy."]
    problems: list[str] = []
    for name in document:
        if name not in ("Version", "Id", "Statement"):
            problems.append(f"Syntax errors in policy: unknown field {name}.")
    if "Version" in document and document["Version"] not in VERSIONS:
        problems.append("The policy failed legacy parsing: Version must be 2012-10-17 or "
                        "2008-10-17.")
    if "Statement" not in document:
        return problems + ["Syntax errors in policy: Statement is required."]
    raw = document["Statement"]
    statements = raw if isinstance(raw, list) else [raw]
    if not statements:
        problems.append("Syntax errors in policy: Statement is empty.")
    sids: set[str] = set()
    for statement in statements:
        if not isinstance(statement, dict):
            problems.append("Syntax errors in policy: each Statement must be an object.")
            continue
        problems.extend(_statement_problems(statement, kind, sids))
    return problems


def _string_list_problems(statement: dict[str, Any], name: str) -> list[str]:
    value = statement[name]
    items = value if isinstance(value, list) else [value]
    if not items:
        return [f"Syntax errors in policy: {name} is empty."]
    if not all(isinstance(item, str) for item in items):
        return [f"Syntax errors in policy: {name} values must be strings."]
    return []


def _statement_problems(statement: dict[str, Any], kind: str, sids: set[str]) -> list[str]:
    problems: list[str] = []
    for name in statement:
        if name not in _STATEMENT_FIELDS:
            problems.append(f"Syntax errors in policy: unknown field {name}.")
    sid = statement.get("Sid")
    if sid is not None:
        if not isinstance(sid, str) or not _SID.fullmatch(sid):
            problems.append("Statement IDs (SID) must be alpha-numeric. Check that your input "
                            "satisfies the regular expression [0-9A-Za-z]*")
        elif sid and sid in sids:
            problems.append("Statement IDs (SID) in a single policy must be unique.")
        elif sid:
            sids.add(sid)
    if statement.get("Effect") not in ("Allow", "Deny"):
        problems.append(f"Invalid effect: {statement.get('Effect')!r}. Effect must be Allow or Deny.")
    action_keys = [k for k in ("Action", "NotAction") if k in statement]
    if not action_keys:
        problems.append("Policy statement must contain actions.")
    elif len(action_keys) == 2:
        problems.append("Syntax errors in policy: Action and NotAction cannot both be present.")
    for name in action_keys:
        listed = _string_list_problems(statement, name)
        problems.extend(listed)
        if listed:
            continue
        items = statement[name] if isinstance(statement[name], list) else [statement[name]]
        for action in items:
            if action != "*" and not _ACTION.fullmatch(action):
                problems.append("Actions/Conditions must be prefaced by a vendor, e.g., iam, "
                                f"sdb, ec2, etc. ({action!r})")
            elif kind == "trust" and not action.lower().startswith("sts:"):
                problems.append("AssumeRole policy may only specify STS AssumeRole actions.")
    resource_keys = [k for k in ("Resource", "NotResource") if k in statement]
    if kind == "trust":
        for name in resource_keys:
            problems.append(f"Has prohibited field {name}.")
    elif not resource_keys:
        problems.append("Policy statement must contain resources.")
    elif len(resource_keys) == 2:
        problems.append("Syntax errors in policy: Resource and NotResource cannot both be present.")
    if kind != "trust":
        for name in resource_keys:
            listed = _string_list_problems(statement, name)
            problems.extend(listed)
            if listed:
                continue
            items = statement[name] if isinstance(statement[name], list) else [statement[name]]
            for resource in items:
                if resource != "*" and not (resource.startswith("arn:")
                                            and resource.count(":") >= 5):
                    problems.append(f"Resource {resource} must be in ARN format or \"*\".")
    principal_keys = [k for k in ("Principal", "NotPrincipal") if k in statement]
    if kind == "trust":
        if not principal_keys:
            problems.append("Missing required field Principal.")
        elif len(principal_keys) == 2:
            problems.append("Syntax errors in policy: Principal and NotPrincipal cannot both "
                            "be present.")
        for name in principal_keys:
            problems.extend(_principal_problems(statement[name]))
        if "NotPrincipal" in principal_keys:  # AWS: not in trust policies, never with Allow
            problems.append("Invalid principal in policy: NotPrincipal cannot be used in a "
                            "role trust policy.")
    elif principal_keys:
        problems.append("Policy document should not specify a principal.")
    block = statement.get("Condition")
    if block is not None:
        if not isinstance(block, dict):
            problems.append("Syntax errors in policy: Condition must be an object.")
        else:
            for operator, keys in block.items():
                if not isinstance(keys, dict):
                    problems.append(f"Syntax errors in policy: Condition {operator} must map "
                                    "keys to values.")
                    continue
                for key, values in keys.items():
                    problems.extend(_value_problems(operator, key, values))
    return problems
