"""Console sign-in and its defences: ConsoleLogin records (success, failure, unknown user),
session cookies, CSRF tokens, cross-site refusal, throttling of failed attempts, sign-out, and
the memory that sign-ins at once may take."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from bench.memory import proc_status
from tests.e2e.console_http import (ROOT_PASSWORD, TOKEN, USER_PASSWORD, ConsoleUser,
                                    console_server_fixture, set_console_password)
from tests.functional.server import ServerProcess

console_server = console_server_fixture("console-security")


def console_logins(server: ServerProcess, **match: str) -> list[dict]:
    """ConsoleLogin records (newest first) whose top-level fields equal ``match``."""
    pages = server.client("cloudtrail").get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "ConsoleLogin"}])
    records = [json.loads(event["CloudTrailEvent"]) for page in pages for event in page["Events"]]
    return [record for record in records
            if all(record.get(key) == value for key, value in match.items())]


def test_root_sign_in_is_recorded_as_a_console_login(console_server) -> None:
    user = ConsoleUser(console_server.endpoint)
    answer = user.sign_in(ROOT_PASSWORD, user_agent="Mozilla/5.0 (root-success)")
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    session = next(part for part in cookie.split(", searchtrail") if "searchtrail-console=" in part)
    assert "HttpOnly" in session and "SameSite=strict" in session and "Path=/console" in session
    assert "Secure" not in session  # plain HTTP; under TLS the cookie is Secure
    [record] = console_logins(console_server, userAgent="Mozilla/5.0 (root-success)")
    account = console_server.client("sts").get_caller_identity()["Account"]
    assert record["eventSource"] == "signin.amazonaws.com"
    assert record["eventType"] == "AwsConsoleSignIn"
    assert record["awsRegion"] == "us-east-1"
    assert record["responseElements"] == {"ConsoleLogin": "Success"}
    assert record["additionalEventData"]["MobileVersion"] == "No"
    assert record["additionalEventData"]["MFAUsed"] == "No"
    assert record["additionalEventData"]["LoginTo"].endswith("/console/events")
    assert record["userIdentity"] == {"type": "Root", "principalId": account,
                                      "arn": f"arn:aws:iam::{account}:root",
                                      "accountId": account, "accessKeyId": ""}
    assert record["recipientAccountId"] == account
    assert "errorMessage" not in record and record["requestParameters"] is None
    # the session works: the event history page shows who is signed in
    page = user.get("/console/events")
    assert page.status_code == 200 and "Signed in as <strong>root</strong>" in page.text


def test_wrong_password_is_recorded_as_a_failure(console_server) -> None:
    user = ConsoleUser(console_server.endpoint)
    answer = user.sign_in("not-the-password", user_agent="Mozilla/5.0 (root-failure)")
    assert answer.status_code == 401
    assert "Your authentication information is incorrect" in answer.text
    assert "searchtrail-console=" not in answer.headers.get("set-cookie", "")
    [record] = console_logins(console_server, userAgent="Mozilla/5.0 (root-failure)")
    assert record["responseElements"] == {"ConsoleLogin": "Failure"}
    assert record["errorMessage"] == "Failed authentication"
    assert record["userIdentity"]["type"] == "Root"


def test_unknown_user_name_is_hidden(console_server) -> None:
    answer = ConsoleUser(console_server.endpoint).sign_in(
        "whatever-Pa55", user="no-such-person", user_agent="Mozilla/5.0 (unknown-user)")
    assert answer.status_code == 401
    [record] = console_logins(console_server, userAgent="Mozilla/5.0 (unknown-user)")
    assert record["userIdentity"]["userName"] == "HIDDEN_DUE_TO_SECURITY_REASONS"
    assert record["userIdentity"]["type"] == "IAMUser"
    assert record["responseElements"] == {"ConsoleLogin": "Failure"}
    assert "no-such-person" not in json.dumps(record)
    hidden = console_server.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "Username", "AttributeValue": "HIDDEN_DUE_TO_SECURITY_REASONS"}])
    assert hidden["Events"]


def test_iam_user_signs_in_with_a_login_profile(console_server) -> None:
    iam = console_server.client("iam")
    user = iam.create_user(UserName="carol")["User"]
    iam.create_login_profile(UserName="carol", Password=USER_PASSWORD)
    browser = ConsoleUser(console_server.endpoint)
    assert browser.sign_in(USER_PASSWORD, user="carol",
                           user_agent="Mozilla/5.0 (carol)").status_code == 303
    assert "Signed in as <strong>carol</strong>" in browser.get("/console/events").text
    [record] = console_logins(console_server, userAgent="Mozilla/5.0 (carol)")
    assert record["userIdentity"] == {
        "type": "IAMUser", "principalId": user["UserId"], "arn": user["Arn"],
        "accountId": user["Arn"].split(":")[4], "accessKeyId": "", "userName": "carol"}
    assert record["responseElements"] == {"ConsoleLogin": "Success"}


def test_a_form_post_without_the_token_is_refused(console_server) -> None:
    user = ConsoleUser(console_server.endpoint)
    user.sign_in(ROOT_PASSWORD)
    for data in ({}, {"csrf_token": "forged"}):
        answer = user.post("/console/policies", {**data, "type": "encryption", "name": "no-token",
                                                  "policy": "{}"}, token=False)
        assert answer.status_code == 403
        assert "security token" in answer.text
    listed = console_server.client("opensearchserverless").list_security_policies(
        type="encryption")["securityPolicySummaries"]
    assert "no-token" not in [item["name"] for item in listed]


def test_a_cross_site_request_cannot_act(console_server) -> None:
    user = ConsoleUser(console_server.endpoint)
    user.sign_in(ROOT_PASSWORD)
    form = {"type": "encryption", "name": "cross-site", "description": "",
            "policy": json.dumps({"Rules": [{"ResourceType": "collection",
                                             "Resource": ["collection/x*"]}],
                                  "AWSOwnedKey": True})}
    for headers in ({"Origin": "https://attacker.example"},
                    {"Sec-Fetch-Site": "cross-site"},
                    {"Referer": "https://attacker.example/page"}):
        answer = user.post("/console/policies", form, headers=headers)  # valid cookie and token
        assert answer.status_code == 403, headers
        assert "another site" in answer.text
    listed = console_server.client("opensearchserverless").list_security_policies(
        type="encryption")["securityPolicySummaries"]
    assert "cross-site" not in [item["name"] for item in listed]
    # the same form from the console's own origin goes through
    own = user.post("/console/policies", form, headers={"Origin": console_server.endpoint})
    assert own.status_code == 303


def test_the_sign_in_form_needs_its_token(console_server) -> None:
    user = ConsoleUser(console_server.endpoint)
    answer = user.http.post(user.url("/console/signin"), allow_redirects=False,
                            headers={"User-Agent": "Mozilla/5.0 (no-token-signin)"},
                            data={"kind": "root", "password": ROOT_PASSWORD})
    assert answer.status_code == 403
    assert console_logins(console_server, userAgent="Mozilla/5.0 (no-token-signin)") == []


def test_failed_sign_ins_are_throttled(console_server) -> None:
    iam = console_server.client("iam")
    iam.create_user(UserName="dave")
    iam.create_login_profile(UserName="dave", Password=USER_PASSWORD)
    for attempt in range(5):
        answer = ConsoleUser(console_server.endpoint).sign_in(
            "wrong-Pa55word", user="dave", user_agent=f"Mozilla/5.0 (dave-{attempt})")
        assert answer.status_code == 401
    # the right password no longer gets in while the failures are recent
    answer = ConsoleUser(console_server.endpoint).sign_in(
        USER_PASSWORD, user="dave", user_agent="Mozilla/5.0 (dave-throttled)")
    assert answer.status_code == 429
    assert "Too many failed sign-in attempts" in answer.text
    [record] = console_logins(console_server, userAgent="Mozilla/5.0 (dave-throttled)")
    assert record["responseElements"] == {"ConsoleLogin": "Failure"}
    # other users are not affected
    assert ConsoleUser(console_server.endpoint).sign_in(ROOT_PASSWORD).status_code == 303


def test_a_form_body_over_a_mebibyte_is_refused_before_it_is_read(console_server) -> None:
    """Forms were read whole, whatever their size: a 250 MB sign-in post, before any token
    check, took the server from 84 to 335 MB."""
    user = ConsoleUser(console_server.endpoint)
    big = b"kind=root&password=" + b"a" * (2 * 1024 * 1024)

    def streamed():  # type: ignore[no-untyped-def]  # no Content-Length: chunked
        for start in range(0, len(big), 64 * 1024):
            yield big[start:start + 64 * 1024]

    for data in (big, streamed()):
        answer = user.http.post(user.url("/console/signin"), data=data, allow_redirects=False,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert answer.status_code == 413
        assert "at most 1 MiB" in answer.text
        assert answer.headers["Content-Security-Policy"].startswith("default-src 'self'")
    # a form below the limit still reaches its route (which checks its token)
    answer = user.http.post(user.url("/console/signin"), data=big[:512 * 1024],
                            allow_redirects=False,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 403
    assert ConsoleUser(console_server.endpoint).sign_in(ROOT_PASSWORD).status_code == 303


def test_bodies_read_at_once_are_bounded_together(console_server) -> None:
    """Each post under 1 MiB, but a thousand at once before any session check took the server
    up by ~800 MB: past 16 MiB buffered together, the next is told to retry (503)."""
    import socket

    from searchtrail.console.security import MAX_BUFFERED_BYTES

    port = int(console_server.endpoint.rsplit(":", 1)[1])
    piece = b"a" * (960 * 1024)
    held: list[socket.socket] = []
    try:
        answer = b""
        for _ in range(MAX_BUFFERED_BYTES // len(piece) + 2):  # bounded: one past the budget
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            held.append(sock)
            sock.sendall(b"POST /console/signin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/x-www-form-urlencoded\r\n"
                         b"Content-Length: 1000000\r\n\r\n" + piece)  # never finished
            sock.settimeout(0.2)
            try:
                answer = sock.recv(200)
            except TimeoutError:
                continue  # still being read: its bytes count
            break
        if not answer:  # the last one past the budget: its answer may be on its way
            held[-1].settimeout(10)
            answer = held[-1].recv(200)
        assert answer.startswith(b"HTTP/1.1 503"), answer
    finally:
        for sock in held:
            sock.close()
    # the budget is given back as they end
    assert ConsoleUser(console_server.endpoint).sign_in(ROOT_PASSWORD).status_code == 303


def test_the_region_is_switched_by_a_form_with_its_token_not_by_a_link(console_server) -> None:
    """A GET switched it: a link from any site could point the viewer's history at an empty
    Region and hide the activity in theirs."""
    user = ConsoleUser(console_server.endpoint)
    user.sign_in(ROOT_PASSWORD)
    answer = user.get("/console/region?region=ap-south-1&next=/console/events",
                      allow_redirects=False, headers={"Sec-Fetch-Site": "cross-site"})
    assert answer.status_code == 405 and "searchtrail-region" not in answer.headers.get(
        "set-cookie", "")
    answer = user.post("/console/region", {"region": "ap-south-1"}, token=False)
    assert answer.status_code == 403
    answer = user.post("/console/region", {"region": "ap-south-1", "next": "/console/trails"})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/trails"
    assert user.http.cookies.get("searchtrail-region") == "ap-south-1"
    page = user.get("/console/events")
    assert '<option value="ap-south-1" selected>' in page.text
    # a multi-region trail's name on another Region's trails page switches by a form too
    made = subprocess.run([sys.executable, "-m", "searchtrail.cli", "buckets", "create",
                           "region-logs", "--data-dir", str(console_server.data_dir)],
                          capture_output=True)
    assert made.returncode == 0, made.stderr
    console_server.client("cloudtrail", region="us-west-2").create_trail(
        Name="west", S3BucketName="region-logs", IsMultiRegionTrail=True)
    page = user.get("/console/trails")
    assert 'name="region" value="us-west-2"' in page.text
    assert 'name="next" value="/console/trails/west"' in page.text
    answer = user.post("/console/region", {"region": "us-west-2", "next": "/console/trails/west"})
    assert answer.headers["location"] == "/console/trails/west"
    assert user.get("/console/trails/west").status_code == 200


def test_sign_out_ends_the_session(console_server) -> None:
    user = ConsoleUser(console_server.endpoint)
    user.sign_in(ROOT_PASSWORD)
    cookie = user.http.cookies.get("searchtrail-console")
    assert user.post("/console/signout", {}).status_code == 303
    stale = ConsoleUser(console_server.endpoint)
    stale.http.cookies.set("searchtrail-console", cookie, path="/console")
    answer = stale.get("/console/collections", allow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/signin")


def test_pages_need_a_session(console_server) -> None:
    anonymous = ConsoleUser(console_server.endpoint)
    for path in ("/console/events", "/console/collections", "/console/policies",
                 "/console/trails", "/console/events/export?format=csv"):
        answer = anonymous.get(path, allow_redirects=False)
        assert answer.status_code == 303 and "/console/signin?next=" in answer.headers["location"]
    answer = anonymous.http.post(anonymous.url("/console/collections"), allow_redirects=False,
                                 data={"name": "sneaky"})
    assert answer.status_code == 303
    assert "content-security-policy" in anonymous.get("/console/signin").headers


def test_under_tls_the_session_cookie_is_secure(tmp_path) -> None:
    from tests.functional.test_tls import tls_server

    server, cert = tls_server(tmp_path)
    try:
        server.start()
        set_console_password(str(server.data_dir), ROOT_PASSWORD)
        user = ConsoleUser(server.endpoint, verify=str(cert))
        answer = user.sign_in(ROOT_PASSWORD, user_agent="Mozilla/5.0 (tls)")
        assert answer.status_code == 303
        session = next(part for part in answer.headers["set-cookie"].split(", searchtrail")
                       if "searchtrail-console=" in part)
        assert "Secure" in session and "HttpOnly" in session and "SameSite=strict" in session
        events = server.client("cloudtrail", verify=str(cert)).lookup_events(LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "ConsoleLogin"}])["Events"]
        record = json.loads(events[0]["CloudTrailEvent"])
        assert record["tlsDetails"]["tlsVersion"] in ("TLSv1.2", "TLSv1.3")
        assert record["additionalEventData"]["LoginTo"].startswith("https://")
    finally:
        server.stop()


def test_sign_ins_at_once_do_not_take_the_servers_memory_up(tmp_path) -> None:
    """A password check (scrypt) takes 16 MiB, which the thread that ran it keeps: checks run
    on two threads of their own, so 24 sign-ins at once cannot hold 24 x 16 MiB (they took
    the server up by ~330 MiB when they ran on the web server's pool of threads)."""
    server = ServerProcess(tmp_path / "data").start()
    try:
        set_console_password(str(server.data_dir), ROOT_PASSWORD)
        assert ConsoleUser(server.endpoint).sign_in(ROOT_PASSWORD).status_code == 303
        before = proc_status(server.process.pid)["VmHWM"]
        users = [ConsoleUser(server.endpoint) for _ in range(24)]
        with ThreadPoolExecutor(len(users)) as pool:
            answers = list(pool.map(lambda user: user.sign_in(ROOT_PASSWORD).status_code, users))
        assert answers == [303] * len(users)
        grown = proc_status(server.process.pid)["VmHWM"] - before
        assert grown < 100, f"peak RSS grew by {grown:.0f} MiB over 24 sign-ins at once"
    finally:
        server.stop()


def _signin_post(server: ServerProcess, *, address: str, user: str = "",  # type: ignore[no-untyped-def]
                 account: str = "", password: str = "wrong-Pa55word",
                 user_agent: str = "console-tests"):
    """One sign-in post from ``address`` (the server trusts 127.0.0.1 as a proxy), with a
    double-submit token of the test's own (the sign-in form's token is its cookie's value)."""
    client = ConsoleUser(server.endpoint)
    form = client.http.get(client.url("/console/signin"))
    token = TOKEN.search(form.text).group(1)
    return client.http.post(client.url("/console/signin"), allow_redirects=False, headers={
        "User-Agent": user_agent, "X-Forwarded-For": address}, data={
        "csrf_token": token, "kind": "iam" if user else "root", "user": user,
        "account": account, "password": password}).status_code


def test_guesses_sent_together_are_throttled_as_if_sent_in_turn(tmp_path) -> None:
    """The failures were counted before the password check and stored after it: 30 guesses
    at once were all checked (5 allowed per user), 70 from one address (50 allowed)."""
    server = ServerProcess(tmp_path / "data",
                           env={"SEARCHTRAIL_TRUSTED_PROXIES": "127.0.0.1"}).start()
    try:
        iam = server.client("iam")
        iam.create_user(UserName="erin")
        iam.create_login_profile(UserName="erin", Password=USER_PASSWORD)
        with ThreadPoolExecutor(30) as pool:
            answers = list(pool.map(lambda n: _signin_post(
                server, address=f"10.0.0.{n}", user="erin", user_agent="Mozilla/5.0 (erin)"),
                range(30)))
        assert answers.count(401) <= 5 and answers.count(401) + answers.count(429) == 30
        with ThreadPoolExecutor(30) as pool:
            answers = list(pool.map(lambda n: _signin_post(
                server, address="10.9.9.9", user=f"nobody{n}"), range(70)))
        assert answers.count(401) <= 50 and answers.count(401) + answers.count(429) == 70
        # a flood of throttled attempts is recorded once, not once each, whatever user name
        # each one makes up
        for n in range(20):
            assert _signin_post(server, address="10.1.1.1", user="erin",
                                user_agent="Mozilla/5.0 (erin-flood)") == 429
            assert _signin_post(server, address="10.9.9.9", user=f"made-up{n}",
                                user_agent="Mozilla/5.0 (names-flood)") == 429
        assert len(console_logins(server, userAgent="Mozilla/5.0 (erin-flood)")) == 1
        assert len(console_logins(server, userAgent="Mozilla/5.0 (names-flood)")) <= 1
        # an account that does not exist is throttled as one that does: 5 guesses at its root
        unknown_root = [_signin_post(server, address="10.6.6.6", account="222222222222")
                        for _ in range(6)]
        assert unknown_root == [401] * 5 + [429]
        known_root = [_signin_post(server, address="10.5.5.5") for _ in range(6)]
        assert known_root == [401] * 5 + [429]
        # an IAM user named Root has a count of its own: its sign-in clears not the root's
        iam.create_user(UserName="Root")
        iam.create_login_profile(UserName="Root", Password=USER_PASSWORD)
        assert _signin_post(server, address="10.5.5.6", user="Root",
                            password=USER_PASSWORD) == 303
        assert _signin_post(server, address="10.5.5.7") == 429
        # an account that does not exist: a wrong password as any other, counted per address
        unknown = [_signin_post(server, address="10.7.7.7", account="111111111111",
                                user=f"guess{n}") for n in range(51)]
        assert unknown == [401] * 50 + [429]
    finally:
        server.stop()
