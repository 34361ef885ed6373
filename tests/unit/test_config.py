"""Settings precedence: flags over SEARCHTRAIL_* variables over the TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from searchtrail.config import load_settings


def test_defaults(tmp_path) -> None:
    settings = load_settings({"data_dir": tmp_path}, environ={})
    assert (settings.host, settings.port, settings.clock_skew_seconds) == ("127.0.0.1", 4680, 300)
    assert settings.database_path == tmp_path / "searchtrail.sqlite3"
    assert settings.endpoint_url == "http://127.0.0.1:4680"


def test_flags_over_env_over_file(tmp_path) -> None:
    (tmp_path / "searchtrail.toml").write_text("port = 1111\nclock_skew_seconds = 60\n"
                                               "trusted_proxies = ['10.0.0.1']\n")
    settings = load_settings({"data_dir": tmp_path, "port": 3333},
                             environ={"SEARCHTRAIL_PORT": "2222",
                                      "SEARCHTRAIL_CLOCK_SKEW_SECONDS": "90"})
    assert settings.port == 3333
    assert settings.clock_skew_seconds == 90
    assert settings.trusted_proxies == ("10.0.0.1",)
    from_env = load_settings({"data_dir": tmp_path}, environ={"SEARCHTRAIL_PORT": "2222"})
    assert from_env.port == 2222 and from_env.clock_skew_seconds == 60


def test_unknown_file_keys_are_an_error(tmp_path) -> None:
    (tmp_path / "searchtrail.toml").write_text("prot = 1\n")
    with pytest.raises(ValueError, match="unknown setting"):
        load_settings({"data_dir": Path(tmp_path)}, environ={})


def test_workers_default_to_one_and_a_count_out_of_range_is_told(tmp_path) -> None:
    assert load_settings({"data_dir": tmp_path}, environ={}).workers == 1
    assert load_settings({"data_dir": tmp_path}, environ={"SEARCHTRAIL_WORKERS": "4"}).workers == 4
    (tmp_path / "searchtrail.toml").write_text("workers = 0\n")
    with pytest.raises(ValueError, match="workers 0: give a number of server processes from 1"):
        load_settings({"data_dir": tmp_path}, environ={})
