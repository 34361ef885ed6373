"""CredentialResolver: long-term and temporary keys, the cache and the change signal.

The resolver reads through its own read-only connection, as in the server; its clock is a
controlled monotonic value, so no test sleeps.
"""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from searchtrail.auth import sigv4
from searchtrail.auth.credentials import BYPASS_SECONDS, CACHE_SECONDS, CredentialResolver
from searchtrail.auth.identities import KIND_ACCESS_KEY, Identities, policies_for
from searchtrail.services.iam import IamProvider
from searchtrail.services.sts import StsProvider
from searchtrail.store.sqlite.connection import open_connection
from searchtrail.store.sqlite.resources import SqliteResources
from searchtrail.workers import FileSignal
from tests.unit.test_iam_provider import (
    ACCOUNT,
    ALLOW_ALL,
    OTHER,
    T0,
    Harness,
    create_accounts,
    trust,
)
from tests.unit.prepared import to_http


class Setup:
    def __init__(self, conn, db):
        self.conn = conn
        self.keys = create_accounts(conn, ACCOUNT, OTHER)
        self.ticks = [100.0]
        self.resolver = CredentialResolver(lambda: open_connection(db, read_only=True),
                                           clock=lambda: self.ticks[0])
        self.iam = Harness(conn, "iam", IamProvider(changed=self.resolver.forget))
        self.iam.principal = self.resolver.lookup(self.keys[ACCOUNT]).owner
        self.unsignalled = Harness(conn, "iam", IamProvider(), principal=self.iam.principal,
                                   clock=self.iam.clock)
        self.sts = Harness(conn, "sts", StsProvider(), clock=self.iam.clock)

    def tick(self, seconds: float) -> None:
        self.ticks[0] += seconds

    def user_key(self, name: str = "alice") -> str:
        self.iam("CreateUser", UserName=name)
        return self.iam("CreateAccessKey", UserName=name)["AccessKey"]["AccessKeyId"]


@pytest.fixture
def setup(conn, db) -> Setup:
    return Setup(conn, db)


# --- long-term keys ----------------------------------------------------------------------------


def test_root_and_user_keys_resolve_to_their_principals(setup):
    root = setup.resolver.lookup(setup.keys[ACCOUNT])
    assert (root.owner.kind, root.owner.account_id, root.session_token, root.expires_at) == (
        "Root", ACCOUNT, None, None)
    key_id = setup.user_key()
    user = setup.resolver.lookup(key_id)
    assert (user.owner.kind, user.owner.user_name, user.owner.arn) == (
        "IAMUser", "alice", f"arn:aws:iam::{ACCOUNT}:user/alice")
    assert len(user.secret_access_key) == 40
    assert user.secret_access_key not in repr(user)


def test_unknown_keys_are_not_found(setup):
    assert setup.resolver.lookup("AKIAUNKNOWNUNKNOWN00") is None


def test_inactive_keys_are_not_found(setup):
    key_id = setup.user_key()
    setup.iam("UpdateAccessKey", UserName="alice", AccessKeyId=key_id, Status="Inactive")
    assert setup.resolver.lookup(key_id) is None


def test_a_key_whose_user_is_gone_is_not_found(setup):
    key_id = setup.user_key()
    setup.conn.execute("DELETE FROM resources WHERE kind='iam-user'")
    setup.conn.commit()
    assert setup.resolver.lookup(key_id) is None


# --- cache and change signal -------------------------------------------------------------------


def test_lookups_are_cached_briefly(setup):
    key_id = setup.user_key()
    assert setup.resolver.lookup(key_id) is not None
    setup.unsignalled("UpdateAccessKey", UserName="alice", AccessKeyId=key_id, Status="Inactive")
    assert setup.resolver.lookup(key_id) is not None  # cached: no signal was given
    setup.tick(CACHE_SECONDS)
    assert setup.resolver.lookup(key_id) is None


def test_deactivating_a_key_takes_effect_on_the_next_call(setup):
    key_id = setup.user_key()
    assert setup.resolver.lookup(key_id) is not None  # cached now
    setup.iam("UpdateAccessKey", UserName="alice", AccessKeyId=key_id, Status="Inactive")
    assert setup.resolver.lookup(key_id) is None
    setup.iam("UpdateAccessKey", UserName="alice", AccessKeyId=key_id, Status="Active")
    assert setup.resolver.lookup(key_id) is not None
    setup.iam("DeleteAccessKey", UserName="alice", AccessKeyId=key_id)
    assert setup.resolver.lookup(key_id) is None


