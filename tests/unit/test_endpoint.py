"""Where `searchtrail env` points clients: the recorded endpoint of a data directory."""

from __future__ import annotations

import json

import pytest

from searchtrail.config import load_settings
from searchtrail.endpoint import Endpoint, advertise, client_url, current


@pytest.mark.parametrize("host, url", [
    ("127.0.0.1", "http://127.0.0.1:4680"),
    ("0.0.0.0", "http://127.0.0.1:4680"),
    ("::", "http://[::1]:4680"),
    ("::1", "http://[::1]:4680"),
    ("search.internal", "http://search.internal:4680"),
])
def test_a_wildcard_listening_address_becomes_loopback_for_clients(tmp_path, host, url) -> None:
    assert client_url(load_settings({"data_dir": tmp_path, "host": host})) == url


def test_the_last_recorded_endpoint_wins_over_the_settings(tmp_path) -> None:
    settings = load_settings({"data_dir": tmp_path})
    assert current(settings) == Endpoint("http://127.0.0.1:4680")  # nothing recorded yet
    advertise(settings, 41234)
    advertise(settings, 41235)  # a later start replaces it
    assert current(settings) == Endpoint("http://127.0.0.1:41235")
    assert [path.name for path in tmp_path.iterdir()] == ["endpoint.json"]  # no temporary left


@pytest.mark.parametrize("content", ["", "{", "[]", '{"pid": 1}', '{"url": null}',
                                     '{"url": "ftp://x", "ca_bundle": 3}'])
def test_an_unreadable_record_falls_back_to_the_settings(tmp_path, content) -> None:
    settings = load_settings({"data_dir": tmp_path})
    settings.endpoint_path.write_text(content)
    assert current(settings) == Endpoint("http://127.0.0.1:4680")
