"""The searchtrail command against a real data directory and server: env, iam, events lookup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError

from bench.servers import stop_process
from tests.clients import env_exports
from tests.needs import file_modes_binding


def searchtrail(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "searchtrail", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


def test_credentials_file_is_private_and_in_default_profile(server) -> None:
    path = server.data_dir / "credentials"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    text = path.read_text()
    assert text.startswith("[default]\n")
    assert "aws_access_key_id = AKIA" in text


def test_env_prints_exports_that_boto3_and_the_cli_use(server) -> None:
    result = searchtrail("env", "--data-dir", str(server.data_dir))
    assert result.returncode == 0, result.stderr
    exports = env_exports(result.stdout)
    # The server was started with --port: env names that port without being told it.
    for service in ("OPENSEARCHSERVERLESS", "CLOUDTRAIL", "STS", "IAM"):
        assert exports[f"AWS_ENDPOINT_URL_{service}"] == f"http://127.0.0.1:{server.port}"
    assert exports["AWS_ENDPOINT_URL_S3"] == f"http://127.0.0.1:{server.port}/_s3"
    assert exports["AWS_ACCESS_KEY_ID"] == server.credentials()[0]
    assert "AWS_CA_BUNDLE" not in exports  # plain HTTP
    aws = subprocess.run([sys.executable, "-m", "awscli", "opensearchserverless",
                          "list-collections", "--output", "json"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, **exports, "AWS_CONFIG_FILE": "/dev/null",
                                          "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    assert aws.returncode == 0, aws.stderr
    assert "collectionSummaries" in json.loads(aws.stdout)


def test_env_of_a_stopped_server_still_prints_its_exports_and_warns(fresh_server) -> None:
    server = fresh_server.start()
    running = searchtrail("env", "--data-dir", str(server.data_dir))
    assert running.returncode == 0 and running.stderr == ""
    server.stop()
    stopped = searchtrail("env", "--data-dir", str(server.data_dir))
    assert stopped.returncode == 0
    assert stopped.stdout == running.stdout  # the last server's address, still evaluable
    assert f"nothing answers at http://127.0.0.1:{server.port}" in " ".join(stopped.stderr.split())


def test_serve_on_port_0_takes_a_free_port_and_env_names_it(tmp_path) -> None:
    data_dir = tmp_path / "data"
    process = subprocess.Popen([sys.executable, "-m", "searchtrail", "serve", "--port", "0",
                                "--data-dir", str(data_dir)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        banner = process.stdout.readline()  # the first line, printed once the port is bound
        assert banner.startswith("searchtrail listening on http://127.0.0.1:"), banner
        url = banner.split()[-1]
        assert not url.endswith(":0")
        assert process.stdout.readline().startswith(f"web console at {url}/console; ")
        exports = searchtrail("env", "--data-dir", str(data_dir)).stdout
        assert f"export AWS_ENDPOINT_URL_OPENSEARCHSERVERLESS={url}\n" in exports
        deadline = time.monotonic() + 30
        while True:  # the port is bound before the app has started: poll until it answers
            try:
                with urllib.request.urlopen(url + "/_searchtrail/health", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "never answered"
                time.sleep(0.05)
    finally:
        stop_process(process)
        process.stdout.close()


def test_env_without_credentials_explains_what_to_do(tmp_path) -> None:
    result = searchtrail("env", "--data-dir", str(tmp_path))
    assert result.returncode == 1
    assert "searchtrail serve" in result.stderr


def test_serve_refuses_a_store_it_cannot_write(fresh_server) -> None:
    server = fresh_server.start()
    server.stop()
    (server.data_dir / "searchtrail.sqlite3").chmod(0o400)
    command = file_modes_binding([sys.executable, "-m", "searchtrail", "serve", "--port", "0",
                                  "--data-dir", str(server.data_dir)])
    run = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "listening" not in run.stdout
    assert "attempt to write a readonly database" in " ".join(run.stderr.split())


def test_serve_on_a_data_dir_it_cannot_write_says_so_in_a_line(tmp_path) -> None:
    """An existing data dir this user cannot write ended in a 60-line traceback (the store
    file's creation raised PermissionError, which no handler took)."""
    data_dir = tmp_path / "locked"
    data_dir.mkdir(mode=0o555)
    try:
        command = file_modes_binding([sys.executable, "-m", "searchtrail", "serve", "--port",
                                      "0", "--data-dir", str(data_dir)])
        run = subprocess.run(command, capture_output=True, text=True, timeout=60)
    finally:
        data_dir.chmod(0o700)
    told = " ".join(run.stderr.split())
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr and "Permission denied" in told, told
    assert "must be writable by this user" in told


def test_version_names_the_release_and_its_store_schemas() -> None:
    import re

    from searchtrail import __version__

    run = searchtrail("--version")
    assert run.returncode == 0, run.stderr
    assert re.fullmatch(rf"searchtrail {re.escape(__version__)} \(store schema: SQLite \d+, "
                        r"PostgreSQL \d+\)\n", run.stdout), run.stdout


def test_serve_warns_of_a_data_dir_open_to_other_users(tmp_path) -> None:
    from tests.functional.server import ServerProcess

    data_dir = tmp_path / "shared"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)  # whatever the umask
    server = ServerProcess(data_dir).start()
    try:
        told = " ".join(server.log().split())
        assert f"warning: {data_dir} is open to other users (mode 755)" in told, told
        assert f"chmod 700 {data_dir}" in told
    finally:
        server.stop()
    data_dir.chmod(0o700)
    again = ServerProcess(data_dir).start()
    try:
        assert "open to other users" not in again.log()
    finally:
        again.stop()


