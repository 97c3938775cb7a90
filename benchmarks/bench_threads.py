"""BLAS threads for training: epoch time at 1 and 2 threads, quiet and with one core kept busy.

``model.fit(..., threads=N)`` on MNIST (the first ``--samples`` training images), one epoch per
measurement, float32, plain SGD, for three settings: the command line's default network
(784-128-10, batch 32), and bench_mlp's 784-256-128-10 at batch 128 and at batch 1024. Each is
timed with ``threads=1``, ``threads=2`` and the default (``threads=None``, which measures one
thread against all on the first steps of each epoch and keeps the faster), first on the machine
as it is, then while a second process, started and stopped by this script, keeps one core busy.
Printed: the median over ``--repeats``, and the same as a Markdown table.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE uv run python benchmarks/bench_threads.py
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench_mlp import busy_core, load_mnist
from blas_info import print_environment
from chainrule.nn import mlp

SETTINGS = (  # (sizes, batch)
    ([784, 128, 10], 32),
    ([784, 256, 128, 10], 128),
    ([784, 256, 128, 10], 1024),
)
THREADS = (1, 2, None)


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
          "threads: measured (one thread or all, the faster on the first steps of each epoch)")
    quiet = measure(X, y, args.repeats)
    with busy_core():
        busy = measure(X, y, args.repeats)
    print(f"{'network, batch':<24}{'1 thread':>10}{'2 threads':>11}{'default':>9}   "
          "(quiet | one core busy)")
    rows = []
    for sizes, batch in SETTINGS:
        name = f"{'-'.join(map(str, sizes))}, {batch}"
        cells = [table[(tuple(sizes), batch, t)] for table in (quiet, busy) for t in THREADS]
        rows.append((name, cells))
        text = [f"{c:>{w}.3f}s" for c, w in zip(cells, (9, 10, 8) * 2, strict=True)]
        print(f"{name:<24}{''.join(text[:3])}   |{''.join(text[3:])}")
    print("\n| network, batch | 1 thread | 2 threads | default | busy: 1 thread | "
          "busy: 2 threads | busy: default |")
    print("|---|---|---|---|---|---|---|")
    for name, cells in rows:
        print(f"| {name} | " + " | ".join(f"{c:.3f} s" for c in cells) + " |")


if __name__ == "__main__":
    main()
