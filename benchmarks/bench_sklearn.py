"""chainrule.sklearn.MLPClassifier against scikit-learn's MLPClassifier: accuracy and fit time.

Same data, same split, same scaling and the same hyperparameters (scikit-learn's defaults:
hidden_layer_sizes=(100,), relu, alpha=1e-4, batch_size=min(200, n), learning_rate_init=1e-3,
max_iter=200, tol=1e-4, n_iter_no_change=10; only ``solver`` varies) on digits and
breast_cancer. Each run uses one random_state for both libraries, and the two fits alternate, so
a noisy machine slows both alike. Printed per case: the median test accuracy, fit time, epochs
run (both stop on the same tol rule, at different epochs) and time per epoch, and the ratios.

Two BLAS settings are measured: the libraries' defaults (chainrule pins BLAS to one thread for
networks this small; scikit-learn uses every core), and both pinned to one thread, which isolates
the per-epoch arithmetic from BLAS threading.

    uv run python benchmarks/bench_sklearn.py [--runs 5] [--threads default|1|both]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
import warnings

from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from blas_info import print_environment
from chainrule.sklearn import MLPClassifier as ChainruleMLP

DATASETS = {"digits": load_digits, "breast_cancer": load_breast_cancer}
SOLVERS = ("sgd", "adam")


def split(load):
    X, y = load(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), scaler.transform(X_te), y_tr, y_te


def run(cls, data, solver, seed):
    X_tr, X_te, y_tr, y_te = data
    est = cls(solver=solver, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        est.fit(X_tr, y_tr)
        seconds = time.perf_counter() - t0
    return est.score(X_te, y_te), seconds, est.n_iter_


def bench(runs: int, one_thread: bool) -> list[dict]:
    rows = []
    limit = threadpool_limits(1, "blas") if one_thread else contextlib.nullcontext()
    with limit:
        for name, load in DATASETS.items():
            data = split(load)
            for solver in SOLVERS:
                results = {"sklearn": [], "chainrule": []}
                for seed in range(runs):
                    # alternate which library goes first, so neither always runs warm
                    order = [("sklearn", SklearnMLP), ("chainrule", ChainruleMLP)]
                    for lib, cls in order if seed % 2 == 0 else order[::-1]:
                        results[lib].append(run(cls, data, solver, seed))
                row = {"data": name, "solver": solver}
                for lib, res in results.items():
                    acc, sec, iters = zip(*res, strict=True)
                    row[lib] = {
                        "acc": statistics.median(acc),
                        "sec": statistics.median(sec),
                        "iters": statistics.median(iters),
                        "ms_per_epoch": statistics.median(
                            1e3 * s / i for s, i in zip(sec, iters, strict=True)),
                    }
                rows.append(row)
    return rows


def show(rows: list[dict], title: str) -> None:
    print(f"\n{title}")
    head = ("data", "solver", "sklearn acc", "chainrule acc", "sklearn fit", "chainrule fit",
            "speed-up", "epochs sk/cr", "ms/epoch sk/cr", "per-epoch speed-up")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        sk, cr = r["sklearn"], r["chainrule"]
        cells = (
            r["data"], r["solver"], f"{100 * sk['acc']:.2f}%", f"{100 * cr['acc']:.2f}%",
            f"{sk['sec']:.3f} s", f"{cr['sec']:.3f} s", f"{sk['sec'] / cr['sec']:.1f}x",
            f"{sk['iters']:.0f}/{cr['iters']:.0f}",
            f"{sk['ms_per_epoch']:.2f}/{cr['ms_per_epoch']:.2f}",
            f"{sk['ms_per_epoch'] / cr['ms_per_epoch']:.1f}x",
        )
        print("| " + " | ".join(cells) + " |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="random states per case (median)")
    parser.add_argument("--threads", choices=("default", "1", "both"), default="both")
    args = parser.parse_args(argv)
    print_environment("sklearn")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
          f"median of {args.runs} runs (random_state 0..{args.runs - 1})")
    if args.threads in ("default", "both"):
        show(bench(args.runs, one_thread=False), "BLAS threads: each library's default")
    if args.threads in ("1", "both"):
        show(bench(args.runs, one_thread=True), "BLAS threads: 1 for both")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
