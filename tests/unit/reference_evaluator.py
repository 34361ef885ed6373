"""An independent, deliberately simple IAM policy evaluator used as the test oracle.

Written from AWS's "Policy evaluation logic" and "IAM JSON policy elements" documentation, with
the project's pinned choices for the cases AWS leaves open (see the docstring of
searchtrail.auth.policy). It shares no code with searchtrail.auth.policy: no regexes for
matching (a dynamic-programming glob), no compilation, no caching -- everything is re-read from
the raw document on every call. Slow is fine.

Documented rules implemented here:

1. Root in its own account may do anything.
2. An explicit Deny in any applicable policy wins (identity, then boundary, then session for
   the reported policy type).
3. Otherwise an identity-based Allow is required; with a permissions boundary the boundary must
   also allow; with session policies one of them must also allow.
4. A resource in another account needs a resource-based policy (none exist here): deny.
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import datetime, timedelta, timezone
from fractions import Fraction

UNKNOWN = "unknown"  # a condition that cannot be evaluated

# ------------------------------------------------------------------ glob (dynamic programming)


def glob(pattern, text):
    """``pattern``: list of (char, wildcard-capable). ``*`` any run, ``?`` one character."""
    rows = len(pattern)
    cols = len(text)
    table = [[False] * (cols + 1) for _ in range(rows + 1)]
    table[0][0] = True
    for i in range(1, rows + 1):
        char, wild = pattern[i - 1]
        star = wild and char == "*"
        one = wild and char == "?"
        if star:
            table[i][0] = table[i - 1][0]
        for j in range(1, cols + 1):
            if star:
                table[i][j] = table[i - 1][j] or table[i][j - 1]
            elif one:
                table[i][j] = table[i - 1][j - 1]
            else:
                table[i][j] = table[i - 1][j - 1] and text[j - 1] == char
    return table[rows][cols]


def plain(text):
    return [(c, True) for c in text]


def literal(text):
    return [(c, False) for c in text]


def arn_glob(pattern, text):
    """Six colon-separated parts compared one by one; the last may hold further colons."""
    parts = [[]]
    for char, wild in pattern:
        if char == ":" and len(parts) < 6:
            parts.append([])
        else:
            parts[-1].append((char, wild))
    values = text.split(":", 5)
    if len(parts) != 6 or len(values) != 6:
        return False
    for part, value in zip(parts, values):
        if not glob(part, value):
            return False
    return True


# ------------------------------------------------------------------ context


def normalise_context(context):
    """key (lowercase) -> (list of values, multivalued?); missing/None/empty lists left out."""
    out = {}
    for key, value in context.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple, set, frozenset)):
            values = [v for v in value if v is not None]
            if len(values) > 0:
                out[key.lower()] = (values, True)
        else:
            out[key.lower()] = ([value], False)
    return out


def text_of(value):
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (value.year, value.month, value.day,
                                                   value.hour, value.minute, value.second)
    return None


# ------------------------------------------------------------------ policy variables


def is_variable_key(key):
    return key != "" and "'" not in key and "$" not in key and "{" not in key


def default_of(rest):
    """``'text'`` with optional spaces around -> text; anything else -> None."""
    stripped = rest.strip()
    if len(stripped) >= 2 and stripped[0] == "'" and stripped[-1] == "'" \
            and "'" not in stripped[1:-1]:
        # the spaces inside the quotes are kept, outside ones are not
        return stripped[1:-1]
    return None


def expand(text, ctx, variables_on):
    """The text as (char, wildcard-capable) pairs after substituting variables; None if a
    variable has no value."""
    if not variables_on:
        return plain(text)
    out = []
    i = 0
    while i < len(text):
        if text.startswith("${", i):
            close = text.find("}", i + 2)
            if close < 0:
                out.extend(plain(text[i:]))
                break
            inner = text[i + 2:close]
            if inner in ("*", "?", "$"):
                out.extend(literal(inner))
                i = close + 1
                continue
            if "," in inner:
                key_text, rest = inner.split(",", 1)
                default = default_of(rest)
                ok = default is not None
            else:
                key_text, default, ok = inner, None, True
            key = key_text.strip()
            if ok and is_variable_key(key):
                entry = ctx.get(key.lower())
                value = None
                if entry is not None and not entry[1]:
                    value = text_of(entry[0][0])
                if value is None:
                    value = default
                if value is None:
                    return None
                out.extend(literal(value))
            else:
                out.extend(plain(text[i:close + 1]))
            i = close + 1
        else:
            out.append((text[i], True))
            i += 1
    return out


# ------------------------------------------------------------------ value readers


def is_number_text(text):
    return re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", text) is not None


def number_of(value):
    if value is True or value is False:
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(repr(value))
    if isinstance(value, str) and is_number_text(value):
        return Fraction(value)
    return None


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def date_of(value):
    if value is True or value is False:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    seconds = number_of(value)
    if seconds is not None:
        try:
            return EPOCH + timedelta(seconds=float(seconds))
        except OverflowError:
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)
    return None


def bool_of(value):
    if value is True or value is False:
        return value
    if isinstance(value, str):
        if value.lower() == "true":
            return True
        if value.lower() == "false":
            return False
    return None


def address_of(value):
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def network_of(value):
    """(version, network integer, prefix length) computed by hand; None when unreadable."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if "/" in text:
        address_text, prefix_text = text.split("/", 1)
    else:
        address_text, prefix_text = text, None
    address = address_of(address_text)
    if address is None:
        return None
    bits = 32 if address.version == 4 else 128
    if prefix_text is None:
        prefix = bits
    elif prefix_text.isdigit() and prefix_text.isascii():
        prefix = int(prefix_text)
        if prefix > bits:
            return None
    else:
        return None
    return (address.version, int(address) >> (bits - prefix), prefix)


