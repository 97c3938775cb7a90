"""A small CNN on MNIST: chainrule's test accuracy, and its epoch time beside PyTorch's.

The network is ``chainrule train --layers c32k3,p2,c64k3,p2,128``: two 3x3 convolutions (32 and
64 channels, ReLU), each followed by 2x2 max pooling, a dense layer of 128 ReLU units and a
softmax output, float32, Adam (lr 1e-3; for the accuracy run annealed to 0 over the epochs by a
cosine schedule), batches of 128.

1. Accuracy: ``model.fit`` for ``--epochs`` epochs on the 60,000 training images, with the
   test accuracy on the 10,000 test images after each epoch (skipped with ``--timing-only``).
2. Speed: one epoch of chainrule's step loop (``Trainer.step`` over ``Batches``, the loop
   ``fit`` runs) beside one epoch of PyTorch for the same network, from the same weights, on the
   same batches in the same order, in this one process, five batches of each in turn (so that
   both meet the same load on a busy machine); on one thread and on all cores
   (threadpoolctl for NumPy's BLAS, ``torch.set_num_threads`` for PyTorch). With
   ``--timing-only N`` each library runs N batches and the epoch time is extrapolated (said in
   the output).

The data is read from ``$CHAINRULE_DATA_DIR/mnist``, else from the shared data folder beside
the repository (as the tests look it up); without it the benchmark says so and exits 0. Run
(PyTorch is not a project dependency):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE uv run python benchmarks/bench_cnn.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE uv run python benchmarks/bench_cnn.py \\
        --timing-only 50
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from blas_info import print_environment, threads_in_effect

ROOT = Path(__file__).resolve().parents[1]
LAYERS = "c32k3,p2,c64k3,p2,128"
BATCH, LR = 128, 1e-3


def find_mnist() -> Path | None:
    """The MNIST IDX folder: ``$CHAINRULE_DATA_DIR/mnist``, else the shared data folder's."""
    places = [Path(os.environ["CHAINRULE_DATA_DIR"])] if os.environ.get("CHAINRULE_DATA_DIR") \
        else []
    places.append(ROOT.parent / "shared" / "data")
    for place in places:
        if (place / "mnist").is_dir():
            return place / "mnist"
    return None


def build(seed: int = 0):
    """The chainrule CNN, for (1, 28, 28) images and 10 classes."""
    from chainrule.nn.spec import network, parse_layers

    return network(parse_layers(LAYERS), (1, 28, 28), 10, activation="relu", output="softmax",
                   seed=seed)


def torch_twin(model):
    """The same network in PyTorch, with chainrule's weights (Conv2D's layout is PyTorch's;
    a Dense weight is the transpose of nn.Linear's)."""
    import torch
    from torch import nn

    from chainrule.nn import Conv2D, Dense, Flatten, MaxPool2D, ReLU

    layers = []
    for layer in model.layers:
        if isinstance(layer, Conv2D):
            conv = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size)
            conv.weight.data = torch.from_numpy(layer.weight.copy())
            conv.bias.data = torch.from_numpy(layer.bias.copy())
            layers.append(conv)
        elif isinstance(layer, Dense):
            linear = nn.Linear(layer.in_features, layer.out_features)
            linear.weight.data = torch.from_numpy(np.ascontiguousarray(layer.W.T))
            linear.bias.data = torch.from_numpy(layer.b.copy())
            layers.append(linear)
        elif isinstance(layer, MaxPool2D):
            layers.append(nn.MaxPool2d(layer.kernel_size))
        elif isinstance(layer, ReLU):
            layers.append(nn.ReLU())
        elif isinstance(layer, Flatten):
            layers.append(nn.Flatten())
    return nn.Sequential(*layers)  # the softmax is in the loss, as chainrule fuses it


class ChainruleRun:
    """chainrule's training loop (Trainer.step over Batches, the loop ``fit`` runs), a chunk of
    batches at a time."""

    def __init__(self, model, X, y):
        from chainrule import losses, optim
        from chainrule.training import Batches, Trainer

        self.trainer = Trainer(model, losses.CrossEntropy(), optim.get("adam", lr=LR))
        self.batches = Batches(X, y, BATCH)
        model.train()

    def run(self, order) -> float:
        t = time.perf_counter()
        for xb, yb, _ in self.batches(order):
            self.trainer.step(xb, yb)
        return time.perf_counter() - t


