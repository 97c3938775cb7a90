"""Training speed: chainrule against PyTorch, scikit-learn and JAX, interleaved.

MLP 784-256-128-10 (ReLU, softmax + cross-entropy), float32, one epoch of MNIST's 60,000
training images, plain SGD. Every framework starts from the same weights and sees the same
batches in the same order. Printed: the CPU, each library's BLAS, kernel and threads, the median
epoch time over the repeats, and ratios. Three parts:

1. batch 128 on one thread and batch 1024 on two: chainrule's step loop (Trainer.step over
   Batches) and ``model.fit``, each over the eight matrix products of an epoch alone (the floor
   of a NumPy loop), beside the peers;
2. batch 1024 with every library on its default threads (chainrule's ``threads=None`` measures
   one thread against all), on the machine as it is and then while a second process, started
   and stopped here, keeps one core busy; chainrule's fit on one thread beside it;
3. the time of ``import chainrule`` beside ``import torch``.

JAX, when it is installed, runs in a worker process per thread count (see jax_peer.py),
interleaved with the rest; PyTorch and scikit-learn are left out when they are not installed.
Without MNIST (no copy and no network) the epoch runs on random data of MNIST's shape, which
times the same, and says so.

Run by hand (PyTorch and JAX are not project dependencies):

    uv pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
    uv pip install jax   # optional: JAX joins as a peer when installed
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        uv run python benchmarks/bench_mlp.py [--repeats 5] [--skip-sklearn]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from blas_info import print_environment, threads_in_effect

HERE = Path(__file__).resolve().parent
SIZES = [784, 256, 128, 10]


def load_mnist(quiet: bool = False):
    """MNIST's training set, found (or downloaded) as ``chainrule train --data mnist`` does;
    random data of its shape and type (seeded: the same in every process) when it cannot be
    had, said on stderr unless ``quiet``."""
    from chainrule.data import load_dataset

    try:
        ds = load_dataset("mnist")
        return ds.X, ds.y
    except (OSError, ImportError, ValueError) as exc:
        if not quiet:
            print(f"bench_mlp: no MNIST ({str(exc).splitlines()[0][:120]}...); timing random "
                  "data of its shape (60,000 x 784 float32, 10 classes)", file=sys.stderr)
    rng = np.random.default_rng(0)
    return rng.random((60_000, 784), dtype=np.float32), rng.integers(0, 10, 60_000)


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


def chainrule_epoch(model, opt, X, y, order, batch):
    """chainrule's step loop, the one model.fit runs: Trainer.step over Batches (full batches
    only, as the other libraries' loops here)."""
    from chainrule import losses
    from chainrule.training import Batches, Trainer

    trainer = Trainer(model, losses.CrossEntropy(), opt)
    batches = Batches(X, y, batch)
    full = order[: len(order) // batch * batch]
    model.train()
    t = time.perf_counter()
    for xb, yb, _ in batches(full):
        trainer.step(xb, yb)
    return time.perf_counter() - t


def chainrule_fit_epoch(model, X, y, batch, lr, threads):
    """The public API, model.fit, for one epoch (includes its own shuffling and checks)."""
    t = time.perf_counter()
    model.fit(
        X, y, loss="ce", optimizer="sgd", lr=lr, epochs=1, batch_size=batch, verbose=0, seed=0,
        threads=threads,
    )
    return time.perf_counter() - t


def torch_epoch(net, opt, Xt, yt, order, batch):
    import torch

    lossf = torch.nn.CrossEntropyLoss()
    order_t = torch.from_numpy(order)
    t = time.perf_counter()
    for i in range(0, len(order) - batch + 1, batch):
        idx = order_t[i : i + batch]
        xb, yb = Xt[idx], yt[idx]
        opt.zero_grad(set_to_none=True)
        loss = lossf(net(xb), yb)
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def sklearn_epoch(clf, X, y, order, batch):
    Xs, ys = X[order], y[order]  # shuffled outside the timer (partial_fit does not shuffle)
    t = time.perf_counter()
    clf.partial_fit(Xs, ys, classes=np.arange(10))
    return time.perf_counter() - t


def matmuls_alone(Ws, X, batch):
    """The eight products of one epoch: 3 forward, 3 dW, 2 dX (the first layer needs no dX)."""
    xb = np.ascontiguousarray(X[:batch])
    hs = [xb]
    for W in Ws:
        hs.append(hs[-1] @ W)
    t = time.perf_counter()
    for _ in range(len(X) // batch):
        h1 = xb @ Ws[0]
        h2 = h1 @ Ws[1]
        out = h2 @ Ws[2]
        _ = h2.T @ out
        d2 = out @ Ws[2].T
        _ = h1.T @ d2
        d1 = d2 @ Ws[1].T
        _ = xb.T @ d1
    return time.perf_counter() - t


def import_time(module: str, repeats: int = 5) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(repeats)
    ]
    return statistics.median(times)


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@functools.cache
def default_torch_threads() -> int:
    """PyTorch's own thread count, read before anything sets it (the physical cores)."""
    import torch

    return torch.get_num_threads()


def torch_net(model, lr: float, threads: int | None):
    """PyTorch's copy of ``model`` (the same weights) on ``threads`` threads (None: its default)
    and its SGD, or (None, None) without PyTorch."""
    if not have("torch"):
        return None, None
    import torch

    torch.set_num_threads(threads or default_torch_threads())

    net = torch.nn.Sequential(
        torch.nn.Linear(784, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )
    with torch.no_grad():
        for lin, dense in zip([net[0], net[2], net[4]], model.dense_layers, strict=True):
            lin.weight.copy_(torch.from_numpy(dense.W.T.copy()))
            lin.bias.copy_(torch.from_numpy(dense.b))
    return net, torch.optim.SGD(net.parameters(), lr=lr)


def sklearn_net(batch: int, lr: float, skip: bool):
    if skip or not have("sklearn"):
        return None
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(256, 128), solver="sgd", momentum=0.0,
                         learning_rate_init=lr, batch_size=batch, alpha=0.0, shuffle=False,
                         random_state=0)


class Peers:
    """The same network in PyTorch, scikit-learn and JAX (each when installed), for one batch
    size on ``threads`` threads (None: each library's default)."""

    def __init__(self, batch: int, threads: int | None, lr: float, skip_sklearn: bool, X, y):
        from chainrule.nn import mlp

        start = mlp(SIZES, activation="relu", output="softmax", seed=0)
        self.net, self.opt = torch_net(start, lr, threads)
        if self.net is not None:
            import torch

            self.Xt, self.yt = torch.from_numpy(X), torch.from_numpy(y)
        self.clf = sklearn_net(batch, lr, skip_sklearn)
        self.jax = None
        if have("jax"):
            from jax_peer import JaxWorker

            self.jax = JaxWorker(threads or os.cpu_count(), lr)
        self.batch, self.X, self.y = batch, X, y

    def epochs(self, order, r: int, times: dict) -> None:
        if self.net is not None:
            times["torch"].append(torch_epoch(self.net, self.opt, self.Xt, self.yt, order,
                                              self.batch))
        if self.jax is not None:
            times["jax"].append(self.jax.ask(f"epoch {self.batch} {r}"))
        if self.clf is not None:
            times["sklearn"].append(sklearn_epoch(self.clf, self.X, self.y, order, self.batch))

    def info(self) -> str:
        return f"; {self.jax.info}" if self.jax else "; JAX not installed"

    def close(self) -> None:
        if self.jax is not None:
            self.jax.close()


def run(batch: int, threads: int, repeats: int, lr: float, skip_sklearn: bool, X, y) -> dict:
    """Part 1: the step loop, fit, the products and the peers, all on ``threads`` threads."""
    from threadpoolctl import threadpool_limits

    from chainrule import optim
    from chainrule.nn import mlp

    model = mlp(SIZES, activation="relu", output="softmax", seed=0)
    fit_model = mlp(SIZES, activation="relu", output="softmax", seed=0)
    opt = optim.SGD(lr=lr)
    peers = Peers(batch, threads, lr, skip_sklearn, X, y)
    times = {k: [] for k in ("chainrule", "chainrule_fit", "torch", "sklearn", "jax", "matmuls",
                             "jax_matmuls")}
    try:
        with threadpool_limits(threads):
            print(f"  batch {batch}: threads in effect: {threads_in_effect()}{peers.info()}")
            for r in range(repeats):
                order = np.random.default_rng(r).permutation(len(X))  # the JAX worker's too
                times["chainrule"].append(chainrule_epoch(model, opt, X, y, order, batch))
                times["chainrule_fit"].append(
                    chainrule_fit_epoch(fit_model, X, y, batch, lr, threads))
                peers.epochs(order, r, times)
                times["matmuls"].append(matmuls_alone([d.W for d in model.dense_layers], X, batch))
                if peers.jax is not None:
                    times["jax_matmuls"].append(peers.jax.ask(f"matmuls {batch}"))
    finally:
        peers.close()
    return {k: statistics.median(v) for k, v in times.items() if v}


def run_default(batch: int, repeats: int, lr: float, skip_sklearn: bool, X, y) -> dict:
    """Part 2: fit with threads=None and on one thread, the peers on their default threads."""
    from chainrule.nn import mlp

    fit_model = mlp(SIZES, activation="relu", output="softmax", seed=0)
    peers = Peers(batch, None, lr, skip_sklearn, X, y)
    times = {k: [] for k in ("chainrule_fit", "chainrule_fit_1", "torch", "sklearn", "jax")}
    try:
        print(f"  batch {batch}, default threads: {threads_in_effect()}{peers.info()}")
        for r in range(repeats):
            order = np.random.default_rng(r).permutation(len(X))
            times["chainrule_fit"].append(chainrule_fit_epoch(fit_model, X, y, batch, lr, None))
            peers.epochs(order, r, times)
            times["chainrule_fit_1"].append(chainrule_fit_epoch(fit_model, X, y, batch, lr, 1))
    finally:
        peers.close()
    return {k: statistics.median(v) for k, v in times.items() if v}


def _cell(value: float | None, fmt: str, width: int) -> str:
    return f"{'-' if value is None else format(value, fmt):>{width}}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


def print_part1(rows) -> None:
    print(f"{'setting':<22}{'step loop':>10}{'fit':>8}{'matmuls':>8}{'loop/mm':>8}{'fit/mm':>7}"
          f"{'torch':>8}{'sklearn':>8}{'jax':>8}{'vs torch':>9}{'vs skl':>7}{'vs jax':>7}"
          f"{'jax mm':>8}{'jax/mm':>7}")
    for setting, r in rows:
        cr, fit, mm = r["chainrule"], r["chainrule_fit"], r["matmuls"]
        tc, sk, jx, jmm = r.get("torch"), r.get("sklearn"), r.get("jax"), r.get("jax_matmuls")
        print(f"{setting:<22}{cr:>10.3f}{fit:>8.3f}{mm:>8.3f}{cr / mm:>7.2f}x{fit / mm:>6.2f}x"
              f"{_cell(tc, '.3f', 8)}{_cell(sk, '.3f', 8)}{_cell(jx, '.3f', 8)}"
              f"{_cell(_ratio(tc, cr), '.2f', 8)}x{_cell(_ratio(sk, cr), '.2f', 6)}x"
              f"{_cell(_ratio(jx, cr), '.2f', 6)}x{_cell(jmm, '.3f', 8)}"
              f"{_cell(_ratio(jx, jmm), '.2f', 6)}x")
    print("seconds per epoch; 'loop/mm' and 'fit/mm' are chainrule's step loop and model.fit over "
          "NumPy's eight products alone ('matmuls'); 'vs' columns are the step loop's speed-up "
          "(>1 is faster); 'jax mm' is the same eight products jitted in JAX, 'jax/mm' JAX's "
          "epoch over them.")


def print_part2(rows) -> None:
    print(f"{'batch 1024, default':<26}{'fit':>8}{'fit 1 thr':>10}{'torch':>8}{'sklearn':>8}"
          f"{'jax':>8}{'/1 thread':>10}{'vs torch':>9}{'vs skl':>7}{'vs jax':>7}")
    for setting, r in rows:
        fit, one = r["chainrule_fit"], r["chainrule_fit_1"]
        tc, sk, jx = r.get("torch"), r.get("sklearn"), r.get("jax")
        print(f"{setting:<26}{fit:>8.3f}{one:>10.3f}{_cell(tc, '.3f', 8)}{_cell(sk, '.3f', 8)}"
              f"{_cell(jx, '.3f', 8)}{fit / one:>9.2f}x{_cell(_ratio(tc, fit), '.2f', 8)}x"
              f"{_cell(_ratio(sk, fit), '.2f', 6)}x{_cell(_ratio(jx, fit), '.2f', 6)}x")
    print("seconds per epoch; every library on its default threads ('fit 1 thr': chainrule's "
          "fit with threads=1); '/1 thread' is the default fit over the one-thread fit; 'vs' "
          "columns are model.fit's throughput over the peer's (>1 is faster).")


def print_markdown(rows, default_rows) -> None:
    print("\nAs Markdown (seconds per epoch; 'vs' are chainrule's speed-ups):\n")
    print("| setting | chainrule step loop | `model.fit` | PyTorch | scikit-learn | JAX | "
          "matmuls alone | vs PyTorch | vs scikit-learn | vs JAX | step loop over matmuls | "
          "fit over matmuls |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")

    def sec(v):
        return "-" if v is None else f"{v:.3f} s"

    def times(v):
        return "-" if v is None else f"{v:.2f}x"

    for setting, r in rows:
        cr = r["chainrule"]
        print(f"| {setting} | {sec(cr)} | {sec(r['chainrule_fit'])} | {sec(r.get('torch'))} | "
              f"{sec(r.get('sklearn'))} | {sec(r.get('jax'))} | {sec(r['matmuls'])} | "
              f"{times(_ratio(r.get('torch'), cr))} | {times(_ratio(r.get('sklearn'), cr))} | "
              f"{times(_ratio(r.get('jax'), cr))} | {times(cr / r['matmuls'])} | "
              f"{times(r['chainrule_fit'] / r['matmuls'])} |")
    print("\n| batch 1024, default threads | `model.fit` | `model.fit`, 1 thread | PyTorch | "
          "scikit-learn | JAX | vs PyTorch | vs scikit-learn | vs JAX |")
    print("|---|---|---|---|---|---|---|---|---|")
    for setting, r in default_rows:
        fit = r["chainrule_fit"]
        print(f"| {setting} | {sec(fit)} | {sec(r['chainrule_fit_1'])} | {sec(r.get('torch'))} | "
              f"{sec(r.get('sklearn'))} | {sec(r.get('jax'))} | "
              f"{times(_ratio(r.get('torch'), fit))} | {times(_ratio(r.get('sklearn'), fit))} | "
              f"{times(_ratio(r.get('jax'), fit))} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--skip-sklearn", action="store_true")
    args = parser.parse_args(argv)

    X, y = load_mnist()
    print_environment("sklearn", "torch", "jax")
    torch_version = sys.modules["torch"].__version__ if "torch" in sys.modules else "absent"
    print(
        f"MLP {'-'.join(map(str, SIZES))}, float32, SGD, one epoch of {len(X):,} samples; "
        f"median of {args.repeats}, interleaved. torch {torch_version}, numpy {np.__version__}"
    )
    rows = []
    for batch, threads in ((128, 1), (1024, 2)):
        r = run(batch, threads, args.repeats, args.lr, args.skip_sklearn, X, y)
        rows.append((f"batch {batch}, {threads} thread{'s' if threads > 1 else ''}", r))
    print_part1(rows)
    print()
    default_rows = [("quiet", run_default(1024, args.repeats, args.lr, args.skip_sklearn, X, y))]
    with busy_core():
        default_rows.append(("one core busy",
                             run_default(1024, args.repeats, args.lr, args.skip_sklearn, X, y)))
    print_part2(default_rows)
    print_markdown(rows, default_rows)
    print()
    t_cr = import_time("chainrule")
    t_nn = import_time("chainrule.nn")
    t_np = import_time("numpy")
    t_torch = import_time("torch") if have("torch") else None
    print(f"import chainrule: {t_cr * 1000:.0f} ms   import chainrule.nn (loads NumPy): "
          f"{t_nn * 1000:.0f} ms   import numpy: {t_np * 1000:.0f} ms   import torch: "
          + ("not installed" if t_torch is None else f"{t_torch * 1000:.0f} ms"))


if __name__ == "__main__":
    main()
