"""chainrule.sklearn's MLPs against scikit-learn's: accuracy and fit time, in the same dtype.

Same data, same split, same scaling and the same hyperparameters (scikit-learn's defaults:
hidden_layer_sizes=(100,), relu, alpha=1e-4, batch_size=min(200, n), learning_rate_init=1e-3,
max_iter=200, tol=1e-4, n_iter_no_change=10, max_fun=15000; only ``solver`` varies: sgd, adam,
lbfgs) on digits and breast_cancer. Both libraries train in the dtype of X (their default), so
each row compares the same precision: the data are given as float64, then as float32. lbfgs runs
in float64 only: scikit-learn's lbfgs returns float64 weights for float32 data (SciPy's float64
vector becomes its weights, so its arithmetic is not float32), and no like-for-like float32 pair
exists. Each run
uses one random_state for both libraries, and the two fits alternate, so a noisy machine slows
both alike. Printed per case: the median test accuracy and its difference (points), fit time,
iterations run (epochs for sgd and adam, L-BFGS iterations for lbfgs; both stop on the same rule,
at different iterations from different initial weights), time per iteration, and the ratios.

Two BLAS settings are measured: the libraries' defaults (chainrule pins BLAS to one thread for
networks this small; scikit-learn uses every core), and both pinned to one thread, which isolates
the arithmetic from BLAS threading. The BLAS library, version, kernel and thread count are
printed first; measure with OPENBLAS_CORETYPE unset, so OpenBLAS runs the CPU's own kernel.

    uv run python benchmarks/bench_sklearn.py [--runs 5] [--threads default|1|both]
        [--dtypes float64 float32] [--solvers sgd adam lbfgs]
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
SOLVERS = ("sgd", "adam", "lbfgs")
DTYPES = ("float64", "float32")


def split(load, dtype: str):
    X, y = load(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_tr)
    return (scaler.transform(X_tr).astype(dtype), scaler.transform(X_te).astype(dtype),
            y_tr, y_te)


def run(cls, data, solver, seed):
    X_tr, X_te, y_tr, y_te = data
    est = cls(solver=solver, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        est.fit(X_tr, y_tr)
        seconds = time.perf_counter() - t0
    assert est.coefs_[0].dtype == X_tr.dtype, (cls, est.coefs_[0].dtype, X_tr.dtype)
    return est.score(X_te, y_te), seconds, max(est.n_iter_, 1)


def bench(runs: int, one_thread: bool, dtypes, solvers) -> list[dict]:
    rows = []
    limit = threadpool_limits(1, "blas") if one_thread else contextlib.nullcontext()
    with limit:
        for dtype in dtypes:
            for name, load in DATASETS.items():
                data = split(load, dtype)
                for solver in solvers:
                    if solver == "lbfgs" and dtype != "float64":
                        continue
                    results = {"sklearn": [], "chainrule": []}
                    for seed in range(runs):
                        # alternate which library goes first, so neither always runs warm
                        order = [("sklearn", SklearnMLP), ("chainrule", ChainruleMLP)]
                        for lib, cls in order if seed % 2 == 0 else order[::-1]:
                            results[lib].append(run(cls, data, solver, seed))
                    row = {"dtype": dtype, "data": name, "solver": solver}
                    for lib, res in results.items():
                        acc, sec, iters = zip(*res, strict=True)
                        row[lib] = {
                            "acc": statistics.median(acc),
                            "sec": statistics.median(sec),
                            "iters": statistics.median(iters),
                            "ms_per_iter": statistics.median(
                                1e3 * s / i for s, i in zip(sec, iters, strict=True)),
                        }
                    rows.append(row)
                    show([row], "", header=not rows[:-1])
    return rows


def show(rows: list[dict], title: str, header: bool = True) -> None:
    if title:
        print(f"\n{title}")
    head = ("dtype", "data", "solver", "sklearn acc", "chainrule acc", "diff (points)",
            "sklearn fit", "chainrule fit", "speed-up", "iters sk/cr", "ms/iter sk/cr",
            "per-iter speed-up")
    if header:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        sk, cr = r["sklearn"], r["chainrule"]
        cells = (
            r["dtype"], r["data"], r["solver"], f"{100 * sk['acc']:.2f}%",
            f"{100 * cr['acc']:.2f}%", f"{100 * (cr['acc'] - sk['acc']):+.2f}",
            f"{sk['sec']:.3f} s", f"{cr['sec']:.3f} s", f"{sk['sec'] / cr['sec']:.1f}x",
            f"{sk['iters']:.0f}/{cr['iters']:.0f}",
            f"{sk['ms_per_iter']:.2f}/{cr['ms_per_iter']:.2f}",
            f"{sk['ms_per_iter'] / cr['ms_per_iter']:.1f}x",
        )
        print("| " + " | ".join(cells) + " |", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="random states per case (median)")
    parser.add_argument("--threads", choices=("default", "1", "both"), default="both")
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    parser.add_argument("--solvers", nargs="+", choices=SOLVERS, default=list(SOLVERS))
    args = parser.parse_args(argv)
    print_environment("sklearn")
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start; "
          f"median of {args.runs} runs (random_state 0..{args.runs - 1})", flush=True)
    if args.threads in ("default", "both"):
        show(bench(args.runs, False, args.dtypes, args.solvers),
             "BLAS threads: each library's default")
    if args.threads in ("1", "both"):
        show(bench(args.runs, True, args.dtypes, args.solvers), "BLAS threads: 1 for both")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
