"""Digest signing keys: storage, rotation, ListPublicKeys ranges, signatures."""

from __future__ import annotations

import base64
import copy
import hashlib
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from searchtrail.audit.signing import KIND, SigningKey, SigningKeys, SpareKeyMaterial
from searchtrail.store.api import Conflict

T0 = datetime(2026, 11, 25, 9, 0, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


class MemoryRepo:
    """A ResourceRepository over a dict shared by every scope (account, region)."""

    def __init__(self, data: dict | None = None, scope: tuple[str, str] = ("", "")) -> None:
        self.data: dict[tuple[str, str, str, str], dict[str, Any]] = {} if data is None else data
        self.scope = scope

    def scoped(self, account_id: str, region: str) -> "MemoryRepo":
        return MemoryRepo(self.data, (account_id, region))

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        doc = self.data.get((*self.scope, kind, key))
        return copy.deepcopy(doc) if doc is not None else None

    def insert(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        if (*self.scope, kind, key) in self.data:
            raise Conflict(key)
        self.put(kind, key, doc)

    def put(self, kind: str, key: str, doc: dict[str, Any]) -> None:
        assert_json_types(doc)
        self.data[(*self.scope, kind, key)] = copy.deepcopy(doc)

    def delete(self, kind: str, key: str) -> bool:
        return self.data.pop((*self.scope, kind, key), None) is not None

    def list(self, kind: str, prefix: str = "") -> list[dict[str, Any]]:
        return [copy.deepcopy(doc) for (acct, region, k, key), doc in sorted(self.data.items())
                if (acct, region) == self.scope and k == kind and key.startswith(prefix)]

    def count(self, kind: str) -> int:
        return len(self.list(kind))


def assert_json_types(value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            assert_json_types(item)
    elif isinstance(value, list):
        for item in value:
            assert_json_types(item)
    else:
        assert value is None or isinstance(value, (str, int, float, bool)), type(value)


def make_keys(**kwargs: Any) -> tuple[SigningKeys, MemoryRepo]:
    repo = MemoryRepo()
    return SigningKeys(lambda account, region: repo.scoped(account, region), **kwargs), repo


def verify(key: SigningKey, data: bytes, signature_hex: str) -> None:
    public = serialization.load_der_public_key(key.public_der)
    public.verify(bytes.fromhex(signature_hex), data, padding.PKCS1v15(), hashes.SHA256())


def test_first_key_is_created_and_stored_as_json() -> None:
    keys, repo = make_keys()
    key = keys.current("111122223333", "us-east-1", T0)
    assert key.valid_from == T0
    assert key.valid_to == T0 + timedelta(days=30)
    assert len(key.fingerprint) == 32 and key.fingerprint == key.fingerprint.lower()
    assert key.fingerprint == hashlib.md5(key.public_der).hexdigest()
    assert key.public_b64.startswith("MIIBCgKCAQEA")  # PKCS#1 RSAPublicKey, 2048 bits
    assert base64.b64decode(key.public_b64) == key.public_der
    loaded = serialization.load_der_public_key(key.public_der)
    assert loaded.key_size == 2048
    assert loaded.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.PKCS1) == key.public_der

    doc = repo.scoped("111122223333", "us-east-1").get(KIND, key.fingerprint)
    assert doc is not None
    assert set(doc) == {"fingerprint", "publicKey", "privateKeyPem", "validFrom", "validTo"}
    assert doc["validFrom"] == int(T0.timestamp())
    assert doc["validTo"] == int((T0 + timedelta(days=30)).timestamp())
    assert doc["publicKey"] == key.public_b64
    assert doc["privateKeyPem"].startswith("-----BEGIN PRIVATE KEY-----")


def test_current_is_stable_inside_the_window_and_reloads_from_the_store() -> None:
    keys, repo = make_keys()
    first = keys.current("1", "us-east-1", T0)
    again = keys.current("1", "us-east-1", T0 + 28 * DAY)
    assert again == first
    assert repo.scoped("1", "us-east-1").count(KIND) == 1
    # a key read back from the store signs like the one that was created
    data = b"hello"
    assert again.sign(data) == first.sign(data)
    verify(again, data, again.sign(data))


def test_rotation_when_the_key_expires_keeps_old_keys_listable() -> None:
    keys, _ = make_keys(validity=timedelta(hours=2))
    first = keys.current("1", "us-east-1", T0)
    later = T0 + timedelta(hours=2, minutes=5)
    second = keys.current("1", "us-east-1", later)
    assert second.fingerprint != first.fingerprint
    assert second.valid_from == later and second.valid_to == later + timedelta(hours=2)
    assert [k.fingerprint for k in keys.all("1", "us-east-1")] == [first.fingerprint,
                                                                   second.fingerprint]
    assert keys.current("1", "us-east-1", later + timedelta(minutes=1)) == second
    # the key that covered an older instant is still the one for that instant
    assert keys.current("1", "us-east-1", T0 + timedelta(hours=1)) == first
    assert keys.get("1", "us-east-1", first.fingerprint) == first


def test_the_next_key_starts_before_the_current_one_ends() -> None:
    """AWS rotates with overlapping windows: a day before the end (a tenth of a short window)."""
    keys, _ = make_keys()
    first = keys.current("1", "us-east-1", T0)
    rotation = T0 + 29 * DAY + timedelta(seconds=1)
    second = keys.current("1", "us-east-1", rotation)
    assert second.fingerprint != first.fingerprint and second.valid_from == rotation
    assert second.valid_from < first.valid_to  # the windows overlap
    assert keys.current("1", "us-east-1", rotation + timedelta(hours=1)) == second
    listed = keys.public_keys("1", "us-east-1", T0 + 28 * DAY, T0 + 31 * DAY, rotation)
    assert [k.fingerprint for k in listed] == [first.fingerprint, second.fingerprint]


def test_public_keys_overlap_the_range() -> None:
    keys, _ = make_keys(validity=timedelta(hours=2))
    first = keys.current("1", "us-east-1", T0)
    second = keys.current("1", "us-east-1", T0 + timedelta(hours=3))
    now = T0 + timedelta(hours=3)
    both = keys.public_keys("1", "us-east-1", T0, T0 + timedelta(hours=4), now)
    assert [k.fingerprint for k in both] == [first.fingerprint, second.fingerprint]
    only_first = keys.public_keys("1", "us-east-1", T0 - DAY, T0 + timedelta(minutes=30), now)
    assert [k.fingerprint for k in only_first] == [first.fingerprint]
    only_second = keys.public_keys("1", "us-east-1", T0 + timedelta(hours=4),
                                   T0 + timedelta(hours=6), now)
    assert [k.fingerprint for k in only_second] == [second.fingerprint]


def test_public_keys_are_never_empty() -> None:
    keys, repo = make_keys()
    # nothing stored yet: a key is created
    listed = keys.public_keys("1", "eu-west-1", T0 - DAY, T0, T0)
    assert len(listed) == 1
    assert repo.scoped("1", "eu-west-1").count(KIND) == 1
    # a range long before the first key, and one far after: the closest key answers
    assert keys.public_keys("1", "eu-west-1", T0 - 400 * DAY, T0 - 300 * DAY, T0) == listed
    assert keys.public_keys("1", "eu-west-1", T0 + 300 * DAY, T0 + 400 * DAY, T0) == listed


def test_keys_are_scoped_by_account_and_region() -> None:
    keys, _ = make_keys()
    a = keys.current("1", "us-east-1", T0)
    b = keys.current("1", "us-west-2", T0)
    c = keys.current("2", "us-east-1", T0)
    assert len({a.fingerprint, b.fingerprint, c.fingerprint}) == 3
    assert keys.all("1", "us-east-1") == [a]


def test_signature_is_pkcs1v15_sha256_hex_and_deterministic() -> None:
    keys, _ = make_keys()
    key = keys.current("1", "us-east-1", T0)
    signature = key.sign(b"digest string")
    assert signature == signature.lower() and len(signature) == 512
    assert key.sign(b"digest string") == signature
    verify(key, b"digest string", signature)
    with pytest.raises(InvalidSignature):
        verify(key, b"digest strinG", signature)
    # python-rsa (what the AWS CLI uses) accepts it too
    import rsa

    assert rsa.verify(b"digest string", bytes.fromhex(signature),
                      rsa.PublicKey.load_pkcs1(key.public_der, format="DER")) == "SHA-256"


def test_private_key_stays_out_of_repr() -> None:
    keys, repo = make_keys()
    key = keys.current("1", "us-east-1", T0)
    pem = repo.scoped("1", "us-east-1").get(KIND, key.fingerprint)["privateKeyPem"]
    body = pem.splitlines()[1]
    for text in (repr(key), str(key), repr(keys.all("1", "us-east-1"))):
        assert "PRIVATE" not in text and body not in text
        assert key.public_b64 not in text
    assert key.fingerprint in repr(key)


def test_naive_datetimes_and_bad_validity_are_refused() -> None:
    keys, _ = make_keys()
    with pytest.raises(ValueError):
        keys.current("1", "us-east-1", datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        SigningKeys(lambda a, r: MemoryRepo(), validity=timedelta(0))


def test_key_size_is_configurable() -> None:
    keys, _ = make_keys(key_size=3072)
    key = keys.current("1", "us-east-1", T0)
    assert serialization.load_der_public_key(key.public_der).key_size == 3072
    verify(key, b"x", key.sign(b"x"))


def test_prepare_makes_material_only_when_a_key_is_due_and_current_uses_it() -> None:
    """The delivery worker makes a due key's RSA material before its writer unit runs."""
    keys, repo = make_keys(validity=timedelta(hours=2))
    material = keys.prepare("1", "us-east-1", T0)
    assert material is not None and material.key_size == 2048
    assert repo.scoped("1", "us-east-1").count(KIND) == 0  # preparing stores nothing
    first = keys.current("1", "us-east-1", T0, prepared=material)
    assert first.public_der == public_der_of(material)
    verify(first, b"x", first.sign(b"x"))
    # inside the window nothing is due, and material handed in anyway is not used
    assert keys.prepare("1", "us-east-1", T0 + timedelta(minutes=30)) is None
    spare = keys.prepare("1", "us-east-1", T0 + timedelta(hours=3))
    assert keys.current("1", "us-east-1", T0 + timedelta(minutes=30), prepared=spare) == first
    # past the rotation point it is due again
    assert spare is not None
    second = keys.current("1", "us-east-1", T0 + timedelta(hours=3), prepared=spare)
    assert second.fingerprint != first.fingerprint
    assert second.public_der == public_der_of(spare)


def public_der_of(private: Any) -> bytes:
    return private.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.PKCS1)


def wait_until_ready(spare: SpareKeyMaterial) -> None:
    deadline = time.monotonic() + 30
    while not spare.ready:
        assert time.monotonic() < deadline, "no spare RSA material within 30 s"
        time.sleep(0.01)  # polling the background thread, bounded by the deadline


def test_spare_material_is_made_ahead_and_replaced_after_each_take() -> None:
    """The server's keys come from material made on a thread, so a key created inside a
    unit of work (on the event loop) takes no RSA generation there."""
    spare = SpareKeyMaterial()
    spare.start()
    wait_until_ready(spare)
    made_ahead = spare._spare
    assert made_ahead is not None and made_ahead.key_size == 2048
    assert spare.take() is made_ahead
    wait_until_ready(spare)  # the next spare is made at once
    assert spare._spare is not made_ahead
    other = SpareKeyMaterial()  # taken before anything was made: fresh material, still valid
    assert other.take().key_size == 2048


def test_a_key_created_by_list_public_keys_uses_the_given_material() -> None:
    spare = SpareKeyMaterial()
    spare.start()
    wait_until_ready(spare)
    expected = public_der_of(spare._spare)
    keys, repo = make_keys(material=spare.take)
    [first] = keys.public_keys("1", "us-east-1", T0, T0 + timedelta(hours=1), T0)
    assert first.public_der == expected
    assert repo.scoped("1", "us-east-1").count(KIND) == 1
    verify(first, b"x", first.sign(b"x"))


def test_region_public_keys_add_the_other_accounts_keys_there() -> None:
    """ListPublicKeys: an organization trail signs each member's digests with that member's
    key, so the management account's answer carries the members' keys in the Region too (as
    on AWS, where one Region's keys sign every account's digests), and no other Region's."""
    keys, _ = make_keys()
    mine = keys.current("1", "us-east-1", T0)
    member = keys.current("2", "us-east-1", T0)
    keys.current("2", "eu-west-1", T0)
    keys.current("3", "us-east-1", T0 - 60 * DAY)  # expired long before the range
    listed = keys.region_public_keys(["1", "2", "3"], "1", "us-east-1", T0, T0 + DAY, T0)
    assert sorted(k.fingerprint for k in listed) == sorted([mine.fingerprint,
                                                            member.fingerprint])
    assert [k.fingerprint for k in keys.region_public_keys(["1"], "1", "us-east-1", T0,
                                                           T0 + DAY, T0)] == [mine.fingerprint]
