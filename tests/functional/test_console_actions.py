"""Console actions go through the API's unit of work: authorized by the same policies and
recorded as calls made from the console; event history exports match LookupEvents, and one
its client abandons is reported as stopped."""

from __future__ import annotations

import csv
import io
import json
import os
import re

import pytest

from tests.e2e.console_http import (ROOT_PASSWORD, USER_PASSWORD, ConsoleUser,
                                    console_server_fixture, set_console_password)
from tests.functional.server import SWEEP_VARIABLE, ServerProcess
from tests.functional.trails import wait_for

console_server = console_server_fixture("console-actions")


@pytest.fixture(scope="module")
def root(console_server) -> ConsoleUser:  # type: ignore[no-untyped-def]
    user = ConsoleUser(console_server.endpoint)
    assert user.sign_in(ROOT_PASSWORD).status_code == 303
    return user


def lookup(server: ServerProcess, key: str, value: str) -> list[dict]:
    pages = server.client("cloudtrail").get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}])
    return [json.loads(event["CloudTrailEvent"]) for page in pages for event in page["Events"]]


def test_console_actions_are_recorded_as_console_calls(console_server, root) -> None:
    answer = root.post("/console/collections", {"name": "from-console", "type": "SEARCH",
                                                "standby": "DISABLED", "encryption": "create",
                                                "network": "public"})
    assert answer.status_code == 303, answer.text
    created = [r for r in lookup(console_server, "EventName", "CreateCollection")
               if r["requestParameters"]["name"] == "from-console"]
    assert len(created) == 1
    record = created[0]
    assert record["userAgent"] == "console.amazonaws.com"
    assert record["sessionCredentialFromConsole"] == "true"
    assert list(record)[-1] == "sessionCredentialFromConsole"
    identity = record["userIdentity"]
    assert identity["type"] == "Root" and identity["accessKeyId"].startswith("ASIA")
    assert identity["sessionContext"]["attributes"]["mfaAuthenticated"] == "false"
    assert record["eventType"] == "AwsApiCall" and "errorCode" not in record
    # the policies the form offered were created first, recorded the same way
    policies = [r for r in lookup(console_server, "EventName", "CreateSecurityPolicy")
                if r["requestParameters"]["name"].startswith("from-console-")]
    assert sorted(r["requestParameters"]["type"] for r in policies) == ["encryption", "network"]
    assert all(r["sessionCredentialFromConsole"] == "true" for r in policies)
    # and the collection is there for API callers too
    names = [c["name"] for c in console_server.client("opensearchserverless")
             .list_collections()["collectionSummaries"]]
    assert "from-console" in names
    # API calls carry no console flag
    api_calls = lookup(console_server, "EventName", "ListCollections")
    assert api_calls and all("sessionCredentialFromConsole" not in r for r in api_calls)