def in_network(address, network):
    version, head, prefix = network
    if address.version != version:
        return False
    bits = 32 if version == 4 else 128
    return (int(address) >> (bits - prefix)) == head


# ------------------------------------------------------------------ conditions

STRING_OPS = {"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase",
              "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike"}
NUMERIC_OPS = {"NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
               "NumericGreaterThan", "NumericGreaterThanEquals"}
DATE_OPS = {"DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals",
            "DateGreaterThan", "DateGreaterThanEquals"}
ARN_OPS = {"ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"}
IP_OPS = {"IpAddress", "NotIpAddress"}
NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "NumericNotEquals",
           "DateNotEquals", "ArnNotEquals", "ArnNotLike", "NotIpAddress"}
ALL_BASES = STRING_OPS | NUMERIC_OPS | DATE_OPS | ARN_OPS | IP_OPS | {"Bool", "BinaryEquals"}


def compare_ordered(base, request, policy):
    """request <op> policy for Numeric*/Date* (NotEquals handled as negated Equals)."""
    if base.endswith("NotEquals") or base.endswith("Equals") and not base.endswith("ThanEquals"):
        return request == policy
    if base.endswith("LessThanEquals"):
        return request <= policy
    if base.endswith("LessThan"):
        return request < policy
    if base.endswith("GreaterThanEquals"):
        return request >= policy
    if base.endswith("GreaterThan"):
        return request > policy
    raise AssertionError(base)


def policy_value_readable(base, value):
    if base in STRING_OPS or base in ARN_OPS:
        return not isinstance(value, datetime)
    if base in NUMERIC_OPS:
        return number_of(value) is not None
    if base in DATE_OPS:
        return date_of(value) is not None
    if base == "Bool":
        return bool_of(value) is not None
    if base in IP_OPS:
        return network_of(value) is not None
    return False  # BinaryEquals is not exercised by the generator


def one_value_matches(base, raw_request, policy_value, ctx, variables_on):
    """Does one request value match one policy value (positive sense of the operator)?"""
    if base in STRING_OPS:
        request = text_of(raw_request)
        if request is None:
            return False
        pattern = expand(text_of(policy_value), ctx, variables_on)
        if pattern is None:
            return False
        if base in ("StringLike", "StringNotLike"):
            return glob(pattern, request)
        wanted = "".join(c for c, _ in pattern)
        if base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
            return wanted.lower() == request.lower()
        return wanted == request
    if base in ARN_OPS:
        request = text_of(raw_request)
        if request is None:
            return False
        pattern = expand(text_of(policy_value), ctx, variables_on)
        if pattern is None:
            return False
        return arn_glob(pattern, request)
    if base in NUMERIC_OPS:
        request = number_of(raw_request)
        return request is not None and compare_ordered(base, request, number_of(policy_value))
    if base in DATE_OPS:
        request = date_of(raw_request)
        return request is not None and compare_ordered(base, request, date_of(policy_value))
    if base == "Bool":
        request = bool_of(raw_request)
        return request is not None and request == bool_of(policy_value)
    if base in IP_OPS:
        request = address_of(raw_request)
        return request is not None and in_network(request, network_of(policy_value))
    raise AssertionError(base)


