"""The engine's worker pool: a runaway formula costs its own request an error, the worker
stops itself or is killed and replaced, and no worker outlives the pool."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from chainrule.web.worker import GRACE_SECONDS, Busy, EnginePool, TaskError, TaskTimeout

RUNAWAY = {"expression": "exp(exp(exp(exp(x))))*log(log(log(x)))"}  # minutes of SymPy
BUDGET = 2.0
SLACK = 10.0  # a loaded machine's scheduling delay on top of the budget and the grace


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has exited
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


async def _timed(pool, task, params):
    start = time.monotonic()
    try:
        return await pool.run(task, params), time.monotonic() - start
    except (TaskTimeout, TaskError, Busy) as exc:
        return exc, time.monotonic() - start


def test_the_worker_stops_itself_at_the_budget_and_keeps_serving():
    async def scenario():
        pool = EnginePool(1, BUDGET)
        await pool.start()
        try:
            (pid,) = pool.pids()
            error, elapsed = await _timed(pool, "derive_json", RUNAWAY)
            assert isinstance(error, TaskTimeout)
            assert f"gave up after {BUDGET:g} s" in str(error)
            assert BUDGET * 0.9 < elapsed < BUDGET + SLACK
            assert pool.pids() == [pid] and pool.killed == 0  # stopped by its alarm, not killed
            text, _ = await _timed(pool, "derive_json", {"expression": "tanh"})
            assert '"result_output_form": "1 - yhat**2"' in text
            error, _ = await _timed(pool, "derive_json", {"expression": "x +"})
            assert isinstance(error, TaskError) and "column" in str(error)
            # One request holds the worker, one waits: a third is refused at once.
            pool.queue_limit = 1
            held = asyncio.ensure_future(pool.run("derive_json", RUNAWAY))
            await asyncio.sleep(0.2)
            waiting = asyncio.ensure_future(pool.run("derive_json", {"expression": "x"}))
            await asyncio.sleep(0.2)
            error, elapsed = await _timed(pool, "derive_json", {"expression": "x"})
            assert isinstance(error, Busy) and elapsed < 1.0
            with pytest.raises(TaskTimeout):
                await held
            assert '"result": "1"' in await waiting
        finally:
            await pool.close()
        assert not _alive(pid)

    asyncio.run(scenario())


def test_a_worker_that_ignores_the_alarm_is_killed_and_replaced():
    async def scenario():
        pool = EnginePool(1, BUDGET, soft_limit=False)  # only the kill can stop it
        await pool.start()
        try:
            (pid,) = pool.pids()
            error, elapsed = await _timed(pool, "derive_json", RUNAWAY)
            assert isinstance(error, TaskTimeout)
            assert BUDGET + GRACE_SECONDS * 0.9 < elapsed < BUDGET + GRACE_SECONDS + SLACK
            assert pool.killed == 1
            assert not _alive(pid)  # killed and reaped: not left computing
            # The replacement takes the next request.
            text, _ = await _timed(pool, "derive_json", {"expression": "sigmoid"})
            assert '"result_output_form": "yhat*(1 - yhat)"' in text
            (new_pid,) = pool.pids()
            assert new_pid != pid
        finally:
            await pool.close()
        assert not _alive(new_pid)
        assert pool.pids() == []

    asyncio.run(scenario())


@pytest.mark.parametrize("size, timeout, words", [
    (0, 1.0, r"'size' parameter of EnginePool must be an integer in the range \[1, inf\)"),
    (1, 0.0, r"'timeout' parameter of EnginePool must be a finite float in the range \(0, inf\)"),
])
def test_pool_settings_are_checked(size, timeout, words):
    with pytest.raises(ValueError, match=words):
        EnginePool(size, timeout)


def test_runaways_on_every_worker_do_not_hold_up_a_quick_request():
    # Two runaways take both workers for their whole budget; an ordinary derivation sent after
    # them is answered by the worker kept for quick requests before either runaway ends. A
    # third runaway tries that worker, runs past its short budget and then waits for another:
    # it still gets its whole budget, and the quick worker is free again for the next one.
    async def scenario():
        pool = EnginePool(2, BUDGET * 2, quick=0.5 * BUDGET)
        await pool.start()
        done = []

        async def record(name, params):
            result = await _timed(pool, "derive_json", params)
            done.append(name)
            return result

        try:
            runaways = [asyncio.ensure_future(record(f"runaway{i}", RUNAWAY)) for i in (1, 2)]
            await asyncio.sleep(0.3)
            third = asyncio.ensure_future(record("runaway3", RUNAWAY))
            await asyncio.sleep(0.3)
            text, _ = await record("ordinary", {"expression": "tanh"})
            assert '"result_output_form": "1 - yhat**2"' in text
            for runaway in [*runaways, third]:
                error, _ = await runaway
                assert isinstance(error, TaskTimeout)
                assert f"gave up after {BUDGET * 2:g} s" in str(error)
            assert done.index("ordinary") < min(done.index("runaway1"), done.index("runaway2"))
            assert done[-1] == "runaway3"  # its full budget started on a normal worker
            assert len(pool.pids()) == 3
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_the_quick_budget_is_checked():
    with pytest.raises(ValueError, match=r"'quick' parameter of EnginePool"):
        EnginePool(1, 1.0, quick=0.0)
