"""Client-side history: each call carries `tid/<uuid4>` in its User-Agent and ends ok, fail or info.

API (thread-safe; one History per scenario, shared by all client threads):

    history = History()
    aoss = history.wrap(server.client("opensearchserverless", validate=False))  # any boto3 client
    op = history.call(aoss, "create_security_policy", subject="policy/p1", name="p1", ...)
    op.outcome      # "ok" (an HTTP answer, any status), "fail" (nothing sent), "info" (unknown)
    op.status, op.error_code, op.request_id, op.tid, op.operation (the API name, e.g.
    "CreateSecurityPolicy"), op.subject (what the caller says the call acts on), op.result
    history.ops     # a snapshot list of every Op, in start order

`call` never raises for a call's own failure: the outcome says what happened. One op is one
request: `wrap` removes the client's retry handler (botocore's `max_attempts` counts retries,
so "max_attempts": 1 still resends once), and a second attempt would be refused (op `info`).
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from botocore.awsrequest import AWSConnection
from botocore.exceptions import (ClientError, ConnectTimeoutError, EndpointConnectionError,
                                 ParamValidationError)

TID_PREFIX = "tid/"
PARAM_CHARS = 200  # longer parameter values are cut in the summary (policy documents)


@dataclass
class Op:
    tid: str
    service: str
    operation: str
    params: dict[str, Any]
    subject: str | None
    start: float
    seq: int  # start order across threads
    sent: float | None = None  # when botocore began sending it (None: never)
    # when its last bytes were handed to the kernel: under a loaded host, a thread can wait
    # tens of ms between botocore's before-send and the socket write (None: never written)
    on_wire: float | None = None
    end: float = 0.0
    outcome: str = ""  # ok | fail | info
    status: int | None = None
    error_code: str | None = None
    request_id: str | None = None
    error: str | None = None  # the exception text for fail/info
    result: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def succeeded(self) -> bool:
        return self.outcome == "ok" and self.status is not None and self.status < 300


class ResendRefused(Exception):
    """Raised into botocore when it tries to send an op a second time."""


_WRITING = threading.local()  # .op: the call whose request this thread's botocore is writing


def _stamp_writes(send: Callable[..., Any]) -> Callable[..., Any]:
    """botocore's connection ``send``, noting when each write of an op's request returned."""
    def stamped(connection: Any, data: Any) -> Any:
        sent = send(connection, data)
        op = getattr(_WRITING, "op", None)
        if op is not None:
            op.on_wire = time.time()
        return sent

    stamped.stamps_writes = True  # type: ignore[attr-defined]
    return stamped


if not getattr(AWSConnection.send, "stamps_writes", False):
    AWSConnection.send = _stamp_writes(AWSConnection.send)  # type: ignore[method-assign]


class History:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ops: list[Op] = []
        self._order = itertools.count()
        self._current = threading.local()  # .op: the call this thread is making

    @property
    def ops(self) -> list[Op]:
        with self._lock:
            return list(self._ops)

    def wrap(self, client: Any) -> Any:
        """Make ``client`` append this thread's current tid to its User-Agent as it sends.

        botocore rebuilds the User-Agent after signing (SigV4 never signs it), so the tid is
        added at `before-send`, on the prepared request.
        """
        def tag(request: Any, **_: Any) -> None:
            op = getattr(self._current, "op", None)
            if op is not None:
                if op.sent is not None:  # the first attempt's fate is unknown: the op is info
                    raise ResendRefused(f"botocore tried to resend tid/{op.tid}")
                op.sent = time.time()
                agent = request.headers.get("User-Agent", "")
                if isinstance(agent, bytes):  # prepared requests hold header values as bytes
                    agent = agent.decode("latin-1")
                request.headers["User-Agent"] = f"{agent} {TID_PREFIX}{op.tid}".strip()

        client.meta.events.register("before-send", tag)
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.unregister(f"needs-retry.{service}", unique_id=f"retry-config-{service}")
        return client

    def call(self, client: Any, method: str, *, subject: str | None = None, **params: Any) -> Op:
        """Run ``client.<method>(**params)`` once and record how it ended."""
        op = Op(tid=str(uuid.uuid4()), service=client.meta.service_model.service_name,
                operation=client.meta.method_to_api_mapping[method], params=_summary(params),
                subject=subject, start=time.time(), seq=next(self._order))
        with self._lock:
            self._ops.append(op)
        self._current.op = _WRITING.op = op
        try:
            response = getattr(client, method)(**params)
        except ClientError as exc:
            self._answered(op, exc.response)
        except (EndpointConnectionError, ConnectTimeoutError, ParamValidationError) as exc:
            # refused, no connection, or rejected before sending: nothing reached the server
            op.outcome, op.error = "fail", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # reset, read timeout, truncated answer: it may have been served
            op.outcome, op.error = "info", f"{type(exc).__name__}: {exc}"
        else:
            self._answered(op, response)
            op.result = response
        finally:
            self._current.op = _WRITING.op = None
            op.end = time.time()
        return op

    @staticmethod
    def _answered(op: Op, response: dict[str, Any]) -> None:
        meta = response.get("ResponseMetadata", {})
        op.outcome = "ok"
        op.status = meta.get("HTTPStatusCode")
        op.request_id = meta.get("RequestId") or None
        op.error_code = (response.get("Error") or {}).get("Code") or None


class LoadThreads:
    """One thread per item of ``items``, each calling ``step(item)`` up to ``max_steps`` times
    until stopped; a thread that crashes makes ``stop()`` fail (a harness bug must show)."""

    def __init__(self, step: Callable[[Any], None], items: list[Any], max_steps: int) -> None:
        self._step = step
        self._items = items
        self._max_steps = max_steps
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self) -> None:
        self._stop.clear()
        self._threads = [threading.Thread(target=self._run, args=(item,), daemon=True)
                         for item in self._items]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in self._threads), "a load thread did not stop"
        assert not self.errors, f"load thread crashed: {self.errors[0]!r}"

    def _run(self, item: Any) -> None:
        try:
            for _ in range(self._max_steps):
                if self._stop.is_set():
                    return
                self._step(item)
        except BaseException as exc:
            self.errors.append(exc)


def tid_of(user_agent: str | None) -> str | None:
    """The correlation id inside a record's userAgent, if any."""
    if not user_agent or TID_PREFIX not in user_agent:
        return None
    return user_agent.rsplit(TID_PREFIX, 1)[1].split()[0][:36]


def _summary(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v[:PARAM_CHARS] if isinstance(v, str) else v) for k, v in params.items()}
