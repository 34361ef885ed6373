"""Policy document validation for IAM and STS: the first problem
``auth.policy.validate_policy_document`` finds is answered as MalformedPolicyDocument (400).

``kind`` is one of ``identity`` (inline and managed policies), ``trust`` (a role's
AssumeRolePolicyDocument) and ``session`` (STS session policies).
"""

from __future__ import annotations

from typing import Any

from searchtrail.auth import policy

from .common import malformed

IDENTITY, TRUST, SESSION = "identity", "trust", "session"


def validate(text: str, kind: str) -> dict[str, Any]:
    """The parsed document, or MalformedPolicyDocument saying what is wrong."""
    problems = policy.validate_policy_document(text, kind)  # type: ignore[arg-type]
    if problems:
        raise malformed(problems[0])
    document: dict[str, Any] = policy.parse_document(text)
    return document
