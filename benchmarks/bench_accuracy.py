"""Accuracy within a time budget: MNIST (target >= 98.0%) and Fashion-MNIST (target >= 89.0%).

Trains an MLP with the public API (``model.fit``) on the 60,000 training images (found or
downloaded as ``chainrule train --data mnist`` does) for at most ``--budget`` seconds of
training (default 60), then prints the test
accuracy on the 10,000 test images and the seconds spent.

    uv run python benchmarks/bench_accuracy.py [--budget 60] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

from blas_info import print_environment
from chainrule import data
from chainrule.nn import mlp
from chainrule.optim import CosineLR

RECIPES = {
    # name: (hidden sizes, epochs, batch size, learning rate, dropout)
    "mnist": ((512, 256), 16, 128, 2e-3, 0.2),
    "fashion-mnist": ((512, 256), 16, 128, 1e-3, 0.2),
}


def train(name: str, budget: float, seed: int, threads: int | None) -> dict:
    try:
        ds = data.load_dataset(name)
    except (OSError, ImportError, ValueError) as exc:
        raise SystemExit(f"bench_accuracy: {exc}") from None
    hidden, epochs, batch, lr, dropout = RECIPES[name]
    model = mlp([784, *hidden, 10], activation="relu", output="softmax", dropout=dropout, seed=seed)
    start = time.perf_counter()

    def out_of_time(epoch, logs, model):
        """Stop when one more epoch of the average length would overrun the budget."""
        elapsed = time.perf_counter() - start
        return elapsed + elapsed / (epoch + 1) > budget

    history = model.fit(
        ds.X, ds.y, loss="ce", optimizer="adam", lr=lr, epochs=epochs, batch_size=batch,
        schedule=CosineLR(t_max=epochs), seed=seed, verbose=0, callbacks=[out_of_time],
        threads=threads,
    )
    seconds = time.perf_counter() - start
    test = model.evaluate(ds.X_test, ds.y_test)
    return {"dataset": name, "accuracy": test["accuracy"], "seconds": seconds,
            "epochs": history.epochs_run, "hidden": hidden}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="training seconds allowed")
    parser.add_argument("--threads", type=int, default=2,
                        help="BLAS threads (0: fit's default choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=sorted(RECIPES))
    args = parser.parse_args(argv)
    print_environment()
    targets = {"mnist": 0.98, "fashion-mnist": 0.89}
    print(f"BLAS threads during training: {args.threads or 'fit default'}")
    for name in [args.only] if args.only else RECIPES:
        r = train(name, args.budget, args.seed, args.threads or None)
        ok = "meets" if r["accuracy"] >= targets[name] else "MISSES"
        print(f"{name:<14} MLP 784-{'-'.join(map(str, r['hidden']))}-10: test accuracy "
              f"{r['accuracy']:.2%} after {r['epochs']} epochs in {r['seconds']:.1f}s of "
              f"training ({ok} the {targets[name]:.0%} target)")


if __name__ == "__main__":
    main()
