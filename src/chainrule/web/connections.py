"""Bounds on the connections of ``chainrule serve``: a slow or silent client cannot hold the
server, and a flood of them cannot exhaust its file descriptors.

uvicorn closes a connection that stays idle after a response (``timeout_keep_alive``), but
waits for ever for the head of a request: a client that opens a connection and sends nothing,
or a byte every few seconds (a "slowloris"), holds one descriptor each, and a thousand of them
under the usual limit of 1,024 open files leave none for the next client (``accept`` fails
with EMFILE, again and again). :class:`ConnectionGuard` wraps uvicorn's HTTP protocol:

- **Header timeout.** A request's head (its request line and headers, up to the blank line)
  must arrive within ``header_timeout`` seconds of the connection, or of the first byte after
  the previous head; else the connection is closed.
- **A cap on open connections.** At ``max_connections``, a new connection closes the oldest
  one that is still waiting for a head (an idle or half-sent one); when every connection is
  busy with a request, the new one is closed instead. Requests in progress are never cut.
- **One line, not a flood.** The first time in a while that a limit is reached, one line goes
  to stderr; an ``accept`` that fails for lack of descriptors is reported the same way, once,
  instead of a traceback each time the event loop retries.

Only the standard library is used here; uvicorn's protocol class is passed in.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

__all__ = ["ACCEPT_BACKLOG", "BATCHES_IN_FLIGHT", "DEFAULT_HEADER_TIMEOUT",
           "DEFAULT_MAX_CONNECTIONS", "RESERVED_DESCRIPTORS", "ConnectionGuard",
           "connection_limit"]

#: Seconds a client has to send the head of a request.
DEFAULT_HEADER_TIMEOUT = 10.0
#: Open connections at most, unless the open-file limit allows fewer.
DEFAULT_MAX_CONNECTIONS = 512
#: Descriptors kept for everything but connections: the engine workers' pipes, the listening
#: socket, the standard streams, threads' wake-up pipes.
RESERVED_DESCRIPTORS = 64
#: The listening socket's backlog, which is also how many connections the event loop accepts
#: in one go. A connection accepted over the cap is closed only a few turns of the loop later,
#: and the loop accepts a batch on each turn meanwhile: descriptors are kept for
#: :data:`BATCHES_IN_FLIGHT` batches.
ACCEPT_BACKLOG = 128
BATCHES_IN_FLIGHT = 4
#: Seconds between two lines about the same limit.
REPORT_EVERY = 30.0
_END_OF_HEAD = b"\r\n\r\n"


def connection_limit() -> int:
    """How many connections the process's open-file limit leaves room for: the soft limit less
    :data:`RESERVED_DESCRIPTORS` and the batches of accepted connections in flight;
    :data:`DEFAULT_MAX_CONNECTIONS` where the limit is unknown or infinite."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return DEFAULT_MAX_CONNECTIONS
    if soft == resource.RLIM_INFINITY:
        return DEFAULT_MAX_CONNECTIONS
    return max(int(soft) - RESERVED_DESCRIPTORS - BATCHES_IN_FLIGHT * ACCEPT_BACKLOG, 16)


class ConnectionGuard:
    """The open connections of one server and their limits.

    ``inner`` is the HTTP protocol class (uvicorn's), called with the keyword arguments uvicorn
    gives; :meth:`protocol` is what to give uvicorn instead (``uvicorn.Config(http=...)``).
    ``report`` writes one line (default: to stderr).
    """

    def __init__(self, inner: Callable[..., asyncio.Protocol], *,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 header_timeout: float = DEFAULT_HEADER_TIMEOUT,
                 report: Callable[[str], None] | None = None):
        self.inner = inner
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.report = report or _to_stderr
        self.open: dict[GuardedConnection, None] = {}  # in the order they were opened
        self.closed_slow = 0
        self.closed_over_limit = 0
        self._reported: dict[str, float] = {}

    def protocol(self, **kwargs) -> asyncio.Protocol:
        """A connection's protocol: uvicorn's, behind the timeout and the cap."""
        return GuardedConnection(self, self.inner(**kwargs))

    def admit(self, conn: GuardedConnection) -> bool:
        """Count ``conn`` in; at the cap, close the oldest connection waiting for a head to make
        room, or refuse ``conn`` (False) when every open connection is busy."""
        if len(self.open) >= self.max_connections:
            waiting = [c for c in self.open if c.waiting_since is not None]
            self.closed_over_limit += 1
            self.once("cap", f"{self.max_connections} connections are open, the limit "
                      "(--max-connections): closing the oldest that have not sent a request")
            if not waiting:
                return False
            min(waiting, key=lambda c: c.waiting_since).abort()
        self.open[conn] = None
        return True

    def forget(self, conn: GuardedConnection) -> None:
        self.open.pop(conn, None)

    def too_slow(self, conn: GuardedConnection) -> None:
        self.closed_slow += 1
        self.once("slow", f"closed a connection that sent no complete request within "
                  f"{self.header_timeout:g} s (--header-timeout); others will be closed quietly")
        conn.abort()

    def once(self, what: str, line: str) -> None:
        """Report ``line`` unless a line about ``what`` went out in the last
        :data:`REPORT_EVERY` seconds."""
        now = time.monotonic()
        if now - self._reported.get(what, -REPORT_EVERY) >= REPORT_EVERY:
            self._reported[what] = now
            self.report(line)

    def loop_errors(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        """An event loop exception handler: an ``accept`` that failed for lack of descriptors
        (the loop retries it) is one line now and then; anything else goes to the default."""
        if str(context.get("message", "")).startswith("socket.accept() out of system resource"):
            exc = context.get("exception")
            self.once("accept", f"cannot accept connections: {exc.strerror if exc else ''} "
                      "(the open-file limit); retrying; lower --max-connections or raise the "
                      "limit (ulimit -n)")
            return
        loop.default_exception_handler(context)


class GuardedConnection(asyncio.Protocol):
    """One connection: uvicorn's protocol ``inner``, closed when its request head is late."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol):
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.BaseTransport | None = None
        self.waiting_since: float | None = None  # waiting for a request head since then
        self._tail = b""
        self._timer: asyncio.TimerHandle | None = None
        self._admitted = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        if not self.guard.admit(self):
            transport.abort()
            return
        self._admitted = True
        self._wait_for_head()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.waiting_since is None:
            self._wait_for_head()  # the first byte of the next request (or of a body)
        seen = self._tail + data
        if _END_OF_HEAD in seen:
            self._stop_waiting()
        else:
            self._tail = seen[-(len(_END_OF_HEAD) - 1):]
        self.inner.data_received(data)

    def eof_received(self):
        return self.inner.eof_received() if self._admitted else None

    def connection_lost(self, exc) -> None:
        self._stop_waiting()
        self.guard.forget(self)
        if self._admitted:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def abort(self) -> None:
        self._stop_waiting()
        self.guard.forget(self)
        if self.transport is not None:
            self.transport.abort()

    def _wait_for_head(self) -> None:
        self.waiting_since = time.monotonic()
        self._tail = b""
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.guard.header_timeout, self.guard.too_slow, self)

    def _stop_waiting(self) -> None:
        self.waiting_since = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _to_stderr(line: str) -> None:
    print(f"chainrule serve: {line}", file=sys.stderr, flush=True)
