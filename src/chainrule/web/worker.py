"""The engine out of the server's process: a small pool of worker processes with a time budget.

SymPy can take minutes on a short formula (``(x+1)**60*(x+2)**60/(x+3)**60``) and runs in C
where no Python signal reaches it, so the server never runs the engine itself. Each request
borrows one worker process from :class:`EnginePool` and waits for its answer at most the time
budget: the worker stops itself at the budget (an alarm inside the worker), and if it has not
answered a moment later the pool kills it and starts a fresh one. A runaway formula costs its
own request an error message and one worker for the budget, never the server.

With ``quick=`` the pool keeps one more worker for quick requests: when every other worker is
busy (two runaway formulas, say), a request runs there under the short ``quick`` budget, and
only if it runs past that does it wait for one of the others, where its full budget starts. A
request that has already run past a short budget never holds up the quick ones behind it.

Requests and answers travel as JSON between the processes (no pickled user data), and a
worker writes nothing to disk. :data:`TASKS` names what a worker can do; the tasks return
exactly what the command line prints with ``--format json`` plus, for the page, the rendered
HTML.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass

from chainrule._checks import check_scalar

__all__ = ["QUICK_SECONDS", "Busy", "EnginePool", "TaskError", "TaskTimeout"]

#: How long a worker may run past the budget before it is killed.
GRACE_SECONDS = 1.5
#: The budget of the worker kept for quick requests (``EnginePool(quick=...)``), in seconds:
#: an ordinary derivation or check takes well under it.
QUICK_SECONDS = 1.0
#: How long a fresh worker may take to import SymPy and the engine.
STARTUP_SECONDS = 120.0
#: Largest answer a worker sends, in bytes (a page of steps is a few hundred KiB at most).
MAX_ANSWER_BYTES = 4 * 2**20
#: Address-space limit of a worker process where the platform has one (a formula whose values
#: outgrow memory raises MemoryError in the worker instead of swapping the machine).
MEMORY_LIMIT_BYTES = 4 * 2**30


class TaskError(Exception):
    """The engine refused the input: the message is for the person who typed it."""


class TaskTimeout(Exception):
    """The task ran past the time budget (the worker stopped, or was killed and replaced)."""


class Busy(Exception):
    """Every worker is busy and too many requests are already waiting."""


# --- inside a worker process --------------------------------------------------------------------


def _worker_main(conn, soft_limit: float | None, memory_limit: int | None) -> None:
    """The loop of one worker: read a task, run it under the alarm, send the answer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    if memory_limit:
        with contextlib.suppress(ImportError, ValueError, OSError):
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    from chainrule._panels import TimeUp, time_limit
    from chainrule.web import tasks

    tasks.warm_up()
    conn.send_bytes(b'{"status": "ready"}')
    while True:
        try:
            task, params, *budget = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        try:
            # the budget of this request (the quick worker's is shorter), else the pool's
            with time_limit(budget[0] if budget and soft_limit else soft_limit):
                value = tasks.TASKS[task](params)
            answer = {"status": "ok", "value": value}
        except TimeUp:
            answer = {"status": "timeout"}
        except (ValueError, KeyError, ImportError, FloatingPointError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            answer = {"status": "error", "message": str(message)}
        except MemoryError:
            answer = {"status": "error", "message": "the formula needs more memory than this "
                      "server allows; write it with less nesting"}
        except Exception as exc:  # an engine bug: say so in one line, never a traceback
            answer = {"status": "error", "message": f"internal error ({type(exc).__name__}); "
                      "please report the input that caused it"}
        data = json.dumps(answer, ensure_ascii=False).encode()
        if len(data) > MAX_ANSWER_BYTES:
            data = json.dumps({"status": "error", "message": "the answer is too large to "
                               "send; derive a smaller formula"}).encode()
        try:
            conn.send_bytes(data)
        except (BrokenPipeError, OSError):
            return


# --- in the server ------------------------------------------------------------------------------


@dataclass(eq=False)  # compared and hashed by identity
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: object
    quick: bool = False  # the worker kept for quick requests


class EnginePool:
    """``size`` worker processes; :meth:`run` lends one to a task for ``timeout`` seconds.

    ``soft_limit``: the worker also stops itself at the budget with an alarm (the usual way;
    the kill is for code that no signal interrupts). ``queue_limit`` requests may wait for a
    worker at once; one more gets :class:`Busy` at once, and a request that waits longer than
    ``wait_limit`` seconds for a worker gets it too. ``quick``: the budget, in seconds, of one
    more worker kept for quick requests (None: no such worker); a request goes there when no
    other worker is free, and waits for another one only if it runs past ``quick``.
    """

    def __init__(self, size: int = 2, timeout: float = 10.0, *, queue_limit: int = 64,
                 wait_limit: float = 60.0, soft_limit: bool = True,
                 memory_limit: int | None = MEMORY_LIMIT_BYTES, quick: float | None = None):
        self.size = check_scalar(size, "size", "EnginePool", kind=int, low=1)
        self.timeout = check_scalar(timeout, "timeout", "EnginePool", low=0.0, low_open=True)
        self.quick = None if quick is None else min(
            check_scalar(quick, "quick", "EnginePool", low=0.0, low_open=True), self.timeout)
        self.queue_limit = queue_limit
        self.wait_limit = wait_limit
        self.soft_limit = soft_limit
        self.memory_limit = memory_limit
        self.killed = 0
        self._context = multiprocessing.get_context("spawn")
        self._idle: asyncio.Queue[_Worker] | None = None
        self._quick_idle: asyncio.Queue[_Worker] | None = None
        self._workers: set[_Worker] = set()
        self._waiting = 0
        self._starting: set[asyncio.Task] = set()
        self._closed = False

    # -- life cycle --

    async def start(self, wait: bool = True) -> None:
        """Start the workers; with ``wait``, return once every one of them is ready."""
        self._idle = asyncio.Queue()
        starts = [self._start_one() for _ in range(self.size)]
        if self.quick is not None:
            self._quick_idle = asyncio.Queue()
            starts.append(self._start_one(quick=True))
        if wait:
            await asyncio.gather(*starts)
        else:
            for start in starts:
                self._background(start)

    def _background(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _start_one(self, quick: bool = False) -> None:
        for attempt in range(3):
            if self._closed:
                return
            parent, child = self._context.Pipe(duplex=True)
            soft = self.timeout if self.soft_limit else None
            process = self._context.Process(
                target=_worker_main, args=(child, soft, self.memory_limit),
                name="chainrule-engine", daemon=True,
            )
            process.start()
            child.close()
            worker = _Worker(process, parent, quick)
            self._workers.add(worker)
            ready = await asyncio.to_thread(parent.poll, STARTUP_SECONDS)
            try:
                ok = ready and json.loads(parent.recv_bytes()).get("status") == "ready"
            except (EOFError, OSError, ValueError):
                ok = False
            if ok and not self._closed:
                self._queue(worker).put_nowait(worker)
                return
            self._kill(worker)
            if self._closed:
                return
            await asyncio.sleep(0.5 * (attempt + 1))
        raise RuntimeError("The engine's worker processes do not start; run `chainrule derive "
                           "x` to see why.")

    def _kill(self, worker: _Worker) -> None:
        # Kill first: a thread polling the pipe then wakes on end-of-file, not on a closed
        # (and perhaps reused) descriptor.
        self._workers.discard(worker)
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5)
        with contextlib.suppress(OSError):
            worker.conn.close()

    async def close(self) -> None:
        """Stop every worker (running ones too) and wait until they have exited."""
        self._closed = True
        for task in list(self._starting):
            task.cancel()
        for worker in list(self._workers):
            self._kill(worker)

    def pids(self) -> list[int]:
        """The process ids of the current workers."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    @property
    def idle(self) -> int:
        return 0 if self._idle is None else self._idle.qsize()

    def _queue(self, worker: _Worker) -> asyncio.Queue:
        return self._quick_idle if worker.quick else self._idle

    # -- one task --

    async def run(self, task: str, params: dict) -> object:
        """Run ``task`` with ``params`` in a worker and return its value.

        Raises :class:`TaskError` (bad input, with the message), :class:`TaskTimeout` or
        :class:`Busy`.
        """
        if self._idle is None or self._closed:
            raise Busy("the engine is not running")
        deadline = time.monotonic() + self.wait_limit
        quick_lane = self._quick_idle is not None
        while True:
            worker = await self._borrow(deadline, quick_lane)
            budget = self.quick if worker.quick else self.timeout
            answer = await self._use(worker, task, params, budget)
            timed_out = answer is None or answer["status"] == "timeout"
            if not (worker.quick and timed_out and self.quick < self.timeout):
                break
            quick_lane = False  # it ran past the quick budget: wait for another worker
        if timed_out:
            raise TaskTimeout(f"gave up after {self.timeout:g} s")
        if answer["status"] == "error":
            raise TaskError(answer["message"])
        return answer["value"]

    async def _borrow(self, deadline: float, quick_lane: bool) -> _Worker:
        """A free worker: one of the pool's, else (with ``quick_lane``) the quick one, whichever
        is free first; :class:`Busy` when too many wait or none is free by ``deadline``."""
        if self._waiting >= self.queue_limit:
            raise Busy(f"{self._waiting} requests are already waiting")
        queues = [self._idle, *([self._quick_idle] if quick_lane else [])]
        for queue in queues:
            if not queue.empty():
                return queue.get_nowait()
        self._waiting += 1
        getters = [asyncio.ensure_future(queue.get()) for queue in queues]
        try:
            await asyncio.wait(getters, timeout=max(deadline - time.monotonic(), 0),
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._waiting -= 1
            for getter in getters:
                getter.cancel()
        got = [g.result() for g in getters if g.done() and not g.cancelled()]
        for extra in got[1:]:  # both came free at once: keep the first, give back the other
            self._queue(extra).put_nowait(extra)
        if not got:
            raise Busy(f"no worker was free within {self.wait_limit:g} s")
        return got[0]

    async def _use(self, worker: _Worker, task: str, params: dict, budget: float) -> dict | None:
        """The answer of ``worker`` to the task (None: killed); the worker goes back to its
        queue, or is replaced when it had to be killed."""
        healthy = False
        try:
            answer = await self._ask(worker, task, params, budget)
            healthy = answer is not None
        finally:
            if healthy:
                self._queue(worker).put_nowait(worker)
            else:
                self._replace(worker)
        return answer

    async def _ask(self, worker: _Worker, task: str, params: dict,
                   budget: float) -> dict | None:
        """Send the task and wait for the answer; None when the worker must be killed."""
        try:
            worker.conn.send_bytes(json.dumps([task, params, budget]).encode())
        except OSError:
            return None
        deadline = time.monotonic() + budget + GRACE_SECONDS
        ready = await asyncio.to_thread(worker.conn.poll, max(deadline - time.monotonic(), 0))
        if not ready:
            return None
        try:
            return json.loads(await asyncio.to_thread(worker.conn.recv_bytes))
        except (EOFError, OSError, ValueError):
            return None

    def _replace(self, worker: _Worker) -> None:
        self.killed += 1
        self._kill(worker)
        if not self._closed:
            self._background(self._start_one(worker.quick))
