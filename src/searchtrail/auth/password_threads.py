"""Password hashing and checks (scrypt) off the event loop, on two threads of their own: a
run takes ~35 ms of CPU, which would stall every call on the loop, and 16 MiB, which the
thread that ran it keeps."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from searchtrail.auth.identities import hash_password

# Never more: on the web server's pool of ~40 threads, 40 console sign-ins at once took the
# server from 81 MB to 840 MB and it kept 726 MB. scrypt leaves the GIL, so two threads use
# both cores of a small host; work beyond them waits its turn.
PASSWORD_THREADS = 2
THREAD_NAME = "searchtrail-password"

Result = TypeVar("Result")


class PasswordThreads:
    def __init__(self, threads: int = PASSWORD_THREADS) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=THREAD_NAME)

    async def run(self, work: Callable[..., Result], *args: Any) -> Result:
        """``work(*args)`` on one of these threads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)

    async def hash(self, password: str) -> dict[str, Any]:
        """``hash_password(password)`` on one of these threads."""
        return await self.run(hash_password, password)
