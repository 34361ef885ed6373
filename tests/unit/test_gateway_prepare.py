"""A login profile's password is hashed before its call's unit of work, on the password
threads: the ~35 ms of scrypt never holds the event loop or the batch other calls commit in
(at 1,000 read calls/s, two login-profile writes a second took their p99 from 4 to ~50 ms)."""

from __future__ import annotations

import asyncio
import configparser
import threading
from urllib.parse import urlencode

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench.callcost import raw_request
from searchtrail.app import build_app, ensure_default_account
from searchtrail.auth.password_threads import PASSWORD_THREADS
from searchtrail.config import load_settings

HOST = "127.0.0.1:4566"
PASSWORD = "Some-Pa55word!x"


def iam_request(credentials: Credentials, action: str, **params: str) -> bytes:
    """A signed IAM call (query protocol) as raw HTTP/1.1 bytes."""
    body = urlencode({"Action": action, "Version": "2010-05-08", **params}).encode()
    request = AWSRequest(method="POST", url=f"http://{HOST}/", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(credentials, "iam", "us-east-1").add_auth(request)
    head = [f"POST / HTTP/1.1\r\nHost: {HOST}\r\n"]
    head += [f"{name}: {value}\r\n" for name, value in request.headers.items()]
    head.append(f"Content-Length: {len(body)}\r\n\r\n")
    return "".join(head).encode() + body


def test_a_login_profiles_password_is_hashed_off_the_event_loop(tmp_path) -> None:
    settings = load_settings({"data_dir": tmp_path})
    ensure_default_account(settings)
    profile = configparser.ConfigParser()
    profile.read(settings.credentials_path)
    credentials = Credentials(profile["default"]["aws_access_key_id"],
                              profile["default"]["aws_secret_access_key"])
    app = build_app(settings)
    password_threads = app.aws_calls._registry._providers["iam"]._password_threads
    gate = threading.Event()

    async def call(action: str, **params: str) -> int:
        status, _, body = await app.aws_calls.respond(
            raw_request(iam_request(credentials, action, **params)))
        assert status == 200, body
        return status

    async def scenario() -> None:
        app.writer.start()
        try:
            await call("CreateUser", UserName="dana")
            # every password thread busy: the login profile's hash waits for one
            busy = [asyncio.ensure_future(password_threads.run(gate.wait, 30))
                    for _ in range(PASSWORD_THREADS)]
            creating = asyncio.ensure_future(
                call("CreateLoginProfile", UserName="dana", Password=PASSWORD))
            for _ in range(3):  # let it run up to where it waits: ahead of the next call
                await asyncio.sleep(0)
            await call("ListUsers")  # served meanwhile: the loop and the writer are free
            assert not creating.done(), "the login profile was made on the event loop"
            gate.set()
            assert await creating == 200
            await asyncio.gather(*busy)
            await call("UpdateLoginProfile", UserName="dana", Password=PASSWORD + "2")
        finally:
            gate.set()
            app.writer.stop()

    asyncio.run(scenario())