def test_a_forgotten_key_is_not_cached_until_the_bypass_window_ends(setup):
    key_id = setup.user_key()
    setup.resolver.lookup(key_id)
    setup.resolver.forget(key_id)  # as if the change commits only after the next lookups
    assert setup.resolver.lookup(key_id) is not None
    setup.unsignalled("UpdateAccessKey", UserName="alice", AccessKeyId=key_id, Status="Inactive")
    assert setup.resolver.lookup(key_id) is None  # read again, not served from the cache
    setup.tick(BYPASS_SECONDS)
    setup.unsignalled("UpdateAccessKey", UserName="alice", AccessKeyId=key_id, Status="Active")
    assert setup.resolver.lookup(key_id) is not None
    setup.unsignalled("UpdateAccessKey", UserName="alice", AccessKeyId=key_id, Status="Inactive")
    assert setup.resolver.lookup(key_id) is not None  # window over: cached again


def test_forget_everything(setup):
    first, second = setup.user_key("a"), setup.user_key("b")
    setup.resolver.lookup(first)
    setup.resolver.lookup(second)
    for name, key_id in (("a", first), ("b", second)):
        setup.unsignalled("UpdateAccessKey", UserName=name, AccessKeyId=key_id, Status="Inactive")
    setup.resolver.forget()
    assert setup.resolver.lookup(first) is None and setup.resolver.lookup(second) is None


def test_a_forget_in_one_process_reaches_the_others_through_their_signal(setup, db, tmp_path,
                                                                         caplog):
    path = tmp_path / "credentials-changed"  # each process's FileSignal on the shared file
    resolvers = [CredentialResolver(lambda: open_connection(db, read_only=True),
                                    clock=lambda: setup.ticks[0], signal=FileSignal(path))
                 for _ in range(2)]
    key_id = setup.user_key()
    assert all(resolver.lookup(key_id) is not None for resolver in resolvers)  # cached
    setup.unsignalled("UpdateAccessKey", UserName="alice", AccessKeyId=key_id, Status="Inactive")
    resolvers[0].forget(key_id)  # the process that made the change
    assert [resolver.lookup(key_id) for resolver in resolvers] == [None, None]
    setup.tick(BYPASS_SECONDS)
    setup.unsignalled("UpdateAccessKey", UserName="alice", AccessKeyId=key_id, Status="Active")
    assert resolvers[1].lookup(key_id) is not None  # cached again, nothing raised since
    path.unlink()
    (path / "in-the-way").mkdir(parents=True)  # the signal cannot be raised: logged, and why
    resolvers[0].forget(key_id)
    assert "cannot tell the other processes that a key changed" in caplog.text
    assert "cannot replace the signal file" in caplog.text


def test_tag_changes_reach_the_principal_on_the_next_call(setup):
    key_id = setup.user_key()
    assert setup.resolver.lookup(key_id).owner.tags == {}
    setup.iam("TagUser", UserName="alice", Tags=[{"Key": "team", "Value": "search"}])
    assert setup.resolver.lookup(key_id).owner.tags == {"team": "search"}


# --- temporary credentials ---------------------------------------------------------------------


def _assume(setup, duration: int = 900) -> dict:
    alice = setup.resolver.lookup(setup.user_key()).owner
    setup.iam("CreateRole", RoleName="Admin",
              AssumeRolePolicyDocument=trust({"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"}))
    return setup.sts.as_(alice)("AssumeRole", RoleArn=f"arn:aws:iam::{ACCOUNT}:role/Admin",
                                RoleSessionName="dev", DurationSeconds=duration)["Credentials"]


def test_session_credentials_are_stored_with_their_session(setup):
    creds = _assume(setup)
    doc = Identities(SqliteResources(setup.conn, "", "")).access_key_doc(creds["AccessKeyId"])
    assert doc["SessionToken"] == creds["SessionToken"]
    assert doc["Expiration"] == int(T0.timestamp()) + 900 and isinstance(doc["Expiration"], int)
    assert (doc["AccountId"], doc["Status"]) == (ACCOUNT, "Active")
    session = doc["Session"]
    assert {key: session[key] for key in ("Type", "Source", "RoleName", "SessionName",
                                          "CreationDate", "Mfa", "Policies", "Tags")} == {
        "Type": "AssumedRole", "Source": "AssumeRole", "RoleName": "Admin",
        "SessionName": "dev", "CreationDate": "2025-03-01T12:00:00+00:00", "Mfa": False,
        "Policies": None, "Tags": {}}
    assert session["RoleId"].startswith("AROA") and session["RoleArn"].endswith(":role/Admin")
    assert session["CallerArn"] == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert setup.conn.execute("SELECT count(*) FROM resources WHERE kind=? AND account=''",
                              (KIND_ACCESS_KEY,)).fetchone()[0] == 4