def condition(operator, key, values, ctx, variables_on):
    """True, False or UNKNOWN for one (operator, key, values) entry."""
    if not isinstance(values, list):
        values = [values]
    entry = ctx.get(key.lower())
    if operator == "Null":
        wanted = [bool_of(v) for v in values]
        if None in wanted:
            return UNKNOWN
        missing = entry is None
        return any(w == missing for w in wanted)
    qualifier = None
    base = operator
    for prefix in ("ForAllValues:", "ForAnyValue:"):
        if base.startswith(prefix):
            qualifier = prefix
            base = base[len(prefix):]
    if_exists = False
    if base.endswith("IfExists") and len(base) > len("IfExists"):
        if_exists = True
        base = base[: -len("IfExists")]
    if base not in ALL_BASES:
        return UNKNOWN
    for value in values:
        if not policy_value_readable(base, value):
            return UNKNOWN
    negated = base in NEGATED
    if entry is None:
        if qualifier == "ForAllValues:":
            return True
        if qualifier == "ForAnyValue:":
            return False
        if if_exists:
            return True
        return negated
    request_values = entry[0]
    verdicts = []
    for raw in request_values:
        hit = False
        for policy_value in values:
            if one_value_matches(base, raw, policy_value, ctx, variables_on):
                hit = True
        verdicts.append(hit)
    if qualifier == "ForAllValues:":
        return all((not v) if negated else v for v in verdicts)
    if qualifier == "ForAnyValue:":
        return any((not v) if negated else v for v in verdicts)
    if negated:
        return not any(verdicts)
    return any(verdicts)


# ------------------------------------------------------------------ statements and policies


def listify(value):
    return value if isinstance(value, list) else [value]


def statement_applies(statement, action, resource, ctx, variables_on):
    allow = statement["Effect"] == "Allow"
    if "Action" in statement:
        action_ok = any(glob(plain(p.lower()), action.lower()) for p in listify(statement["Action"]))
    else:
        action_ok = not any(glob(plain(p.lower()), action.lower())
                            for p in listify(statement["NotAction"]))
    if not action_ok:
        return False
    if "Resource" in statement or "NotResource" in statement:
        name = "Resource" if "Resource" in statement else "NotResource"
        hit = False
        for pattern in listify(statement[name]):
            expanded = expand(pattern, ctx, variables_on)
            if expanded is not None and glob(expanded, resource):
                hit = True
        if (name == "Resource") != hit:
            return False
    elif allow:
        return False
    results = []
    for operator, block in statement.get("Condition", {}).items():
        for key, values in block.items():
            results.append(condition(operator, key, values, ctx, variables_on))
    if allow:
        return all(r is True for r in results)
    return all(r is not False for r in results)


def load(document):
    if isinstance(document, (str, bytes)):
        document = json.loads(document)
    return document


def policy_has(document, effect, action, resource, ctx):
    document = load(document)
    variables_on = document.get("Version") == "2012-10-17"
    for statement in listify(document["Statement"]):
        if statement["Effect"] == effect and statement_applies(statement, action, resource, ctx,
                                                               variables_on):
            return True
    return False


def account_of(resource):
    parts = resource.split(":")
    if len(parts) >= 6 and parts[0] == "arn":
        return parts[4]
    return ""


def reference_evaluate(identity, session, boundary, is_root, action, resource,
                       principal_account, resource_account, context):
    """(allowed, reason, denied_by) for one request."""
    ctx = normalise_context(context)
    owner = resource_account or account_of(resource) or principal_account
    same = owner == principal_account
    if is_root:
        if same:
            return (True, "root", None)
        return (False, "no_resource_allow", "resource-based policy")
    kinds = [("identity-based policy", list(identity))]
    if boundary is not None:
        kinds.append(("permissions boundary", [boundary]))
    if session is not None:
        kinds.append(("session policy", list(session)))
    for label, documents in kinds:
        for document in documents:
            if policy_has(document, "Deny", action, resource, ctx):
                return (False, "explicit_deny", label)
    if not any(policy_has(d, "Allow", action, resource, ctx) for d in identity):
        return (False, "no_identity_allow", "identity-based policy")
    if boundary is not None and not policy_has(boundary, "Allow", action, resource, ctx):
        return (False, "no_boundary_allow", "permissions boundary")
    if session is not None and not any(policy_has(d, "Allow", action, resource, ctx)
                                       for d in session):
        return (False, "no_session_allow", "session policy")
    if not same:
        return (False, "no_resource_allow", "resource-based policy")
    return (True, "allowed", None)