def test_a_user_without_permission_sees_access_denied(console_server) -> None:
    iam = console_server.client("iam")
    iam.create_user(UserName="erin")
    iam.create_login_profile(UserName="erin", Password=USER_PASSWORD)
    erin = ConsoleUser(console_server.endpoint)
    assert erin.sign_in(USER_PASSWORD, user="erin").status_code == 303
    listing = erin.get("/console/collections")
    assert listing.status_code == 403
    assert "AccessDeniedException" in listing.text
    assert "is not authorized to perform: aoss:ListCollections" in listing.text
    policies = erin.get("/console/policies")  # every section denied: the page is too
    assert policies.status_code == 403
    assert "is not authorized to perform: aoss:ListSecurityPolicies" in policies.text
    answer = erin.post("/console/collections", {"name": "not-allowed", "type": "SEARCH",
                                                "encryption": "existing", "network": "none"})
    assert answer.status_code == 403
    assert "is not authorized to perform: aoss:CreateCollection" in answer.text
    denied = [r for r in lookup(console_server, "Username", "erin")
              if r["eventName"] == "CreateCollection"]
    assert len(denied) == 1
    assert denied[0]["errorCode"] == "AccessDeniedException"
    assert denied[0]["sessionCredentialFromConsole"] == "true"
    assert denied[0]["userIdentity"]["userName"] == "erin"
    # once a policy allows it, the same console user may act
    iam.attach_user_policy(UserName="erin",
                           PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    assert erin.get("/console/collections").status_code == 200


def test_csv_cells_are_protected_against_formula_injection(console_server, root) -> None:
    iam = console_server.client("iam")
    for name in ("=1+2", "@sum", "+cmd", "-x"):
        iam.create_user(UserName=name)
        iam.create_login_profile(UserName=name, Password=USER_PASSWORD)
        assert ConsoleUser(console_server.endpoint).sign_in(
            USER_PASSWORD, user=name).status_code == 303
    answer = root.get("/console/events/export?attr=EventName&value=ConsoleLogin&range=1h"
                      "&format=csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    users = {row["User name"] for row in rows}
    assert {"'=1+2", "'@sum", "'+cmd", "'-x"} <= users
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())
    # JSON keeps the values as recorded
    records = root.get("/console/events/export?attr=EventName&value=ConsoleLogin&range=1h"
                       "&format=json").json()["Records"]
    assert "=1+2" in {r["userIdentity"].get("userName") for r in records}


def test_exports_match_lookup_events_across_pages(console_server, root) -> None:
    aoss = console_server.client("opensearchserverless")
    for _ in range(120):  # more than two LookupEvents pages
        aoss.list_security_policies(type="network")
    expected = [r["eventID"] for r in lookup(console_server, "EventName", "ListSecurityPolicies")]
    assert len(expected) >= 120
    query = "attr=EventName&value=ListSecurityPolicies&range=1h"
    records = root.get(f"/console/events/export?{query}&format=json").json()["Records"]
    assert [r["eventID"] for r in records] == expected
    rows = list(csv.DictReader(io.StringIO(root.get(f"/console/events/export?{query}"
                                                    "&format=csv").text)))
    assert [row["Event ID"] for row in rows] == expected
    assert rows[0]["Event name"] == "ListSecurityPolicies"
    assert rows[0]["Read-only"] == "true"
    # the table pages through the same events, 50 at a time
    page = root.get(f"/console/events?{query}")
    shown = re.findall(r'href="/console/events/([0-9a-f-]{36})"', page.text)
    assert shown == expected[:50]
    older = re.search(r'href="([^"]+)" rel="next"', page.text).group(1).replace("&amp;", "&")
    shown = re.findall(r'href="/console/events/([0-9a-f-]{36})"', root.get(older).text)
    assert shown == expected[50:100]


def _link(page, rel: str) -> str:  # type: ignore[no-untyped-def]
    return re.search(rf'href="([^"]+)" rel="{rel}"', page.text).group(1).replace("&amp;", "&")


def test_pages_are_numbered_and_the_newest_is_always_reachable(console_server, root) -> None:
    aoss = console_server.client("opensearchserverless")
    for _ in range(110):  # three pages at least
        aoss.list_access_policies(type="data")
    query = "attr=EventName&value=ListAccessPolicies&range=1h"
    first = root.get(f"/console/events?{query}")
    assert "Page 1<" in first.text and "Newest events" not in first.text
    second = root.get(_link(first, "next"))
    third = root.get(_link(second, "next"))
    assert "Page 2<" in second.text and "Page 3<" in third.text
    assert "Page 2<" in root.get(_link(third, "prev")).text
    # further than the page tokens a URL carries (the last 20): the number stays right and
    # the newest page is one link away
    far = re.sub(r"&prev=[^&]*", "", _link(second, "next")).replace("page=3", "page=30")
    deep = root.get(far)
    assert "Page 30<" in deep.text and 'rel="prev"' not in deep.text
    newest = re.search(r'href="([^"]+)">Newest events', deep.text).group(1).replace("&amp;", "&")
    assert re.findall(r'href="/console/events/([0-9a-f-]{36})"', root.get(newest).text) == \
        re.findall(r'href="/console/events/([0-9a-f-]{36})"', first.text)


@pytest.mark.parametrize("path", [
    "/console/events?at=%C2%B2", "/console/events?at=" + "9" * 5000,
    "/console/events?range=custom&start=0001-01-01T00:00:00%2B01:00&end=0001-01-02T00:00",
    "/console/events/chart?at=%C2%B2", "/console/events/export?format=csv&at=%C2%B2",
    "/console/events/export/progress?export=x&n=%C2%B2",
    "/console/events/export/progress?export=x&n=" + "9" * 5000,
    "/console/events?page=%C2%B2", "/console/events?page=" + "9" * 5000,
])
def test_malformed_query_values_never_fail_a_page(root, path: str) -> None:
    assert root.get(path).status_code in (200, 400)


@pytest.mark.parametrize("path", ["/console/trails", "/console/collections",
                                  "/console/policies"])
def test_a_notice_in_a_link_from_elsewhere_is_not_shown_as_the_consoles(root, path) -> None:
    crafted = "Your session expired: call +1 555 0100 to restore it"
    page = root.get(f"{path}?notice={crafted.replace(' ', '+')}&ns=0123456789abcdef")
    assert page.status_code == 200 and "555 0100" not in page.text


def test_event_detail_shows_the_record_and_its_resources(console_server, root) -> None:
    record = next(r for r in lookup(console_server, "EventName", "CreateCollection")
                  if "errorCode" not in r)
    page = root.get(f"/console/events/{record['eventID']}")
    assert page.status_code == 200
    assert record["requestID"] in page.text
    arn = record["resources"][0]["ARN"]
    assert f'href="/console/collections/{arn.rsplit("/", 1)[1]}"' in page.text
    assert "attr=ResourceName" in page.text
    assert root.get("/console/events/00000000-0000-4000-8000-000000000000").status_code == 404


def test_time_range_is_checked(console_server, root) -> None:
    page = root.get("/console/events?range=custom&start=2026-01-01T00:00&end=2025-01-01T00:00")
    assert page.status_code == 200 and "The end must be after the start" in page.text
    page = root.get("/console/events?range=custom&start=2020-01-01T00:00&end=2020-12-01T00:00")
    assert "at most 90 days" in page.text
    chart = root.get("/console/events/chart?attr=&range=1h&split=error",
                     headers={"HX-Request": "true"})
    assert chart.status_code == 200 and "<svg" in chart.text


def test_policies_are_edited_with_errors_shown_beside_the_editor(console_server, root) -> None:
    page = root.get("/console/policies/encryption/from-console-encryption")
    assert page.status_code == 200
    version = re.search(r'name="policyVersion" value="([^"]+)"', page.text).group(1)
    path = "/console/policies/encryption/from-console-encryption"
    broken = root.post(path, {"policyVersion": version, "description": "x",
                              "policy": '{"Rules": '})
    assert broken.status_code == 400 and "Not valid JSON: line 1" in broken.text
    refused = root.post(path, {"policyVersion": version, "description": "x",
                               "policy": json.dumps({"Rules": [{"ResourceType": "collection",
                                                                "Resource": ["bad"]}],
                                                     "AWSOwnedKey": True})})
    assert refused.status_code == 400
    assert 'id="policy-error"' in refused.text and "ValidationException" in refused.text
    saved = root.post(path, {"policyVersion": version, "description": "edited in the console",
                             "policy": json.dumps({"Rules": [{"ResourceType": "collection",
                                                              "Resource": ["collection/from-*"]}],
                                                   "AWSOwnedKey": True})})
    assert saved.status_code == 303
    detail = console_server.client("opensearchserverless").get_security_policy(
        type="encryption", name="from-console-encryption")["securityPolicyDetail"]
    assert detail["description"] == "edited in the console"
    assert detail["policy"]["Rules"][0]["Resource"] == ["collection/from-*"]
    updates = lookup(console_server, "EventName", "UpdateSecurityPolicy")
    assert [r.get("errorCode") for r in updates] == [None, "ValidationException"]
    check = root.post("/console/policies/validate", {"policy": "[1, 2"},
                      headers={"HX-Request": "true"})
    assert check.status_code == 200 and "Not valid JSON" in check.text
    listing = root.get("/console/policies")
    headings = re.findall(r'<h2 id="[a-z]+-title">([^<]+)</h2>', listing.text)
    assert headings == ["Encryption policies", "Network policies", "Data access policies"]


def test_a_collection_is_deleted_after_confirmation(console_server, root) -> None:
    collection = next(c for c in console_server.client("opensearchserverless")
                      .list_collections()["collectionSummaries"] if c["name"] == "from-console")
    path = f"/console/collections/{collection['id']}/delete"
    assert "Type <strong>from-console</strong> to confirm" in root.get(path).text
    wrong = root.post(path, {"confirm": "something-else"})
    assert wrong.status_code == 400 and "to confirm the deletion" in wrong.text
    # Only an ACTIVE collection can be deleted; on a fast machine this test comes within the
    # three seconds a new collection spends CREATING.
    aoss = console_server.client("opensearchserverless")
    wait_for(lambda: aoss.batch_get_collection(ids=[collection["id"]])[
        "collectionDetails"][0]["status"] == "ACTIVE", seconds=15, step=0.2,
        what="the collection to become ACTIVE")
    done = root.post(path, {"confirm": "from-console"})
    assert done.status_code == 303 and done.headers["location"].startswith("/console/collections")
    [record] = lookup(console_server, "EventName", "DeleteCollection")
    assert record["requestParameters"]["id"] == collection["id"]
    assert record["sessionCredentialFromConsole"] == "true"


def test_a_download_its_client_abandons_is_reported_as_stopped(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Closing the connection part-way through a download (cancelled in the browser, the
    network dropped) must not leave the console saying the download is complete."""
    from bench.bulkload import ensure_store

    database_url = None
    if os.environ.get(SWEEP_VARIABLE) == "postgresql":  # the events go where the server reads
        from tests.postgres import sweep_database

        database_url = sweep_database()
    store = ensure_store(30_000, tmp_path / "data", database_url=database_url,
                         log=lambda *_: None)  # ~27 MB of JSON
    server = ServerProcess(store.data_dir).start()
    try:
        set_console_password(str(server.data_dir), ROOT_PASSWORD)
        user = ConsoleUser(server.endpoint)
        assert user.sign_in(ROOT_PASSWORD).status_code == 303
        with user.get("/console/events/export?range=90d&attr=&format=json&export=abandoned",
                      stream=True) as answer:
            assert answer.status_code == 200
            assert next(answer.iter_content(65536)).startswith(b'{"Records":[')
        # leaving the block closed the connection with most of the file unread

        def shown() -> str:
            text = user.get("/console/events/export/progress?export=abandoned").text
            return text if "Preparing" not in text and "events so far" not in text else ""

        text = wait_for(shown, seconds=30, what="the abandoned download's progress to end")
        assert "The download stopped after" in text and "Download complete" not in text, text
        assert "connection closed before the file was complete" in text, text
    finally:
        server.stop()