class TorchRun:
    """The same steps in PyTorch (Adam, cross-entropy on the logits)."""

    def __init__(self, net, X, y):
        import torch

        self.torch, self.net = torch, net
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.opt = torch.optim.Adam(net.parameters(), lr=LR)
        self.lossf = torch.nn.CrossEntropyLoss()

    def run(self, order) -> float:
        idx_all = self.torch.from_numpy(order)
        t = time.perf_counter()
        for i in range(0, len(order), BATCH):
            idx = idx_all[i: i + BATCH]
            self.opt.zero_grad(set_to_none=True)
            self.lossf(self.net(self.X[idx]), self.y[idx]).backward()
            self.opt.step()
        return time.perf_counter() - t


def timing(X, y, threads: int, n_batches: int, full: int, chunk: int = 5) -> dict:
    """One epoch (or ``n_batches`` extrapolated to ``full``) of each library on ``threads``,
    interleaved ``chunk`` batches at a time so that both meet the same load."""
    import torch
    from threadpoolctl import threadpool_limits

    order = np.random.default_rng(0).permutation(len(X))[: full * BATCH]
    model = build()
    ours, theirs = ChainruleRun(model, X, y), TorchRun(torch_twin(model), X, y)
    torch.set_num_threads(threads)
    totals = [0.0, 0.0]
    with threadpool_limits(threads):
        in_effect = threads_in_effect()
        ours.run(order[:BATCH])  # a warm-up batch each (allocations, threads)
        theirs.run(order[:BATCH])
        for start in range(0, n_batches, chunk):
            part = order[start * BATCH: min(start + chunk, n_batches) * BATCH]
            totals[0] += ours.run(part)
            totals[1] += theirs.run(part)
    scale = full / n_batches
    return {"threads": threads, "chainrule": totals[0] * scale, "torch": totals[1] * scale,
            "in_effect": in_effect}


def accuracy(X, y, X_test, y_test, epochs: int) -> tuple[list[float], float]:
    """chainrule's test accuracy after each of ``epochs`` epochs of ``fit`` (the test set as
    its validation data: it is scored, never trained on), and the seconds taken."""
    from chainrule.optim import CosineLR

    model = build()
    t = time.perf_counter()
    history = model.fit(X, y, loss="ce", optimizer="adam", lr=LR, epochs=epochs,
                        batch_size=BATCH, schedule=CosineLR(t_max=epochs),
                        validation_data=(X_test, y_test), seed=0, verbose=1, threads=1)
    return history.val_accuracy, time.perf_counter() - t


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs of the accuracy run "
                        "(default: %(default)s)")
    parser.add_argument("--timing-only", type=int, metavar="N", default=None,
                        help="skip the accuracy run; time N batches of each library and "
                        "extrapolate to an epoch")
    args = parser.parse_args(argv)
    folder = find_mnist()
    if folder is None:
        print("bench_cnn: no MNIST (set CHAINRULE_DATA_DIR to the folder holding mnist/); "
              "nothing measured.")
        return 0
    from chainrule.data import load_idx_folder

    ds = load_idx_folder(folder)
    X, y = ds.X.reshape(-1, 1, 28, 28), ds.y.astype(np.int64)
    X_test = ds.X_test.reshape(-1, 1, 28, 28)
    print_environment("numpy", "torch")
    print(f"network: {LAYERS} (chainrule train --layers), float32, Adam lr {LR}, batch {BATCH}")
    if args.timing_only is None:
        accs, seconds = accuracy(X, y, X_test, ds.y_test, args.epochs)
        per_epoch = ", ".join(f"{a:.2%}" for a in accs)
        print(f"accuracy on MNIST's 10,000 test images after each epoch of fit: {per_epoch} "
              f"({seconds:.0f}s on 1 thread, test scoring included)")
    full = len(X) // BATCH
    n = full if args.timing_only is None else min(args.timing_only, full)
    what = "one epoch" if n == full else f"{n} batches, extrapolated to an epoch of {full}"
    print(f"epoch time ({what}; both in this process, same weights and batches):")
    for threads in sorted({1, os.cpu_count() or 1}):
        row = timing(X, y, threads, n, full)
        print(f"  {threads} thread(s): chainrule {row['chainrule']:7.1f}s   PyTorch "
              f"{row['torch']:7.1f}s   ratio {row['chainrule'] / row['torch']:.2f}x   "
              f"[{row['in_effect']}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
