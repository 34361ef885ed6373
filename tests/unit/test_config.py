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


def test_the_s3_timeout_reaches_the_trails_s3_client_and_must_be_positive(tmp_path) -> None:
    from searchtrail.installation import object_store

    settings = load_settings({"data_dir": tmp_path, "s3_endpoint_url": "http://127.0.0.1:9"},
                             environ={"SEARCHTRAIL_S3_TIMEOUT_SECONDS": "1.5"})
    config = object_store(settings).client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (1.5, 1.5)
    assert load_settings({"data_dir": tmp_path}, environ={}).s3_timeout_seconds == 5.0
    with pytest.raises(ValueError, match="s3_timeout_seconds '0': give how long delivery waits"):
        load_settings({"data_dir": tmp_path}, environ={"SEARCHTRAIL_S3_TIMEOUT_SECONDS": "0"})


@pytest.mark.parametrize("variable, value, told", [
    ("DELIVERY_INTERVAL", "0", "delivery_interval '0': give seconds between log file"),
    ("DIGEST_INTERVAL", "0", "digest_interval '0'"),
    ("MAX_BODY_BYTES", "-1", "max_body_bytes '-1'"),
    ("CLIENT_TIMEOUT_SECONDS", "nan", "client_timeout_seconds 'nan': give a finite number"),
    ("CAPACITY_WARNING_RATIO", "1.5", "capacity_warning_ratio '1.5'"),
    ("HOST", "", "host '': give the address to listen on"),
    ("DATA_DIR", "", "data_dir '': give the server's data directory"),
])
def test_variables_get_the_checks_flags_get(tmp_path, variable, value, told) -> None:
    with pytest.raises(ValueError) as error:
        load_settings({} if variable == "DATA_DIR" else {"data_dir": tmp_path},
                      environ={f"SEARCHTRAIL_{variable}": value})
    assert told in str(error.value)


@pytest.mark.parametrize("line, told", [
    ("host = 5", "host 5: give the address"),
    ("trusted_proxies = 5", "trusted_proxies 5: give a list"),
    ("tls_cert = 5", "tls_cert 5: give the path of a PEM file"),
    ("retention_days = 1.5", "retention_days 1.5: give a whole number"),
    ("workers = true", "workers True: give a whole number"),
    ('notification_webhooks = ["a"]', "notification_webhooks ['a']: give a table"),
    ("port = ", "not valid TOML"),
])
def test_a_files_wrong_types_are_told_by_name(tmp_path, line, told) -> None:
    (tmp_path / "searchtrail.toml").write_text(line + "\n")
    with pytest.raises(ValueError) as error:
        load_settings({"data_dir": tmp_path}, environ={})
    assert told in str(error.value)


def test_a_malformed_database_url_is_refused_without_repeating_it(tmp_path) -> None:
    with pytest.raises(ValueError) as error:
        load_settings({"data_dir": tmp_path},
                      environ={"SEARCHTRAIL_DATABASE_URL": "postgresql://u:hunter2@[bad/db"})
    assert "hunter2" not in str(error.value) and "database_url" in str(error.value)
