"""Console sessions: one random cookie token per sign-in. The store keeps only the token's
SHA-256 with who signed in, when the session ends, and the session's CSRF token."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from searchtrail.auth.identities import Identities, new_access_key_id
from searchtrail.auth.principals import Principal, SessionContext, root_principal, user_principal
from searchtrail.console.readers import ThreadConnections
from searchtrail.store.sqlite.resources import SqliteResources
from searchtrail.store.sqlite.writer import GroupCommitWriter

SESSION_KIND = "console-session"  # global scope (account "", region ""), key: the token's SHA-256
CONSOLE_CREDENTIAL = "ConsoleSignIn"  # Principal.credential_source of console sessions
ROOT_SESSION = timedelta(hours=1)  # AWS's console session lengths
USER_SESSION = timedelta(hours=12)


def token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ConsoleSession:
    key: str
    account_id: str
    kind: str  # Root | IAMUser
    user_name: str | None
    user_id: str | None
    access_key_id: str  # an ASIA… id naming the session in records (never a SigV4 key)
    created: int  # epoch seconds
    expires: int
    csrf: str

    @property
    def display_name(self) -> str:
        return "root" if self.kind == "Root" else (self.user_name or "")

    def expired(self, now: datetime) -> bool:
        return now.timestamp() >= self.expires


class SessionStore:
    """Sessions live in the resource store: written in the sign-in's own transaction, read
    through read-only connections (one per thread), ended by sign-out or expiry."""

    def __init__(self, reads: ThreadConnections, writer: GroupCommitWriter,
                 clock: Callable[[], datetime]) -> None:
        self._reads = reads
        self._writer = writer
        self._clock = clock

    def new(self, account_id: str, user: dict[str, Any] | None) -> tuple[str, ConsoleSession]:
        """A fresh token and its session (not stored yet: see ``save``)."""
        now = self._clock()
        token = secrets.token_urlsafe(32)
        lifetime = ROOT_SESSION if user is None else USER_SESSION
        session = ConsoleSession(
            key=token_key(token), account_id=account_id,
            kind="Root" if user is None else "IAMUser",
            user_name=None if user is None else user["UserName"],
            user_id=None if user is None else user["UserId"],
            access_key_id=new_access_key_id("ASIA"), created=int(now.timestamp()),
            expires=int((now + lifetime).timestamp()), csrf=secrets.token_urlsafe(32))
        return token, session

    def save(self, conn: sqlite3.Connection, session: ConsoleSession) -> None:
        """Store a session inside the caller's transaction; drop the expired ones."""
        repo = SqliteResources(conn, "", "")
        now = self._clock().timestamp()
        for doc in repo.list(SESSION_KIND):
            if doc["expires"] <= now:
                repo.delete(SESSION_KIND, doc["key"])
        repo.put(SESSION_KIND, session.key, asdict(session))

    def resolve(self, token: str) -> tuple[ConsoleSession, Principal] | None:
        """The live session behind a cookie token and the principal it acts as (blocking).

        None when unknown or expired, or when its user was deleted or re-created since."""
        if not token:
            return None
        repo = SqliteResources(self._reads.get(), "", "")
        doc = repo.get(SESSION_KIND, token_key(token))
        if doc is None:
            return None
        session = ConsoleSession(**doc)
        if session.expired(self._clock()):
            return None
        started = SessionContext(datetime.fromtimestamp(session.created, timezone.utc), False)
        if session.kind == "Root":
            return session, root_principal(session.account_id, session.access_key_id,
                                           session=started, credential_source=CONSOLE_CREDENTIAL)
        user = Identities(repo).get_user(session.account_id, session.user_name or "")
        if user is None or user.get("UserId") != session.user_id:
            return None
        return session, user_principal(session.account_id, user, session.access_key_id,
                                       session=started, credential_source=CONSOLE_CREDENTIAL)

    async def end(self, session: ConsoleSession) -> None:
        """Sign-out: the token stops working at once."""
        def unit(conn: sqlite3.Connection) -> tuple[None, list]:
            SqliteResources(conn, "", "").delete(SESSION_KIND, session.key)
            return None, []

        await self._writer.run(unit)
