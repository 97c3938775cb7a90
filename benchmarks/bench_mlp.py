"""Training speed: chainrule against PyTorch, scikit-learn and JAX, interleaved.

MLP 784-256-128-10 (ReLU, softmax + cross-entropy), float32, one epoch of MNIST's 60,000
training images, plain SGD. Every framework starts from the same weights and sees the same
batches in the same order. Printed: each library's BLAS, kernel and threads, the median epoch
time over the repeats, and ratios. Also: the eight matrix products of an epoch alone (chainrule's
floor, and JAX's), and the time of ``import chainrule`` beside ``import torch``. JAX, when it is
installed, runs in a worker process per thread count (see jax_peer.py), interleaved with the rest.

Run by hand (PyTorch and JAX are not project dependencies):

    uv pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
    uv pip install jax   # optional: JAX joins as a peer when installed
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        uv run python benchmarks/bench_mlp.py [--repeats 5] [--skip-sklearn]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from blas_info import print_environment, threads_in_effect

HERE = Path(__file__).resolve().parent
SIZES = [784, 256, 128, 10]


def load_mnist():
    """MNIST's training set, found (or downloaded) as ``chainrule train --data mnist`` does;
    one line and exit 1 when it cannot be had."""
    from chainrule.data import load_dataset

    try:
        ds = load_dataset("mnist")
    except (OSError, ImportError, ValueError) as exc:
        sys.exit(f"bench_mlp: {exc}")
    return ds.X, ds.y


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


def run(batch: int, threads: int, repeats: int, lr: float, skip_sklearn: bool, X, y) -> dict:
    import torch
    from threadpoolctl import threadpool_limits

    from chainrule import optim
    from chainrule.nn import mlp

    torch.set_num_threads(threads)
    model = mlp(SIZES, activation="relu", output="softmax", seed=0)
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
    opt = optim.SGD(lr=lr)
    topt = torch.optim.SGD(net.parameters(), lr=lr)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    clf = None
    if not skip_sklearn:
        from sklearn.neural_network import MLPClassifier

        clf = MLPClassifier(
            hidden_layer_sizes=(256, 128),
            solver="sgd",
            momentum=0.0,
            learning_rate_init=lr,
            batch_size=batch,
            alpha=0.0,
            shuffle=False,
            random_state=0,
        )
    jax = None
    if importlib.util.find_spec("jax") is not None:
        from jax_peer import JaxWorker

        jax = JaxWorker(threads, lr)
    times = {k: [] for k in ("chainrule", "chainrule_fit", "torch", "sklearn", "jax", "matmuls",
                             "jax_matmuls")}
    fit_model = mlp(SIZES, activation="relu", output="softmax", seed=0)
    try:
        with threadpool_limits(threads):
            print(f"  batch {batch}: threads in effect: {threads_in_effect()}"
                  + (f"; {jax.info}" if jax else "; JAX not installed"))
            for r in range(repeats):
                order = np.random.default_rng(r).permutation(len(X))  # the JAX worker's too
                times["chainrule"].append(chainrule_epoch(model, opt, X, y, order, batch))
                times["torch"].append(torch_epoch(net, topt, Xt, yt, order, batch))
                if jax is not None:
                    times["jax"].append(jax.ask(f"epoch {batch} {r}"))
                times["chainrule_fit"].append(
                    chainrule_fit_epoch(fit_model, X, y, batch, lr, threads)
                )
                if clf is not None:
                    times["sklearn"].append(sklearn_epoch(clf, X, y, order, batch))
                times["matmuls"].append(matmuls_alone([d.W for d in model.dense_layers], X, batch))
                if jax is not None:
                    times["jax_matmuls"].append(jax.ask(f"matmuls {batch}"))
    finally:
        if jax is not None:
            jax.close()
    return {k: statistics.median(v) for k, v in times.items() if v}


def _cell(value: float | None, fmt: str, width: int) -> str:
    return f"{'-' if value is None else format(value, fmt):>{width}}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--skip-sklearn", action="store_true")
    args = parser.parse_args(argv)

    X, y = load_mnist()
    import torch

    print_environment("sklearn", "torch", "jax")
    print(
        f"MLP {'-'.join(map(str, SIZES))}, float32, SGD, one epoch of {len(X):,} MNIST samples; "
        f"median of {args.repeats}, interleaved. torch {torch.__version__}, numpy {np.__version__}"
    )
    rows = []
    for batch, threads in ((128, 1), (1024, 2)):
        r = run(batch, threads, args.repeats, args.lr, args.skip_sklearn, X, y)
        rows.append((f"batch {batch}, {threads} thread{'s' if threads > 1 else ''}", r))
    header = (
        f"{'setting':<22}{'chainrule':>10}{'(fit)':>8}{'torch':>8}{'sklearn':>8}{'jax':>8}"
        f"{'matmuls':>8}{'vs torch':>9}{'vs skl':>8}{'vs jax':>8}{'/matmuls':>9}"
        f"{'jax mm':>8}{'jax/mm':>8}"
    )
    print(header)
    for setting, r in rows:
        cr = r["chainrule"]
        sk, jx, jmm = r.get("sklearn"), r.get("jax"), r.get("jax_matmuls")
        print(
            f"{setting:<22}{cr:>10.3f}{r['chainrule_fit']:>8.3f}{r['torch']:>8.3f}"
            f"{_cell(sk, '.3f', 8)}{_cell(jx, '.3f', 8)}{r['matmuls']:>8.3f}"
            f"{r['torch'] / cr:>8.2f}x{_cell(sk and sk / cr, '.2f', 7)}x"
            f"{_cell(jx and jx / cr, '.2f', 7)}x{cr / r['matmuls']:>8.2f}x"
            f"{_cell(jmm, '.3f', 8)}{_cell(jx and jmm and jx / jmm, '.2f', 7)}x"
        )
    print(
        "seconds per epoch; 'vs' columns are chainrule's speed-up (>1 is faster); '/matmuls' is "
        "chainrule's epoch over NumPy's eight products alone; 'jax mm' is the same eight "
        "products jitted in JAX and 'jax/mm' JAX's epoch over them."
    )
    print("\nAs a Markdown table (seconds per epoch; 'vs' are chainrule's speed-ups):\n")
    print("| setting | chainrule step loop | `model.fit` | PyTorch | scikit-learn | JAX | "
          "matmuls alone | vs PyTorch | vs scikit-learn | vs JAX | over matmuls |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for setting, r in rows:
        cr, sk, jx = r["chainrule"], r.get("sklearn"), r.get("jax")

        def sec(v):
            return "-" if v is None else f"{v:.3f} s"

        def ratio(v, cr=cr):
            return "-" if v is None else f"{v / cr:.2f}x"

        print(f"| {setting} | {sec(cr)} | "
              f"{sec(r['chainrule_fit'])} | {sec(r['torch'])} | {sec(sk)} | {sec(jx)} | "
              f"{sec(r['matmuls'])} | {ratio(r['torch'])} | {ratio(sk)} | {ratio(jx)} | "
              f"{cr / r['matmuls']:.2f}x |")
    print()
    t_cr = import_time("chainrule")
    t_nn = import_time("chainrule.nn")
    t_np = import_time("numpy")
    t_torch = import_time("torch")
    print(f"import chainrule: {t_cr * 1000:.0f} ms   import chainrule.nn (loads NumPy): "
          f"{t_nn * 1000:.0f} ms   import numpy: {t_np * 1000:.0f} ms   "
          f"import torch: {t_torch * 1000:.0f} ms")


if __name__ == "__main__":
    main()
