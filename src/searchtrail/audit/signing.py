"""Per-region RSA keys that sign CloudTrail digest files, and what ListPublicKeys returns.

Keys are stored as documents (kind ``cloudtrail.signing-key``, key = fingerprint) in the
account+region scope::

    {"fingerprint": "<32 hex>", "publicKey": "<base64 DER PKCS#1 RSAPublicKey>",
     "privateKeyPem": "<PKCS#8 PEM>", "validFrom": <epoch s>, "validTo": <epoch s>}

The public key is PKCS#1 ``RSAPublicKey`` DER (base64 ``MIIBCgKC...`` for 2048 bits), which
is what ``aws cloudtrail validate-logs`` loads; the fingerprint is the MD5 hex of that DER
(AWS does not document its derivation; the CLI only compares it as a string).

A key signs digests whose end time falls in ``[valid_from, valid_to)``. When the newest key
has less than ``ROTATION_OVERLAP`` (or a tenth of its window) left, :meth:`SigningKeys.current`
creates the next one with its window starting at ``now``, so consecutive keys' windows overlap
(as AWS's do); old keys stay listed so older digests keep validating.

Private key material never appears in a repr, an exception or a log line.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from searchtrail.store.api import Conflict, ResourceRepository

KIND = "cloudtrail.signing-key"
SIGNATURE_ALGORITHM = "SHA256withRSA"
DEFAULT_VALIDITY = timedelta(days=30)
ROTATION_OVERLAP = timedelta(days=1)  # the next key starts this long before the current ends


def _epoch(value: datetime) -> int:
    _require_aware(value)
    return int(value.timestamp())


def _from_epoch(value: int) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)


def _require_aware(value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")


def _whole_second(value: datetime) -> datetime:
    """UTC, whole seconds: key windows are stored as epoch seconds."""
    _require_aware(value)
    return value.astimezone(timezone.utc).replace(microsecond=0)


def fingerprint_of(public_der: bytes) -> str:
    """MD5 hex of the DER PKCS#1 public key: 32 lower-case hex characters."""
    return hashlib.md5(public_der, usedforsecurity=False).hexdigest()


class _PrivateKey:
    """Holds the PEM and loads it on first use. Its repr never shows the material."""

    __slots__ = ("_pem", "_loaded")

    def __init__(self, pem: bytes) -> None:
        self._pem = pem
        self._loaded: rsa.RSAPrivateKey | None = None

    def key(self) -> rsa.RSAPrivateKey:
        if self._loaded is None:
            loaded = serialization.load_pem_private_key(self._pem, password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ValueError("stored signing key is not an RSA key")
            self._loaded = loaded
        return self._loaded

    def __repr__(self) -> str:
        return "<private key>"


@dataclass(frozen=True)
class SigningKey:
    fingerprint: str
    public_der: bytes = field(repr=False)
    valid_from: datetime
    valid_to: datetime
    _private: _PrivateKey | None = field(default=None, repr=False, compare=False)

    @property
    def public_b64(self) -> str:
        """The ListPublicKeys ``Value`` as it travels on the wire (base64 once)."""
        return base64.b64encode(self.public_der).decode("ascii")

    def covers(self, at: datetime) -> bool:
        return self.valid_from <= at < self.valid_to

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.valid_from <= end and self.valid_to >= start

    def sign(self, data: bytes) -> str:
        """Lower-case hex RSA PKCS#1 v1.5 signature over SHA-256(data) (Java SHA256withRSA)."""
        if self._private is None:
            raise ValueError(f"no private key for fingerprint {self.fingerprint}")
        signature = self._private.key().sign(data, padding.PKCS1v15(), hashes.SHA256())
        return signature.hex()

    def public_key(self) -> rsa.RSAPublicKey:
        loaded = serialization.load_der_public_key(self.public_der)
        assert isinstance(loaded, rsa.RSAPublicKey)
        return loaded


def new_private_key(key_size: int = 2048) -> rsa.RSAPrivateKey:
    """Fresh RSA material: tens to hundreds of milliseconds, so made outside the writer."""
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


class SpareKeyMaterial:
    """RSA material made ahead on a background thread (OpenSSL releases the GIL while it
    searches for primes), so a key created inside a unit of work, which runs on the event
    loop, costs no generation time there."""

    def __init__(self, key_size: int = 2048) -> None:
        self._key_size = key_size
        self._lock = threading.Lock()
        self._spare: rsa.RSAPrivateKey | None = None
        self._making = False

    def start(self) -> None:
        """Begin making the first spare."""
        self._refill()

    @property
    def ready(self) -> bool:
        return self._spare is not None

    def take(self) -> rsa.RSAPrivateKey:
        """The spare if it is ready (then a new one is made), else fresh material here."""
        with self._lock:
            spare, self._spare = self._spare, None
        self._refill()
        return spare if spare is not None else new_private_key(self._key_size)

    def _refill(self) -> None:
        with self._lock:
            if self._spare is not None or self._making:
                return
            self._making = True
        threading.Thread(target=self._make, name="searchtrail-key-material", daemon=True).start()

    def _make(self) -> None:
        material = None
        try:
            material = new_private_key(self._key_size)
        finally:
            with self._lock:
                self._spare, self._making = material, False


def generate_key(valid_from: datetime, valid_to: datetime, *, key_size: int = 2048,
                 private: rsa.RSAPrivateKey | None = None) -> SigningKey:
    """A key (not stored) for the window, from ``private`` or fresh material."""
    if private is None:
        private = new_private_key(key_size)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.PKCS1)
    holder = _PrivateKey(pem)
    holder._loaded = private
    return SigningKey(fingerprint_of(der), der, valid_from, valid_to, holder)


