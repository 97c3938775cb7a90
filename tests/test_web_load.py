"""Load on ``chainrule serve`` over 127.0.0.1: 200 requests from 8 clients, runaway formulas
among them. Every request is answered, runaways with an error after the time budget, and no
engine worker is left computing afterwards. The latencies go to a report (``load.json``
beside the screenshots) and are printed; speed is not asserted, only that the ordinary
requests are all answered correctly."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from web_server import (
    artifact_dir,
    children,
    cpu_ticks,
    keep,
    needs_proc,
    serving,
    still_alive,
    stop,
)

# The budget sits far from both sides: an ordinary request computes in well under a second, and
# each runaway takes several times the budget (the first does not finish in 40 s, the second
# takes about 23 s on a quiet 2-core machine), so the verdicts do not depend on the machine's
# speed or load.
REQUESTS, CLIENTS, BUDGET = 200, 8, 4.0
RUNAWAYS = ["exp(exp(exp(exp(x))))*log(log(log(x)))",
            "(x+1)**60*(x+2)**60*(x+4)**60/(x+3)**60/(x+5)**60"]
ORDINARY = [
    ("api/derive", {"expression": "sigmoid"}),
    ("api/derive", {"expression": "x*sigmoid(x)"}),
    ("api/derive", {"activation": "tanh", "loss": "bce"}),
    ("api/derive", {"loss": "mse", "half": "1"}),
    ("api/check", {"formula": "-(y/yhat + (1-y)/(1-yhat))", "loss": "bce"}),
    ("api/check", {"formula": "yhat - y", "loss": "mse", "half": "1"}),
    ("derive", {"expression": "tanh"}),
    ("derive", {"expression": "log(x)"}),
    ("check", {"formula": "2*(yhat - y)", "loss": "mse"}),
]
WALL_LIMIT = 600  # seconds for the whole load, far above what it needs


def _plan() -> list[tuple[str, str, dict]]:
    plan = []
    for i in range(REQUESTS):
        if i % 25 == 5:  # 8 runaways spread through the run
            plan.append(("runaway", "api/derive", {"expression": RUNAWAYS[i % len(RUNAWAYS)]}))
        else:
            path, query = ORDINARY[i % len(ORDINARY)]
            plan.append(("ordinary", path, query))
    return plan


def _fetch(url: str) -> tuple[int | None, float, str]:
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode()
    except OSError as exc:
        status, body = None, str(exc)
    return status, time.monotonic() - start, body


@needs_proc
def test_200_requests_from_8_clients_with_runaways(tmp_path_factory):
    plan = _plan()
    with serving("--workers", "2", "--timeout", f"{BUDGET:g}") as (url, proc):
        assert _fetch(url + "api/derive?expression=x")[0] == 200  # the workers are up
        workers = children(proc.pid)
        urls = [url + path + "?" + urllib.parse.urlencode(query) for _, path, query in plan]
        start = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as clients:
            results = list(clients.map(_fetch, urls, timeout=WALL_LIMIT))
        wall = time.monotonic() - start
        # Nothing left computing: once the load is over the workers go quiet (a worker that
        # replaced a killed one may first spend a few seconds warming up).
        quiet_by = time.monotonic() + 60
        while True:
            current = children(proc.pid)
            before = sum(cpu_ticks(pid) for pid in current)
            time.sleep(2.0)
            busy_ticks = sum(cpu_ticks(pid) for pid in current) - before
            if busy_ticks < 50 or time.monotonic() > quiet_by:
                break
        assert stop(proc) == 0
    assert still_alive(workers + current) == []

    statuses = [status for status, _, _ in results]
    assert None not in statuses, "a request got no answer"
    ordinary = [(s, t, b) for (kind, _, _), (s, t, b) in zip(plan, results, strict=True)
                if kind == "ordinary"]
    runaway = [(s, t, b) for (kind, _, _), (s, t, b) in zip(plan, results, strict=True)
               if kind == "runaway"]
    assert all(s == 200 for s, _, _ in ordinary), [b[:200] for s, _, b in ordinary if s != 200]
    assert all(s == 422 and "Gave up after" in b for s, _, b in runaway)
    assert busy_ticks < 50, f"the workers still compute a minute after the load ({busy_ticks} " \
                            "ticks of CPU in 2 s)"

    times = np.array([t for _, t, _ in ordinary])
    report = {
        "requests": REQUESTS, "clients": CLIENTS, "runaway_requests": len(runaway),
        "budget_s": BUDGET, "workers": 2, "wall_s": round(wall, 2),
        "ordinary_p50_ms": round(1000 * float(np.percentile(times, 50)), 1),
        "ordinary_p99_ms": round(1000 * float(np.percentile(times, 99)), 1),
        "ordinary_max_ms": round(1000 * float(times.max()), 1),
        "runaway_max_s": round(max(t for _, t, _ in runaway), 2),
        "workers_replaced": len(set(current) - set(workers)),
    }
    path = artifact_dir(tmp_path_factory) / "load.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    keep(path)
    print("\nload:", json.dumps(report))