def test_lookup_and_accounts_list_read_a_copy_of_the_store_this_user_cannot_write(fresh_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An auditor's read-only copy: only `trail validate` read it; `events lookup` and
    `accounts list` failed with "unable to open database file"."""
    import shutil

    server = fresh_server.start()
    server.client("opensearchserverless").list_collections()
    account = server.client("sts").get_caller_identity()["Account"]
    server.stop()  # a clean stop leaves the whole store in its file
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(server.data_dir / "searchtrail.sqlite3", copy / "searchtrail.sqlite3")
    (copy / "searchtrail.sqlite3").chmod(0o400)
    copy.chmod(0o500)
    try:
        looked_up = subprocess.run(file_modes_binding(
            [sys.executable, "-m", "searchtrail", "events", "lookup", "--output", "json",
             "--attribute", "EventName=ListCollections", "--data-dir", str(copy)]),
            capture_output=True, text=True, timeout=60)
        listed = subprocess.run(file_modes_binding(
            [sys.executable, "-m", "searchtrail", "accounts", "list", "--data-dir", str(copy)]),
            capture_output=True, text=True, timeout=60)
    finally:
        copy.chmod(0o700)
    assert looked_up.returncode == 0, looked_up.stderr
    [record] = json.loads(looked_up.stdout)["Records"]
    assert record["eventName"] == "ListCollections"
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == [account, "(default)"]


def test_validate_refuses_an_unwritable_store_whose_last_commits_are_in_its_log(tmp_path) -> None:
    """Such a log can be read only by a process that may write beside it: validating without
    it would check against an older store, so the command says how to make a usable copy."""
    import sqlite3

    store = tmp_path / "searchtrail.sqlite3"
    writer = sqlite3.connect(store, isolation_level=None)
    writer.execute("PRAGMA journal_mode = WAL")
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("CREATE TABLE kept (x)")
    writer.execute("INSERT INTO kept VALUES (1)")  # in the log only: never checkpointed
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("searchtrail.sqlite3", "searchtrail.sqlite3-wal"):
        (copy / name).write_bytes((tmp_path / name).read_bytes())
        (copy / name).chmod(0o400)
    writer.close()
    copy.chmod(0o500)
    try:
        run = subprocess.run(file_modes_binding(
            [sys.executable, "-m", "searchtrail", "trail", "validate", "--trail-arn",
             "arn:aws:cloudtrail:us-east-1:111122223333:trail/t", "--start-time",
             "2026-01-01T00:00:00Z", "--data-dir", str(copy)]),
            capture_output=True, text=True, timeout=60)
    finally:
        copy.chmod(0o700)
    said = " ".join(run.stderr.split())
    assert run.returncode == 255, run.stdout + run.stderr  # as the AWS CLI: 1 is INVALID files
    assert "its write-ahead log searchtrail.sqlite3-wal holds commits" in said, said
    assert "sqlite3 searchtrail.sqlite3 .backup COPY" in said, said


def test_a_store_a_newer_searchtrail_wrote_is_refused(fresh_server) -> None:
    import sqlite3

    server = fresh_server.start()
    server.stop()
    store = sqlite3.connect(server.data_dir / "searchtrail.sqlite3")
    store.execute("PRAGMA user_version = 999")
    store.commit()
    store.close()
    for command in (["accounts", "list"], ["serve", "--port", "0"]):
        run = searchtrail(*command, "--data-dir", str(server.data_dir))
        assert run.returncode == 1, run.stdout + run.stderr
        assert "written by a newer searchtrail" in " ".join(run.stderr.split())


def test_a_command_leaves_an_older_schema_to_the_server(fresh_server) -> None:
    """A command of a newer version beside an older server still running on the store never
    migrates it under that server."""
    import sqlite3

    server = fresh_server.start()
    server.stop()
    store = sqlite3.connect(server.data_dir / "searchtrail.sqlite3")
    (newest,) = store.execute("PRAGMA user_version").fetchone()
    store.execute(f"PRAGMA user_version = {newest - 1}")  # as if the last migration were new
    store.commit()
    run = searchtrail("accounts", "list", "--data-dir", str(server.data_dir))
    assert run.returncode == 1 and "start this version's `searchtrail serve`" in " ".join(
        run.stderr.split())
    assert store.execute("PRAGMA user_version").fetchone() == (newest - 1,)
    store.close()


def test_env_set_up_works_in_a_shell_with_another_session_and_profile(server) -> None:
    shell = ('eval "$("$PYTHON" -m searchtrail env --data-dir "$DATA")" && '
             '"$PYTHON" -m awscli sts get-caller-identity --output json')
    run = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHON": sys.executable,
                              "DATA": str(server.data_dir), "AWS_SESSION_TOKEN": "left-over",
                              "AWS_PROFILE": "prod", "AWS_CONFIG_FILE": "/dev/null",
                              "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["Arn"].endswith(":root")


@pytest.mark.parametrize("content", [b"garbage\n", b"", b"[default]\naws_access_key_id = A\n",
                                     b"\xff\xfe"])
def test_a_broken_or_lost_credentials_file_is_told_and_mended(fresh_server, content) -> None:
    server = fresh_server.start()
    server.stop()
    original = server.credentials()
    path = server.data_dir / "credentials"
    path.write_bytes(content)
    broken = searchtrail("env", "--data-dir", str(server.data_dir))
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert "accounts root-key" in broken.stderr
    path.unlink()
    mended = searchtrail("accounts", "root-key", "--data-dir", str(server.data_dir))
    assert mended.returncode == 0, mended.stderr
    key = json.loads(mended.stdout)["AccessKey"]
    assert key["AccessKeyId"] != original[0]
    exports = env_exports(searchtrail("env", "--data-dir", str(server.data_dir)).stdout)
    assert exports["AWS_ACCESS_KEY_ID"] == key["AccessKeyId"]
    server.start()
    sts = server.client("sts", key=(key["AccessKeyId"], key["SecretAccessKey"]))
    assert sts.get_caller_identity()["Arn"].endswith(":root")


def test_a_root_key_past_the_quota_says_where_credentials_are(fresh_server) -> None:
    """A second node of a shared store has no credentials file: root-key works once there
    (two keys), then says to copy the file, not only that a quota was hit."""
    server = fresh_server.start()
    server.stop()
    (server.data_dir / "credentials").unlink()
    first = searchtrail("accounts", "root-key", "--data-dir", str(server.data_dir))
    assert first.returncode == 0, first.stderr
    second = searchtrail("accounts", "root-key", "--data-dir", str(server.data_dir))
    said = " ".join(second.stderr.split())
    assert second.returncode == 1, second.stdout + second.stderr
    assert "LimitExceeded: Cannot exceed quota for AccessKeysPerUser: 2" in said, said
    assert "Copy the credentials file of a node that has one" in said


def test_iam_user_keys_sign_calls_recorded_as_that_user(server) -> None:
    created = searchtrail("iam", "create-user", "alice", "--data-dir", str(server.data_dir))
    assert created.returncode == 0, created.stderr
    user = json.loads(created.stdout)["User"]
    key = json.loads(searchtrail("iam", "create-access-key", "alice", "--data-dir",
                                 str(server.data_dir)).stdout)["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["SecretAccessKey"]) == 40

    aoss = server.client("opensearchserverless", key=(key["AccessKeyId"], key["SecretAccessKey"]))
    with pytest.raises(ClientError) as denied:  # a new user has no policy: implicit deny
        aoss.list_collections()
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    server.client("iam").put_user_policy(UserName="alice", PolicyName="read", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "aoss:List*",
                                                 "Resource": "*"}]}))
    request_id = aoss.list_collections()["ResponseMetadata"]["RequestId"]
    events = server.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "Username", "AttributeValue": "alice"}])["Events"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    mine = [r for r in records if r["requestID"] == request_id]
    assert len(mine) == 1
    identity = mine[0]["userIdentity"]
    assert identity == {"type": "IAMUser", "principalId": user["UserId"], "arn": user["Arn"],
                        "accountId": identity["accountId"], "accessKeyId": key["AccessKeyId"],
                        "userName": "alice"}
    assert events[0]["Username"] == "alice"


def test_iam_errors_are_clear(server) -> None:
    again = searchtrail("iam", "create-user", "bob", "--data-dir", str(server.data_dir))
    assert again.returncode == 0
    duplicate = searchtrail("iam", "create-user", "bob", "--data-dir", str(server.data_dir))
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    missing = searchtrail("iam", "create-access-key", "nobody", "--data-dir", str(server.data_dir))
    assert missing.returncode == 1
    assert "cannot be found" in missing.stderr


def test_events_lookup_pages_for_the_user(server) -> None:
    aoss = server.client("opensearchserverless", region="us-west-1")
    ids = [aoss.list_collections()["ResponseMetadata"]["RequestId"] for _ in range(60)]
    result = searchtrail("events", "lookup", "--attribute", "EventName=ListCollections",
                         "--region", "us-west-1", "--max-items", "55", "--output", "json",
                         "--data-dir", str(server.data_dir))
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)["Records"]
    assert [r["requestID"] for r in records] == list(reversed(ids))[:55]
    table = searchtrail("events", "lookup", "--region", "us-west-1", "--max-items", "3",
                        "--data-dir", str(server.data_dir))
    assert table.returncode == 0 and "ListCollections" in table.stdout


@pytest.mark.parametrize("args", [["--attribute", "Colour=red"], ["--start-time", "yesterday"],
                                  ["--output", "xml"],
                                  ["--start-time", "2026-12-07T07:31:00Z",
                                   "--end-time", "2026-12-07T07:30:00Z"]])
def test_events_lookup_rejects_bad_options(server, args) -> None:
    result = searchtrail("events", "lookup", *args, "--data-dir", str(server.data_dir))
    assert result.returncode == 2
    assert "error" in result.stderr


def test_readme_boto3_example_runs_as_pasted(fresh_server) -> None:
    server = fresh_server.start()  # its own server: the example's names must be free
    readme = (os.path.dirname(__file__) + "/../../README.md")
    text = open(readme).read()
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(env_exports(searchtrail("env", "--data-dir", str(server.data_dir)).stdout))
    env.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    run = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True,
                         timeout=60, env=env)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "CREATING"
    assert lines[1].startswith("CreateCollection arn:aws:iam::")


def test_accounts_are_isolated(server) -> None:
    created = searchtrail("accounts", "create", "--data-dir", str(server.data_dir))
    assert created.returncode == 0, created.stderr
    other = json.loads(created.stdout)
    listed = searchtrail("accounts", "list", "--data-dir", str(server.data_dir)).stdout
    assert other["AccountId"] in listed and "(default)" in listed
    key = (other["AccessKey"]["AccessKeyId"], other["AccessKey"]["SecretAccessKey"])
    aoss = server.client("opensearchserverless", region="me-south-1", key=key)
    request_id = aoss.list_collections()["ResponseMetadata"]["RequestId"]
    mine = server.client("cloudtrail", region="me-south-1", key=key).lookup_events()["Events"]
    assert [json.loads(e["CloudTrailEvent"])["requestID"] for e in mine
            if e["EventName"] == "ListCollections"] == [request_id]
    record = json.loads(mine[-1]["CloudTrailEvent"])
    assert record["userIdentity"]["arn"] == f"arn:aws:iam::{other['AccountId']}:root"
    theirs = server.client("cloudtrail", region="me-south-1").lookup_events()["Events"]
    assert request_id not in {json.loads(e["CloudTrailEvent"])["requestID"] for e in theirs}


@pytest.mark.parametrize(("args", "env", "told"), [
    (["--log-level", "loud"], {}, "log_level 'loud': give debug, info, warning or error"),
    (["--port", "70000"], {}, "port 70000: give a TCP port from 1 to 65535"),
    ([], {"SEARCHTRAIL_WORKERS": "abc"}, "workers 'abc': give a whole number"),
    (["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"], {},
     "cannot serve HTTPS with --tls-cert /nonexistent.pem and --tls-key /nonexistent.key: "
     "No such file or directory"),
    (["--tls-cert", "{dir}/junk.pem", "--tls-key", "{dir}/junk.pem"], {},
     "they are not a PEM certificate and its private key"),
])
def test_serve_refuses_bad_settings_with_a_message_not_a_traceback(tmp_path, args, env,
                                                                   told) -> None:
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    data_dir = tmp_path / "data"
    result = searchtrail("serve", "--data-dir", str(data_dir),
                         *(arg.format(dir=tmp_path) for arg in args), env=env)
    assert result.returncode == 2, result.stderr
    assert told in result.stderr  # on one line, however long: whoever reads a log copies it
    assert "Traceback" not in result.stderr
    assert not (data_dir / "endpoint.json").exists()  # nothing advertised that never listened


@pytest.mark.parametrize("command", [
    ["iam", "create-user", "alice"],
    ["events", "lookup"],
    ["trail", "validate", "--trail-arn", "arn:aws:cloudtrail:us-east-1:123456789012:trail/t",
     "--start-time", "2026-01-01T00:00:00Z"],
])
def test_commands_on_a_data_dir_without_a_store_say_so_and_create_none(tmp_path,
                                                                        command) -> None:
    """They used to make an empty store there, then report what it lacked (no default
    account, no such trail) instead."""
    data_dir = tmp_path / "nothing-here"
    result = searchtrail(*command, "--data-dir", str(data_dir))
    # trail validate exits as the AWS CLI's validate-logs: 1 only for INVALID files
    assert result.returncode == (255 if command[0] == "trail" else 1), result.stderr
    assert f"no store in {data_dir}: give the --data-dir of a server" in result.stderr
    assert "SEARCHTRAIL_DATABASE_URL" in result.stderr
    assert not data_dir.exists()


def test_validate_exits_255_when_it_cannot_validate(server) -> None:
    """As `aws cloudtrail validate-logs`: 1 says files are INVALID, so a missing trail must not
    say 1 (a script alarming on tampering would read it as such)."""
    result = searchtrail("trail", "validate", "--trail-arn",
                         "arn:aws:cloudtrail:us-east-1:123456789012:trail/never-made",
                         "--start-time", "2026-01-01T00:00:00Z", "--data-dir", str(server.data_dir))
    assert result.returncode == 255, result.stderr
    assert "A trail could not be found for arn:aws:cloudtrail:us-east-1:123456789012:trail/" \
        "never-made" in " ".join(result.stderr.split())


def test_iam_create_user_refuses_a_name_the_api_could_not_manage(server) -> None:
    result = searchtrail("iam", "create-user", "bad name!", "--data-dir", str(server.data_dir))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ValidationError: 1 validation error detected: Value 'bad name!' at 'UserName' failed "
        "to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+")
    users = server.client("iam").list_users()["Users"]
    assert "bad name!" not in [user["UserName"] for user in users]


def test_help_shows_each_options_default() -> None:
    """rich's markup used to swallow the "[default: ...]" that ends an option's help."""
    serve = searchtrail("serve", "--help", env={"COLUMNS": "100"}).stdout
    for shown in ("Port [default: 4680]", "Address to listen on [default: 127.0.0.1]",
                  "Data directory [default: ./.searchtrail]"):
        assert shown in serve, serve
    validate = " ".join(searchtrail("trail", "validate", "--help").stdout.split())
    assert "Data directory [default: ./.searchtrail]" in validate, validate


def test_env_refuses_a_region_the_server_would_refuse(server) -> None:
    result = searchtrail("env", "--region", "bogus", "--data-dir", str(server.data_dir))
    assert result.returncode == 2 and result.stdout == ""
    assert "--region 'bogus' is not a region name such as us-east-1" in result.stderr


def test_a_second_server_stopped_while_it_starts_hands_the_endpoint_back(tmp_path) -> None:
    """Stopped before it served (SIGTERM while it built its app), it left `env` pointing at
    its own port, where nothing answers."""
    from tests.functional.server import ServerProcess

    first = ServerProcess(tmp_path / "data").start()
    second = subprocess.Popen([sys.executable, "-m", "searchtrail", "serve", "--port", "0",
                               "--data-dir", str(first.data_dir)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert second.stdout is not None
        banner = second.stdout.readline()  # printed once its port is advertised
        assert banner.startswith("searchtrail listening on "), banner
        second.terminate()
        second.wait(timeout=60)
        exports = env_exports(searchtrail("env", "--data-dir", str(first.data_dir)).stdout)
        assert exports["AWS_ENDPOINT_URL_STS"] == first.endpoint
    finally:
        stop_process(second)
        first.stop()


def test_a_second_server_on_a_data_dir_says_another_one_answers_there(tmp_path) -> None:
    from tests.functional.server import ServerProcess

    first = ServerProcess(tmp_path / "data").start()
    second = ServerProcess(tmp_path / "data")
    try:
        second.start()
        told = " ".join(second.log().split())
        assert (f"warning: another server on {first.data_dir} answers at {first.endpoint}; "
                f"both share its store. `searchtrail env` now points at this one, "
                f"{second.endpoint}, and at that one again once this one stops.") in told, told
        assert "another server" not in first.log()
        second.stop()  # the first still serves the data dir: env points back at it
        exports = env_exports(searchtrail("env", "--data-dir", str(first.data_dir)).stdout)
        assert exports["AWS_ENDPOINT_URL_STS"] == first.endpoint
    finally:
        second.stop()
        first.stop()


def test_a_newer_server_does_not_upgrade_the_store_under_one_still_running(tmp_path) -> None:
    """Started beside a server that answers on the data dir, a newer version upgraded the
    store's schema at once: an older server there then failed every call (a column it did
    not know) while its health still said ok."""
    import sqlite3

    from tests.functional.server import ServerProcess, free_port

    first = ServerProcess(tmp_path / "data").start()
    store = sqlite3.connect(first.data_dir / "searchtrail.sqlite3", timeout=30)
    try:
        (newest,) = store.execute("PRAGMA user_version").fetchone()
        store.execute(f"PRAGMA user_version = {newest - 1}")  # as if the first were older
        store.commit()
        run = searchtrail("serve", "--data-dir", str(first.data_dir), "--port",
                          str(free_port()))
        told = " ".join(run.stderr.split())
        assert run.returncode == 1, told
        assert (f"another server on {first.data_dir} answers at {first.endpoint}" in told
                and "Stop it, then start this one, which upgrades the store" in told), told
        assert "Traceback" not in told
        assert store.execute("PRAGMA user_version").fetchone() == (newest - 1,)
        store.execute(f"PRAGMA user_version = {newest}")
        store.commit()
    finally:
        store.close()
        first.stop()


@pytest.mark.parametrize("command, told", [
    (["events", "lookup", "--region", "nowhere"], "not a region name"),
    (["events", "lookup", "--account", "000000000000"], "no account 000000000000"),
    (["buckets", "create", "never-made", "--account", "000000000000"], "no account"),
    (["trail", "validate", "--trail-arn", "arn:aws:cloudtrail:nowhere:111122223333:trail/t",
      "--start-time", "2026-01-01T00:00:00Z"], "'nowhere' is not a region name"),
])
def test_an_unknown_region_or_account_is_told_not_answered_as_empty(server, command,
                                                                     told) -> None:
    run = searchtrail(*command, "--data-dir", str(server.data_dir))
    assert run.returncode in (1, 2), run.stdout + run.stderr
    assert told in " ".join(run.stderr.split()) and "Traceback" not in run.stderr


@pytest.mark.parametrize("jwks", ['{"keys":[{"kty":"oct","k":"zz"}]}', '{"keys":[]}', '[1]',
                                  '{"keys":[{"kty":"RSA","n":"!!","e":"AQAB"}]}'])
def test_an_oidc_key_set_no_token_could_be_verified_with_is_refused(server, tmp_path,
                                                                    jwks) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(jwks)
    run = searchtrail("iam", "set-oidc-jwks", "--provider-arn",
                      "arn:aws:iam::111122223333:oidc-provider/idp.example.com", "--jwks-file",
                      str(path), "--data-dir", str(server.data_dir))
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert "error:" in run.stderr
