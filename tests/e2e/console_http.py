"""A console user over plain HTTP (requests): signs in, reads the CSRF token, posts forms.

Shared by the functional console tests and the browser suite's set-up.
"""

from __future__ import annotations

import re
import subprocess
import sys

import requests

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class ConsoleUser:
    def __init__(self, endpoint: str, verify: str | bool = True) -> None:
        self.endpoint = endpoint
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only: no proxies, and our own CA bundle if given
        self.http.verify = verify
        self.csrf = ""

    def url(self, path: str) -> str:
        return self.endpoint + path

    def sign_in(self, password: str, *, user: str | None = None, account: str = "",
                user_agent: str = "console-tests") -> requests.Response:
        form = self.http.get(self.url("/console/signin"))
        token = TOKEN.search(form.text).group(1)
        answer = self.http.post(self.url("/console/signin"), headers={"User-Agent": user_agent},
                                data={"csrf_token": token, "kind": "iam" if user else "root",
                                      "user": user or "", "account": account,
                                      "password": password}, allow_redirects=False)
        if answer.status_code == 303:
            self.refresh_token()
        return answer

    def refresh_token(self) -> str:
        page = self.http.get(self.url("/console/events?range=1h"))
        found = TOKEN.search(page.text)
        self.csrf = found.group(1) if found else ""
        return self.csrf

    def get(self, path: str, **kwargs) -> requests.Response:  # type: ignore[no-untyped-def]
        return self.http.get(self.url(path), **kwargs)

    def post(self, path: str, data: dict, *, token: bool = True,
             **kwargs) -> requests.Response:  # type: ignore[no-untyped-def]
        form = {"csrf_token": self.csrf, **data} if token else dict(data)
        kwargs.setdefault("allow_redirects", False)
        return self.http.post(self.url(path), data=form, **kwargs)


def set_console_password(data_dir: str, password: str, *, user: str | None = None) -> None:
    """`searchtrail iam set-console-password`, the password on stdin."""
    args = [user] if user else ["--root"]
    subprocess.run([sys.executable, "-m", "searchtrail.cli", "iam", "set-console-password",
                    *args, "--data-dir", data_dir], input=password + "\n", text=True,
                   check=True, capture_output=True)


ROOT_PASSWORD = "Root-Pa55word!"
USER_PASSWORD = "User-Pa55word!"


def console_server_fixture(name: str):  # type: ignore[no-untyped-def]
    """A module-scoped fixture: a server of its own whose root has ROOT_PASSWORD."""
    import pytest

    from tests.functional.server import ServerProcess

    @pytest.fixture(scope="module")
    def console_server(tmp_path_factory):  # type: ignore[no-untyped-def]
        process = ServerProcess(tmp_path_factory.mktemp(name) / "data").start()
        set_console_password(str(process.data_dir), ROOT_PASSWORD)
        yield process
        process.stop()

    return console_server