def key_to_doc(key: SigningKey) -> dict[str, Any]:
    if key._private is None:
        raise ValueError("cannot store a key without its private half")
    return {
        "fingerprint": key.fingerprint,
        "publicKey": key.public_b64,
        "privateKeyPem": key._private._pem.decode("ascii"),
        "validFrom": _epoch(key.valid_from),
        "validTo": _epoch(key.valid_to),
    }


def key_from_doc(doc: dict[str, Any]) -> SigningKey:
    return SigningKey(
        fingerprint=doc["fingerprint"],
        public_der=base64.b64decode(doc["publicKey"]),
        valid_from=_from_epoch(doc["validFrom"]),
        valid_to=_from_epoch(doc["validTo"]),
        _private=_PrivateKey(doc["privateKeyPem"].encode("ascii")),
    )


class SigningKeys:
    """Key store over the resource repository; one key series per (account, region)."""

    def __init__(self, repo_for: Callable[[str, str], ResourceRepository], *,
                 validity: timedelta = DEFAULT_VALIDITY, key_size: int = 2048,
                 material: Callable[[], rsa.RSAPrivateKey] | None = None) -> None:
        if validity <= timedelta(0):
            raise ValueError("validity must be positive")
        self._repo_for = repo_for
        self._validity = validity
        # where a new key's RSA material comes from (SpareKeyMaterial.take in the server)
        self._material = material or (lambda: new_private_key(key_size))

    def all(self, account: str, region: str) -> list[SigningKey]:
        """Every stored key, oldest window first."""
        keys = [key_from_doc(doc) for doc in self._repo_for(account, region).list(KIND)]
        keys.sort(key=lambda k: (k.valid_from, k.fingerprint))
        return keys

    def get(self, account: str, region: str, fingerprint: str) -> SigningKey | None:
        doc = self._repo_for(account, region).get(KIND, fingerprint)
        return key_from_doc(doc) if doc else None

    def current(self, account: str, region: str, now: datetime, *,
                prepared: rsa.RSAPrivateKey | None = None) -> SigningKey:
        """The key that signs at ``now``: the covering key with the latest window start.

        Creates the first key, and a new one (window ``[now, now + validity)``) when no key
        covers ``now`` or the newest one ends within the overlap (rotation with
        overlapping windows). Concurrent creators may each add a key; both stay valid and
        listed, and later calls agree on one (the latest start, then the greatest
        fingerprint). A new key uses ``prepared`` material when given (see :meth:`prepare`)."""
        now = _whole_second(now)
        signer = self._signer(self.all(account, region), now)
        return signer if signer is not None else self._create(account, region, now, prepared)

    def prepare(self, account: str, region: str, now: datetime) -> rsa.RSAPrivateKey | None:
        """Material for the key :meth:`current` would create at ``now``, or None if it would
        create none: generated here, outside the writer's transaction, so the writer does
        not hold every API call's commit while RSA primes are found."""
        if self._signer(self.all(account, region), _whole_second(now)) is not None:
            return None
        return self._material()

    def _signer(self, keys: list[SigningKey], now: datetime) -> SigningKey | None:
        """The key that signs at ``now``, or None when a new one is due."""
        covering = [k for k in keys if k.covers(now)]
        if not covering:
            return None
        signer = max(covering, key=lambda k: (k.valid_from, k.fingerprint))
        overlap = min(ROTATION_OVERLAP, self._validity / 10)
        # only the newest key rotates: an older instant keeps the key that covered it
        if signer.valid_to - now > overlap or signer.valid_from < keys[-1].valid_from:
            return signer
        return None

    def public_keys(self, account: str, region: str, start: datetime, end: datetime,
                    now: datetime, create: bool = True) -> list[SigningKey]:
        """Keys whose validity overlaps ``[start, end]``, oldest first; never empty unless
        ``create`` is false.

        With no key at all, the first one is created (``current(now)``), or, without
        ``create``, none is returned: nothing was ever signed there. When keys exist but
        none overlaps the range (a window before the first key, or far in the future), the
        key closest to the range is returned, so ``validate-logs`` never aborts on an empty
        list; a digest signed by a key outside the list still fails as "public key not found".
        """
        for value in (start, end, now):
            _require_aware(value)
        keys = self.all(account, region)
        if not keys:
            if not create:
                return []
            keys = [self.current(account, region, now)]
        found = [k for k in keys if k.overlaps(start, end)]
        if found:
            return found

        def distance(k: SigningKey) -> timedelta:
            if k.valid_from > end:
                return k.valid_from - end
            return start - k.valid_to

        return [min(keys, key=lambda k: (distance(k), -k.valid_from.timestamp()))]

    def region_public_keys(self, accounts: Iterable[str], account: str, region: str,
                           start: datetime, end: datetime, now: datetime) -> list[SigningKey]:
        """What ListPublicKeys answers ``account``: its own keys (:meth:`public_keys`) and the
        other ``accounts``' keys there overlapping ``[start, end]``, oldest first. On AWS one
        Region's keys sign every account's digests; here an organization trail signs each
        member's digests with that member's key, so the management account needs them too."""
        keys = self.public_keys(account, region, start, end, now)
        keys += [key for other in accounts if other != account
                 for key in self.all(other, region) if key.overlaps(start, end)]
        return sorted(keys, key=lambda k: (k.valid_from, k.fingerprint))

    def _create(self, account: str, region: str, now: datetime,
                private: rsa.RSAPrivateKey | None = None) -> SigningKey:
        key = generate_key(now, now + self._validity, private=private or self._material())
        try:
            self._repo_for(account, region).insert(KIND, key.fingerprint, key_to_doc(key))
        except Conflict:  # pragma: no cover - a 128-bit fingerprint collision
            raise RuntimeError("signing key fingerprint collision") from None
        return key
