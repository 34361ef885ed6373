"""The console in a real browser: sign in, create policies and a collection, find its
CreateCollection in event history, open it, download CSV and JSON and check them against
LookupEvents, see a failed sign-in recorded; screenshots of every page at two widths.

The tests run in order and share one signed-in tab.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture says so: a failure under CI, a skip elsewhere
    expect = None

from tests.e2e.conftest import ROOT_PASSWORD

COLLECTION = "shop-logs"


def lookup(server, key: str, value: str) -> list[dict]:  # type: ignore[no-untyped-def]
    pages = server.client("cloudtrail").get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}])
    return [json.loads(event["CloudTrailEvent"]) for page in pages for event in page["Events"]]


def nav(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def filter_events(page, attribute: str, value: str, time_range: str = "1h") -> None:  # type: ignore[no-untyped-def]
    page.get_by_label("Lookup attribute").select_option(attribute)
    page.get_by_label("Value", exact=True).fill(value)
    page.get_by_label("Time range").select_option(time_range)
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("table").first).to_be_visible()


def test_sign_in_with_the_keyboard(page, console_server, shoot) -> None:  # type: ignore[no-untyped-def]
    page.goto(console_server.endpoint + "/console/")
    expect(page).to_have_url(re.compile(r"/console/signin"))
    shoot(page, "sign-in")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_label("Root user").focus()
    page.keyboard.press("Tab")  # radio group -> account id
    expect(page.get_by_label("Account ID")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(ROOT_PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/events"))
    expect(page.get_by_test_id("identity")).to_contain_text("root")
    expect(page.locator("#chart svg[role=img]")).to_be_visible()  # loaded by htmx
    shoot(page, "event-history")


def test_create_policies_and_a_collection(page, console_server, shoot) -> None:  # type: ignore[no-untyped-def]
    nav(page, "Policies")
    expect(page.get_by_role("heading", name="Policies", exact=True)).to_be_visible()
    page.get_by_role("link", name="Create encryption policy").click()
    page.get_by_label("Name", exact=True).fill(f"{COLLECTION}-enc")
    editor = page.get_by_label("Policy document (JSON)")
    editor.fill('{"Rules": [}')
    expect(page.locator("#policy-check")).to_contain_text("Not valid JSON")  # htmx, as typed
    page.get_by_role("button", name="Create policy").click()
    expect(page.get_by_test_id("policy-error")).to_contain_text("Not valid JSON: line 1")
    expect(editor).to_have_attribute("aria-invalid", "true")
    editor.fill(json.dumps({"Rules": [{"ResourceType": "collection",
                                       "Resource": [f"collection/{COLLECTION}"]}]}))
    page.get_by_role("button", name="Create policy").click()  # the service refuses: no key
    expect(page.get_by_test_id("policy-error")).to_contain_text("AWSOwnedKey")
    shoot(page, "policy-validation-error")
    editor.fill(json.dumps({"Rules": [{"ResourceType": "collection",
                                       "Resource": [f"collection/{COLLECTION}"]}],
                            "AWSOwnedKey": True}, indent=2))
    page.get_by_role("button", name="Create policy").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Created encryption policy")
    shoot(page, "policy-detail")

    nav(page, "Collections")
    shoot(page, "collections-empty")
    page.get_by_role("link", name="Create collection").click()
    page.get_by_label("Name", exact=True).fill(COLLECTION)
    page.get_by_label("Description").fill("Orders and payments")
    page.get_by_label("Use an existing policy whose rules match the name").check()
    page.get_by_label("Create a policy allowing public access to this collection").check()
    shoot(page, "collection-create")
    page.get_by_role("button", name="Create collection").click()
    expect(page.get_by_role("heading", name=COLLECTION)).to_be_visible()
    expect(page.get_by_test_id("notice")).to_contain_text("network policy")
    shoot(page, "collection-detail")
    nav(page, "Policies")
    expect(page.get_by_test_id("network-policies")).to_contain_text(f"{COLLECTION}-network")
    shoot(page, "policies")
    nav(page, "Collections")
    expect(page.get_by_test_id("collections-table")).to_contain_text(COLLECTION)
    shoot(page, "collections")
    names = [c["name"] for c in console_server.client("opensearchserverless")
             .list_collections()["collectionSummaries"]]
    assert COLLECTION in names


def test_find_the_create_collection_event_and_open_it(page, console_server, shoot) -> None:  # type: ignore[no-untyped-def]
    nav(page, "Event history")
    filter_events(page, "EventName", "CreateCollection")
    table = page.get_by_test_id("events-table")
    expect(table).to_contain_text("CreateCollection")
    expect(table).to_contain_text("AWS::AOSS::Collection")
    expect(page.locator("#chart svg[role=img] rect").first).to_be_visible()
    shoot(page, "event-history-filtered")
    table.get_by_role("link", name="CreateCollection").first.click()
    expect(page.get_by_role("heading", name="CreateCollection")).to_be_visible()
    summary = page.get_by_test_id("event-summary")
    expect(summary).to_contain_text("aoss.amazonaws.com")
    record = json.loads(page.get_by_test_id("event-record").inner_text())
    assert record["requestParameters"]["name"] == COLLECTION
    assert record["sessionCredentialFromConsole"] == "true"
    assert record["userAgent"] == "console.amazonaws.com"
    expect(page.get_by_role("link", name="All events of this resource")).to_be_visible()
    shoot(page, "event-detail")
    page.get_by_role("link", name=re.compile(r"arn:aws:aoss:.*:collection")).click()
    expect(page.get_by_role("heading", name=COLLECTION)).to_be_visible()


def test_downloads_match_lookup_events(page, console_server, shoot) -> None:  # type: ignore[no-untyped-def]
    nav(page, "Event history")
    filter_events(page, "EventName", "CreateSecurityPolicy")
    expected = [r["eventID"] for r in lookup(console_server, "EventName", "CreateSecurityPolicy")]
    assert len(expected) >= 2  # the encryption policy refused once, then created; the network one
    with page.expect_download() as csv_download:
        page.get_by_role("link", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(open(csv_download.value.path(), encoding="utf-8")
                                           .read())))
    assert [row["Event ID"] for row in rows] == expected
    assert {row["Event name"] for row in rows} == {"CreateSecurityPolicy"}
    assert csv_download.value.suggested_filename.endswith(".csv")
    csv_done = page.locator("#export-progress-csv").get_by_test_id("export-done")
    expect(csv_done).to_contain_text(f"{len(expected)} event")
    shoot(page, "event-history-downloaded")
    with page.expect_download() as json_download:
        page.get_by_role("link", name="Download JSON").click()
    records = json.loads(open(json_download.value.path(), encoding="utf-8").read())["Records"]
    assert records == lookup(console_server, "EventName", "CreateSecurityPolicy")
    # each download reports its own progress, never the other's
    json_done = page.locator("#export-progress-json").get_by_test_id("export-done")
    expect(json_done).to_contain_text(f"{len(records)} event")


def test_a_typed_start_is_used_and_back_shows_the_filter_of_the_results(
        page, console_server) -> None:  # type: ignore[no-untyped-def]
    nav(page, "Event history")
    filter_events(page, "EventName", "CreateSecurityPolicy", "1d")
    shown = page.get_by_label("Start (UTC)").input_value()
    later = shown[:11] + "23:59:58"  # the window's first day, just before its midnight
    page.get_by_label("Start (UTC)").fill(later)
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_label("Time range")).to_have_value("custom")
    expect(page.get_by_label("Start (UTC)")).to_have_value(later)
    page.go_back()
    expect(page.get_by_label("Time range")).to_have_value("1d")
    expect(page.get_by_label("Value", exact=True)).to_have_value("CreateSecurityPolicy")


def test_trails(page, console_server, shoot) -> None:  # type: ignore[no-untyped-def]
    subprocess.run([sys.executable, "-m", "searchtrail.cli", "buckets", "create", "audit-logs",
                    "--data-dir", str(console_server.data_dir)], check=True, capture_output=True)
    nav(page, "Trails")
    page.get_by_role("link", name="Create trail").click()
    page.get_by_label("Trail name").fill("audit")
    page.get_by_label("Bucket").fill("audit-logs")
    shoot(page, "trail-create")
    page.get_by_role("button", name="Create trail").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Logging started")
    for _ in range(30):  # the delivery interval is one second
        page.get_by_role("link", name="Refresh").click()
        if "_CloudTrail_" in page.get_by_test_id("trail-files").inner_text():
            break
        page.wait_for_timeout(500)
    expect(page.get_by_test_id("trail-files")).to_contain_text("_CloudTrail_")
    expect(page.get_by_test_id("trail-status")).to_contain_text("UTC")
    # the page's own calls are records the trail has not delivered yet, or it has them all
    expect(page.get_by_test_id("trail-backlog")).to_have_text(
        re.compile(r"Nothing|Oldest record \d+ s old"))
    shoot(page, "trail-detail")
    page.get_by_role("button", name="Stop logging").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Logging stopped")
    nav(page, "Trails")
    expect(page.get_by_test_id("trails-table")).to_contain_text("audit")
    shoot(page, "trails")


def test_a_failed_sign_in_shows_up_as_a_console_login_failure(page, browser, console_server,  # type: ignore[no-untyped-def]
                                                              shoot) -> None:
    stranger = browser.new_context(viewport={"width": 1280, "height": 800})
    other = stranger.new_page()
    other.goto(console_server.endpoint + "/console/signin")
    other.get_by_label("Password").fill("Wrong-Pa55word")
    other.get_by_role("button", name="Sign in").click()
    expect(other.get_by_test_id("signin-error")).to_contain_text("incorrect")
    shoot(other, "sign-in-failed")
    stranger.close()

    nav(page, "Event history")
    filter_events(page, "EventName", "ConsoleLogin")
    newest = page.get_by_test_id("events-table").get_by_role("link", name="ConsoleLogin").first
    newest.click()
    record = json.loads(page.get_by_test_id("event-record").inner_text())
    assert record["responseElements"] == {"ConsoleLogin": "Failure"}
    assert record["errorMessage"] == "Failed authentication"
    assert record["eventType"] == "AwsConsoleSignIn"
    expect(page.get_by_test_id("event-summary")).to_contain_text("Failed authentication")
    shoot(page, "console-login-failure")
    failures = [r for r in lookup(console_server, "EventName", "ConsoleLogin")
                if r["responseElements"] == {"ConsoleLogin": "Failure"}]
    assert record["eventID"] in [r["eventID"] for r in failures]


def test_region_switch_and_sign_out(page, console_server, shoot) -> None:  # type: ignore[no-untyped-def]
    page.get_by_label("Region").select_option("eu-west-1")
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_label("Region")).to_have_value("eu-west-1")
    nav(page, "Collections")
    expect(page.get_by_test_id("collections-table")).to_contain_text("No collections")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/signin"))
    page.goto(console_server.endpoint + "/console/collections")
    expect(page).to_have_url(re.compile(r"/console/signin\?next="))