def _signed(creds: dict, when) -> sigv4.HttpRequest:
    request = AWSRequest(method="POST", url="http://127.0.0.1:4680/", data=b"{}",
                         headers={"Content-Type": "application/x-amz-json-1.0",
                                  "X-Amz-Target": "OpenSearchServerless.ListCollections"})
    with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
        SigV4Auth(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"],
                              creds["SessionToken"]), "aoss", "us-east-1").add_auth(request)
    return to_http(request.prepare())


def _verify(setup, request, now):
    return sigv4.verify(request, lookup=setup.resolver.lookup, now=now,
                        max_skew=timedelta(minutes=5), service="aoss",
                        region_check=lambda region: True)


def test_temporary_credentials_sign_requests_until_they_expire(setup):
    creds = _assume(setup)
    verified = _verify(setup, _signed(creds, T0), T0)
    assert verified.credential.owner.kind == "AssumedRole"
    assert verified.credential.owner.access_key_id == creds["AccessKeyId"]
    late = T0 + timedelta(seconds=900)
    with pytest.raises(sigv4.SigV4Error) as info:
        _verify(setup, _signed(creds, late), late)
    assert info.value.code == sigv4.EXPIRED_TOKEN
    forged = dict(creds, SessionToken=creds["SessionToken"][:-8] + "AAAAAAA=")
    with pytest.raises(sigv4.SigV4Error) as info:
        _verify(setup, _signed(forged, T0), T0)
    assert info.value.code != sigv4.EXPIRED_TOKEN


def test_a_deleted_role_leaves_its_sessions_without_policies(setup):
    creds = _assume(setup)
    setup.iam("PutRolePolicy", RoleName="Admin", PolicyName="all", PolicyDocument=ALLOW_ALL)
    principal = setup.resolver.lookup(creds["AccessKeyId"]).owner
    repo = SqliteResources(setup.conn, "", "")
    assert len(policies_for(repo, principal).identity) == 1
    setup.iam("DeleteRolePolicy", RoleName="Admin", PolicyName="all")
    setup.iam("DeleteRole", RoleName="Admin")
    setup.iam("CreateRole", RoleName="Admin", AssumeRolePolicyDocument=trust({"AWS": ACCOUNT}))
    setup.iam("PutRolePolicy", RoleName="Admin", PolicyName="all", PolicyDocument=ALLOW_ALL)
    principal = setup.resolver.lookup(creds["AccessKeyId"]).owner
    assert principal.kind == "AssumedRole"
    assert policies_for(repo, principal) == ([], None)


def test_expired_sessions_can_be_purged(setup):
    creds = _assume(setup, duration=900)
    identities = Identities(SqliteResources(setup.conn, "", ""))
    expiry = int(T0.timestamp()) + 900
    setup.conn.execute("BEGIN IMMEDIATE")
    assert identities.purge_expired_sessions(expiry) == 0
    assert identities.purge_expired_sessions(expiry + 1) == 1
    setup.conn.execute("COMMIT")
    assert setup.resolver.lookup(creds["AccessKeyId"]) is None
    assert setup.resolver.lookup(setup.keys[ACCOUNT]) is not None  # long-term keys stay


def test_upgrade_rekeys_old_user_documents_and_indexes_old_keys(setup):
    key_id = setup.user_key("Alice")
    # the layout of the previous version: users keyed by their exact name, no key index
    setup.conn.execute("UPDATE resources SET key='Alice' WHERE kind='iam-user'")
    setup.conn.execute("DELETE FROM resources WHERE kind='iam-access-key'")
    setup.conn.commit()
    assert setup.resolver.lookup(key_id) is None
    identities = Identities(SqliteResources(setup.conn, "", ""))
    setup.conn.execute("BEGIN IMMEDIATE")
    assert identities.upgrade() == 4  # one user, two root keys, one user key
    assert identities.upgrade() == 0
    setup.conn.execute("COMMIT")
    setup.resolver.forget()
    assert setup.resolver.lookup(key_id).owner.user_name == "Alice"
    listed = setup.iam("ListAccessKeys", UserName="alice")["AccessKeyMetadata"]
    assert [key["AccessKeyId"] for key in listed] == [key_id]
