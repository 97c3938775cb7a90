"""Every benchmark in one go, on the CPU's own BLAS kernel: the figures of the README's tables.

Runs each script in its own process with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed
from its environment (a user's machine has neither), one after the other, and prints their
output. Run it on a quiet machine; each script prints the load average it started under.

    uv pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
    uv sync --group bench --inexact   # JAX, the other peer (optional)
    uv run python benchmarks/run_all.py [--quick] | tee benchmarks.txt

The README's tables and the scripts that fill them:

- Speed (epoch times, ratios, import times): bench_mlp.py --repeats 7
- Where the time goes (the minimal NumPy loop): bench_numpy_floor.py --repeats 3
- BLAS threads, quiet and with a core busy: bench_threads.py
- scikit-learn estimators against scikit-learn: bench_sklearn.py
- accuracy within a training budget: bench_accuracy.py
- the derivation engine: bench_derive.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [  # (script, full arguments, --quick arguments)
    ("bench_mlp.py", ["--repeats", "7"], ["--repeats", "1"]),
    ("bench_numpy_floor.py", ["--repeats", "3"], ["--repeats", "1"]),
    ("bench_threads.py", ["--repeats", "3"], ["--repeats", "1", "--samples", "5000"]),
    ("bench_sklearn.py", ["--runs", "5"], ["--runs", "1", "--threads", "1"]),
    ("bench_accuracy.py", [], ["--budget", "5", "--only", "mnist"]),
    ("bench_derive.py", ["--repeats", "3"], ["--repeats", "1"]),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one repeat each: checks that every script runs, not a measurement")
    parser.add_argument("--only", nargs="+", metavar="SCRIPT", help="run only these scripts")
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    failed = []
    for script, full, quick in RUNS:
        if args.only and script not in args.only:
            continue
        command = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        print(f"\n===== {script} {' '.join(command[2:])}", flush=True)
        start = time.perf_counter()
        rc = subprocess.run(command, env=env, check=False).returncode
        print(f"===== {script}: exit {rc} after {time.perf_counter() - start:.0f} s", flush=True)
        if rc:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
