"""OIDC ID tokens for AssumeRoleWithWebIdentity: parsing, and verification against local keys.

Verification keys come only from what was configured locally — the JWKS stored on the
account's OIDC provider document (``Identities.set_oidc_jwks``) or the JWKS the server was
given per issuer — never from the network. Supported signatures: RS256/384/512 and
ES256/384/512; ``alg: none`` and HMAC algorithms are refused.

Checks, in order: the token is a JWS compact serialization with JSON header and claims; an
OIDC provider exists in the role's account for ``iss``; a key in its JWKS matches ``kid``
(and ``kty``/``alg``); the signature verifies; ``exp`` is in the future (ExpiredToken);
``nbf``/``iat`` are not in the future beyond a small leeway; ``aud`` names one of the
provider's client ids; ``sub`` is present.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from searchtrail.auth.principals import Principal, web_identity_user
from searchtrail.protocol.errors import ServiceError

LEEWAY_SECONDS = 300  # clock skew tolerated on nbf/iat
NOT_A_JWT = ("The ID Token provided is not a valid JWT. (You may see this error if you sent "
             "an Access Token)")
NO_KEY = ("Couldn't retrieve verification key from your identity provider, please reference "
          "AssumeRoleWithWebIdentity documentation for requirements")
ROLE_ARN = re.compile(r"^arn:aws:iam::(\d{12}):role(/(?:[\x21-\x7e]*/)?)([\w+=,.@-]+)$")

_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVES = {"P-256": (ec.SECP256R1, 32), "P-384": (ec.SECP384R1, 48), "P-521": (ec.SECP521R1, 66)}


def invalid_token(message: str) -> ServiceError:
    return ServiceError("InvalidIdentityToken", message, status=400)


@dataclass(frozen=True)
class Token:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def issuer(self) -> str:
        return str(self.claims.get("iss") or "")

    @property
    def audiences(self) -> list[str]:
        aud = self.claims.get("aud")
        if isinstance(aud, str):
            return [aud]
        if isinstance(aud, list):
            return [item for item in aud if isinstance(item, str)]
        return []

    @property
    def subject(self) -> str:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) else ""


def _b64url(part: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", part):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def parse(token: str) -> Token:
    """Split and decode a JWT without checking anything (InvalidIdentityToken if malformed)."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise invalid_token(NOT_A_JWT)
    try:
        header = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except (ValueError, RecursionError, binascii.Error, UnicodeDecodeError):
        raise invalid_token(NOT_A_JWT) from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise invalid_token(NOT_A_JWT)
    return Token(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def issuer_path(issuer: str) -> str:
    """``https://host/path/`` → ``host/path`` (how IAM names OIDC providers)."""
    path = issuer.strip()
    if path.lower().startswith("https://"):
        path = path[len("https://"):]
    return path.rstrip("/")


def provider_arn(account_id: str, issuer: str) -> str:
    return f"arn:aws:iam::{account_id}:oidc-provider/{issuer_path(issuer)}"


def _int(data: str) -> int:
    return int.from_bytes(_b64url(data), "big")


def public_key(jwk: Mapping[str, Any]) -> Any:
    """An RSA or EC public key from its JWK (ValueError if unusable)."""
    kty = jwk.get("kty")
    if kty == "RSA":
        return rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
    if kty == "EC":
        curve, _ = _CURVES[jwk["crv"]]
        return ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]), curve()).public_key()
    raise ValueError(f"unsupported kty {kty!r}")


def _candidate_keys(token: Token, jwks: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    keys = [key for key in (jwks or {}).get("keys", ()) if isinstance(key, Mapping)]
    alg = token.header.get("alg", "")
    kty = "RSA" if alg.startswith("RS") else "EC" if alg.startswith("ES") else None
    kid = token.header.get("kid")
    return [key for key in keys
            if key.get("kty") == kty
            and key.get("use", "sig") == "sig"
            and key.get("alg", alg) == alg
            and (kid is None or key.get("kid") == kid)]


def _signature_valid(token: Token, jwk: Mapping[str, Any]) -> bool:
    alg = token.header["alg"]
    try:
        key = public_key(jwk)
        digest = _HASHES[alg[2:]]()
        if alg.startswith("RS"):
            key.verify(token.signature, token.signing_input, padding.PKCS1v15(), digest)
            return True
        _, size = _CURVES[jwk["crv"]]
        if len(token.signature) != 2 * size:
            return False
        r = int.from_bytes(token.signature[:size], "big")
        s = int.from_bytes(token.signature[size:], "big")
        key.verify(encode_dss_signature(r, s), token.signing_input, ec.ECDSA(digest))
        return True
    except (InvalidSignature, ValueError, KeyError, TypeError, binascii.Error):
        return False


def verify(token: Token, jwks: Mapping[str, Any] | None, *, client_ids: list[str],
           now: datetime) -> None:
    """Check signature, times, audience and subject; raise STS's errors, else return."""
    alg = token.header.get("alg")
    if not isinstance(alg, str) or alg[:2] not in ("RS", "ES") or alg[2:] not in _HASHES:
        raise invalid_token(f"Unsupported token signing algorithm {alg!r}: use RS256/384/512 "
                            "or ES256/384/512.")
    candidates = _candidate_keys(token, jwks)
    if not candidates:
        raise invalid_token(NO_KEY)
    if not any(_signature_valid(token, key) for key in candidates):
        raise invalid_token("The web identity token's signature is invalid.")
    moment = int(now.timestamp())
    exp = token.claims.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise invalid_token("The web identity token has no valid 'exp' claim.")
    if moment >= exp:
        raise ServiceError("ExpiredTokenException",
                           f"Token expired: current date/time {moment} must be before the "
                           f"expiration date/time {int(exp)}", status=400)
    for claim in ("nbf", "iat"):
        value = token.claims.get(claim)
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and value > moment + LEEWAY_SECONDS:
            raise invalid_token(f"The web identity token is not valid yet ('{claim}' is in "
                                "the future).")
    if not set(token.audiences) & set(client_ids):  # a provider without client ids takes none
        raise invalid_token("Incorrect token audience")
    if not token.subject:
        raise invalid_token("The web identity token has no 'sub' claim.")


def caller(role_arn: str, web_identity_token: str) -> Principal:
    """The WebIdentityUser an (unsigned) AssumeRoleWithWebIdentity request is recorded as.

    Built from the token's *unverified* claims, for the CloudTrail record only (the handler
    verifies the token). ``account_id`` is the role's account: the call is recorded there.
    Use it in the gateway before the unit of work, where a signed call gets its principal
    from SigV4.
    """
    match = ROLE_ARN.match(role_arn or "")
    account_id = match.group(1) if match else ""
    try:
        token = parse(web_identity_token or "")
    except ServiceError:
        return web_identity_user(account_id=account_id, identity_provider="", audience="",
                                 subject="")
    provider = provider_arn(account_id, token.issuer) if account_id and token.issuer \
        else issuer_path(token.issuer)
    audience = token.audiences[0] if token.audiences else ""
    return web_identity_user(account_id=account_id, identity_provider=provider,
                             audience=audience, subject=token.subject)
