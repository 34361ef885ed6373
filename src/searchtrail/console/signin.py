"""Console sign-in: check the password, throttle failures, and record every attempt as a
ConsoleLogin event in the same transaction that stores a new session.

A throttled attempt checks no password and is recorded at most once per THROTTLED_RECORD_SECONDS
for its account and address (a flood of them would otherwise fill the store with records, and
a full store stops every API call). An attempt on an account that does not exist is answered
as slowly as a wrong password (its check runs on a decoy) and throttled as one (its failures
kept in memory, none stored)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from searchtrail.audit.record import RecordBuilder
from searchtrail.auth.identities import Identities
from searchtrail.console.passwords import PasswordCheck, stored_hash
from searchtrail.console.ratelimit import SignInThrottle, Window
from searchtrail.console.readers import ThreadConnections
from searchtrail.console.sessions import ConsoleSession, SessionStore
from searchtrail.console.signin_events import (
    SIGN_IN_ENRICHERS,
    SIGN_IN_REGION,
    SIGN_IN_SOURCE,
    UNKNOWN_USER,
    WRONG_PASSWORD,
    SignInContext,
    SignInOperation,
    root_identity,
    unknown_user_identity,
    user_identity,
)
from searchtrail.gateway.aws import ConsoleCalls
from searchtrail.store.api import StoreUnavailable
from searchtrail.store.sqlite.resources import SqliteResources

log = logging.getLogger("searchtrail.console")

ACCOUNT_ID = re.compile(r"^\d{12}$")
THROTTLED_RECORD_SECONDS = 10.0
MAX_THROTTLED_REMEMBERED = 10_000
INCORRECT = "Your authentication information is incorrect. Please try again."
UNRECORDABLE = ("Signing in is unavailable: the audit store cannot record it right now. "
                "Try again later.")


@dataclass(frozen=True)
class SignInResult:
    token: str | None  # the new session's cookie value, on success
    status: int  # 303 signed in, 401 refused, 429 throttled
    message: str = ""  # what the person is told when refused


@dataclass(frozen=True)
class _Found:
    account_id: str | None  # None: no such account (nothing can be recorded)
    user: dict[str, Any] | None  # the IAM user; None for the root or an unknown name
    unknown_user: bool
    stored: dict[str, Any] | None  # the password hash to check against


class SignInService:
    def __init__(self, *, reads: ThreadConnections, calls: ConsoleCalls, sessions: SessionStore,
                 throttle: SignInThrottle, passwords: PasswordCheck) -> None:
        self._reads = reads
        self._calls = calls
        self._sessions = sessions
        self._throttle = throttle
        self._passwords = passwords
        self._records = RecordBuilder(SIGN_IN_ENRICHERS)
        # (account, address) -> when its last throttled attempt was recorded
        self._throttled_recorded: dict[tuple[str, str], float] = {}

    async def attempt(self, *, account_id: str, user_name: str | None, password: str,
                      scope: dict, user_agent: str, login_to: str) -> SignInResult:
        """``user_name`` None signs in the account's root; a blank account is the default one.

        Fails closed: when the attempt cannot be recorded, nobody is signed in."""
        try:
            return await self._attempt(account_id=account_id, user_name=user_name,
                                       password=password, scope=scope, user_agent=user_agent,
                                       login_to=login_to)
        except StoreUnavailable:
            log.error("console sign-in not recorded: the event store cannot write")
            return SignInResult(None, 503, UNRECORDABLE)

    async def _attempt(self, *, account_id: str, user_name: str | None, password: str,
                       scope: dict, user_agent: str, login_to: str) -> SignInResult:
        source_ip, host, tls = self._calls.caller(scope)
        found = await run_in_threadpool(self._find, account_id.strip(), user_name)
        account = found.account_id
        counted_as = account or account_id.strip()  # an unknown account: the id as typed
        wait, admission = await self._throttle.admitted(
            lambda: run_in_threadpool(self._windows, counted_as, user_name, source_ip))
        if account is None:  # nothing to record in: as slow as a wrong password, counted
            log.info("console sign-in for an unknown account", extra={"source_ip": source_ip})
            if admission is None:
                return _throttled(wait)
            try:
                await self._passwords.check(None, password)
                self._throttle.remember_failure(counted_as, user_name, source_ip)
            finally:
                admission.done()
            return SignInResult(None, 401, INCORRECT)
        ctx = SignInContext(request_id=str(uuid.uuid4()), source_ip=source_ip,
                            user_agent=user_agent, host=host, tls=tls, login_to=login_to)
        ctx.operation = SignInOperation()
        ctx.event_source = SIGN_IN_SOURCE
        ctx.region = SIGN_IN_REGION
        ctx.identity = (unknown_user_identity(account) if found.unknown_user else
                        root_identity(account) if found.user is None else
                        user_identity(account, found.user))
        if admission is None:
            if self._record_throttled(account, source_ip):
                ctx.failure = WRONG_PASSWORD
                await self._calls.write_record(ctx, self._records, account=account)
            return _throttled(wait)
        try:
            ok = await self._passwords.check(found.stored, password)
            ctx.success = ok and not found.unknown_user
            if not ctx.success:
                ctx.failure = UNKNOWN_USER if found.unknown_user else WRONG_PASSWORD
                await self._calls.write_record(
                    ctx, self._records, account=account,
                    also=lambda conn: self._throttle.failed(conn, account, user_name, source_ip))
                return SignInResult(None, 401, INCORRECT)
            token, session = self._sessions.new(account, found.user)

            def signed_in(conn: Any) -> None:
                self._sessions.save(conn, session)
                self._throttle.succeeded(conn, account, user_name)

            await self._calls.write_record(ctx, self._records, account=account, also=signed_in)
            return SignInResult(token, 303)
        finally:
            admission.done()

    def _record_throttled(self, account: str, source_ip: str) -> bool:
        """Whether this throttled attempt is recorded: the first for its account and address
        in THROTTLED_RECORD_SECONDS (not per user name: each new name the sender makes up
        would be recorded again)."""
        now = time.monotonic()
        key = (account, source_ip)
        last = self._throttled_recorded.get(key)
        if last is not None and now - last < THROTTLED_RECORD_SECONDS:
            return False
        if len(self._throttled_recorded) >= MAX_THROTTLED_REMEMBERED:
            self._throttled_recorded.clear()
        self._throttled_recorded[key] = now
        return True

    def _windows(self, account_id: str, user_name: str | None, source_ip: str) -> list[Window]:
        """On a worker thread, through that thread's own read connection."""
        return self._throttle.windows(self._reads.get(), account_id, user_name, source_ip)

    def _find(self, account_id: str, user_name: str | None) -> _Found:
        identities = Identities(SqliteResources(self._reads.get(), "", ""))
        if not account_id:
            account_id = identities.default_account() or ""
        if not ACCOUNT_ID.match(account_id) or not identities.account_exists(account_id):
            return _Found(None, None, False, None)
        if user_name is None:
            return _Found(account_id, None, False, stored_hash(identities, account_id, None))
        user = identities.get_user(account_id, user_name)
        if user is None:
            return _Found(account_id, None, True, None)
        return _Found(account_id, user, False, stored_hash(identities, account_id, user))

    async def sign_out(self, session: ConsoleSession) -> None:
        try:
            await self._sessions.end(session)
        except StoreUnavailable:  # the cookie is cleared anyway; the session expires on time
            log.error("console session not ended: the store cannot write")


def _throttled(wait: float) -> SignInResult:
    return SignInResult(None, 429, "Too many failed sign-in attempts. Wait "
                        f"{int(wait) + 1} seconds, then try again.")
