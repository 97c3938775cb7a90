"""BLAS threads for training: epoch time at 1 and 2 threads, quiet and with one core kept busy.

``model.fit(..., threads=N)`` on MNIST (the first ``--samples`` training images), one epoch per
measurement, float32, plain SGD, for three settings: the command line's default network
(784-128-10, batch 32), and bench_mlp's 784-256-128-10 at batch 128 and at batch 1024. Each is
timed with ``threads=1``, ``threads=2`` and the default (``threads=None``, which picks by the
size of the products), first on the machine as it is, then while a second process, started and
stopped by this script, keeps one core busy. Printed: the median over ``--repeats``.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE uv run python benchmarks/bench_threads.py
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time

from bench_mlp import load_mnist
from blas_info import print_environment
from chainrule.nn import mlp
from chainrule.training import ONE_THREAD_WORK, matmul_work

SETTINGS = (  # (sizes, batch)
    ([784, 128, 10], 32),
    ([784, 256, 128, 10], 128),
    ([784, 256, 128, 10], 1024),
)
THREADS = (1, 2, None)


@contextlib.contextmanager
def busy_core():
    """A child process spinning on one core for as long as the block runs."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it reach the scheduler
        yield
    finally:
        spinner.terminate()
        spinner.wait()


def epoch_time(sizes, batch, threads, X, y) -> float:
    model = mlp(sizes, activation="relu", output="softmax", seed=0)
    t = time.perf_counter()
    model.fit(X, y, loss="ce", optimizer="sgd", lr=0.05, epochs=1, batch_size=batch,
              verbose=0, seed=0, threads=threads)
    return time.perf_counter() - t


def measure(X, y, repeats: int) -> dict:
    times = {}
    for _ in range(repeats):  # interleaved, so that a change of load hits every cell alike
        for sizes, batch in SETTINGS:
            for threads in THREADS:
                key = (tuple(sizes), batch, threads)
                times.setdefault(key, []).append(epoch_time(sizes, batch, threads, X, y))
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=20_000)
    args = parser.parse_args(argv)

    X, y = load_mnist()
    X, y = X[: args.samples], y[: args.samples]
    print_environment()
    print(f"one epoch of {len(X):,} MNIST samples, SGD, median of {args.repeats}; default "
          f"threads: 1 below {ONE_THREAD_WORK:,} multiply-adds per batch")
    quiet = measure(X, y, args.repeats)
    with busy_core():
        busy = measure(X, y, args.repeats)
    print(f"{'network, batch':<24}{'madds/batch':>13}{'':>3}"
          f"{'1 thread':>10}{'2 threads':>11}{'default':>9}   (quiet | one core busy)")
    for sizes, batch in SETTINGS:
        name = f"{'-'.join(map(str, sizes))}, {batch}"
        work = matmul_work(mlp(sizes), batch)
        cells = []
        for table in (quiet, busy):
            cells.append("".join(
                f"{table[(tuple(sizes), batch, t)]:>{w}.3f}s" for t, w in zip(THREADS, (9, 10, 8),
                                                                              strict=True)))
        print(f"{name:<24}{work:>13,}   {cells[0]}   |{cells[1]}")


if __name__ == "__main__":
    main()
