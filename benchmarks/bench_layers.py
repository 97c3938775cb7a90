"""Normalization and attention on MNIST: curves, accuracy within a budget, epoch times beside
PyTorch's.

1. ``batchnorm``: an MLP 784-256-128-10 with BatchNorm after each hidden Dense layer against
   the same MLP without, both trained with the same optimizer, learning rate, batches and
   starting weights. Printed: the test accuracy after every epoch (both curves) and the first
   epoch at which each reaches 98%.
2. ``attention``: MNIST read as 28 rows of 28 pixels: DenseOverTime(28, d) per row, a learned
   position per row, ``--blocks`` pre-norm transformer blocks (LayerNorm + multi-head
   self-attention, LayerNorm + a 2d-wide ReLU feed-forward layer, each inside a Residual), the
   mean over the rows, Dense(d, 10). Trained with Adam for at most ``--budget`` seconds; the
   target is 97% test accuracy within 300 s on 2 cores.

For each model, the seconds of one epoch of chainrule's ``fit`` beside one epoch of the same
model in PyTorch (same weights, same batches, same optimizer, the same threads), when PyTorch is
installed. MNIST is found or downloaded as ``chainrule train --data mnist`` does
(``CHAINRULE_DATA_DIR`` names a folder that holds ``mnist/``).

    uv run python benchmarks/bench_layers.py                     # both, full settings
    uv run python benchmarks/bench_layers.py --only attention --budget 300
    uv run python benchmarks/bench_layers.py --quick             # a smoke run of a minute
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from blas_info import print_environment
from chainrule.data import load_dataset
from chainrule.nn import (
    BatchNorm,
    Dense,
    DenseOverTime,
    LayerNorm,
    MeanOverTime,
    MultiHeadAttention,
    PositionalEmbedding,
    ReLU,
    Residual,
    Sequential,
    Softmax,
)
from chainrule.optim import SGD, Adam, CosineLR
from chainrule.serialization import read_safetensors


def load_mnist(n_train: int | None):
    """MNIST (the first ``n_train`` training images when given); exit 1 with one line when it
    cannot be had."""
    try:
        ds = load_dataset("mnist")
    except (OSError, ImportError, ValueError) as exc:
        sys.exit(f"bench_layers: {exc}")
    X, y = ds.X[:n_train], ds.y[:n_train]
    return X, y, ds.X_test, ds.y_test


# --- the models, in chainrule and in PyTorch -----------------------------------------------------


def mlp_model(batch_norm: bool, seed: int) -> Sequential:
    layers = []
    for n_in, n_out in ((784, 256), (256, 128)):
        layers += [Dense(n_in, n_out), *([BatchNorm(n_out)] if batch_norm else []), ReLU()]
    return Sequential([*layers, Dense(128, 10), Softmax()], seed=seed)


def attention_model(d: int, heads: int, blocks: int, seed: int) -> Sequential:
    layers = [DenseOverTime(28, d), PositionalEmbedding(28, d)]
    for _ in range(blocks):
        layers += [Residual([LayerNorm(d), MultiHeadAttention(d, heads)]),
                   Residual([LayerNorm(d), DenseOverTime(d, 2 * d), ReLU(),
                             DenseOverTime(2 * d, d)])]
    return Sequential([*layers, LayerNorm(d), MeanOverTime(), Dense(d, 10), Softmax()],
                      seed=seed)


def torch_twin(model: Sequential):
    """The same network in PyTorch, its weights loaded from chainrule's model file (the
    softmax left out: PyTorch's cross-entropy takes the logits)."""
    import torch

    nn = torch.nn

    class Residual_(nn.Sequential):
        def forward(self, x):
            return x + super().forward(x)

    class SelfAttention(nn.MultiheadAttention):
        def forward(self, x):
            return super().forward(x, x, x, need_weights=False)[0]

    class Positions(nn.Module):
        def __init__(self, max_len, d):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(max_len, d))

        def forward(self, x):
            return x + self.weight[: x.shape[1]]

    class MeanOverRows(nn.Module):
        def forward(self, x):
            return x.mean(dim=1)

    def build(layer):
        if isinstance(layer, Residual):
            return Residual_(*map(build, layer.layers))
        if isinstance(layer, MultiHeadAttention):
            return SelfAttention(layer.d_model, layer.num_heads, batch_first=True)
        if isinstance(layer, PositionalEmbedding):
            return Positions(layer.max_len, layer.d_model)
        if isinstance(layer, Dense):
            return nn.Linear(layer.in_features, layer.out_features)
        if isinstance(layer, BatchNorm):
            return nn.BatchNorm1d(layer.num_features)
        if isinstance(layer, LayerNorm):
            return nn.LayerNorm(layer.num_features)
        if isinstance(layer, MeanOverTime):
            return MeanOverRows()
        return nn.ReLU()

    net = nn.Sequential(*map(build, model.layers[:-1]))
    with tempfile.TemporaryDirectory() as folder:
        tensors, _ = read_safetensors(model.save(Path(folder) / "model.safetensors"))
    net.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=True)
    return net


# --- timing and curves ---------------------------------------------------------------------------


def torch_epoch_seconds(model: Sequential, X, y, batch: int, lr: float, optimizer: str,
                        seed: int) -> float | None:
    """One epoch of the PyTorch twin over the same shuffled batches; None without PyTorch."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    net = torch_twin(model)
    net.train()
    opt = (torch.optim.Adam(net.parameters(), lr=lr) if optimizer == "adam"
           else torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9))
    lossf = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(X)))
    start = time.perf_counter()
    for i in range(0, len(X), batch):
        idx = order[i : i + batch]
        if len(idx) < 2 and any(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules()):
            continue  # BatchNorm needs two samples per batch, in chainrule and PyTorch alike
        opt.zero_grad(set_to_none=True)
        lossf(net(Xt[idx]), yt[idx]).backward()
        opt.step()
    return time.perf_counter() - start


def train(model: Sequential, X, y, X_test, y_test, args, optimizer: str, lr: float,
          epochs: int, budget: float | None = None):
    """model.fit with the test set as validation data (the curve), stopping before an epoch
    that would overrun ``budget`` seconds; returns the History."""
    start = time.perf_counter()

    def out_of_time(epoch, logs, model):
        elapsed = time.perf_counter() - start
        return budget is not None and elapsed + elapsed / (epoch + 1) > budget

    schedule = CosineLR(t_max=epochs) if optimizer == "adam" else None
    opt = SGD(lr=lr, momentum=0.9) if optimizer == "sgd" else Adam(lr=lr)
    return model.fit(X, y, loss="ce", optimizer=opt, epochs=epochs,
                     batch_size=args.batch, validation_data=(X_test, y_test), seed=args.seed,
                     schedule=schedule, verbose=0, callbacks=[out_of_time],
                     threads=args.threads)


def first_epoch_at(history, target: float) -> str:
    hits = [e for e, acc in zip(history.epoch, history.val_accuracy, strict=True) if acc >= target]
    return f"epoch {hits[0]}" if hits else f"not within {history.epochs_run} epochs"


def curve(history) -> str:
    return " ".join(f"{acc:.2%}" for acc in history.val_accuracy)


# --- the two benchmarks --------------------------------------------------------------------------


def bench_batchnorm(args, data) -> None:
    X, y, X_test, y_test = data
    print(f"\n== MLP 784-256-128-10 with and without BatchNorm: SGD momentum 0.9, lr {args.lr_sgd},"
          f" batch {args.batch}, {args.epochs} epochs on {len(X):,} images ==")
    for batch_norm in (False, True):
        name = "with BatchNorm   " if batch_norm else "without BatchNorm"
        torch_s = torch_epoch_seconds(mlp_model(batch_norm, args.seed), X, y, args.batch,
                                      args.lr_sgd, "sgd", args.seed)
        model = mlp_model(batch_norm, args.seed)
        history = train(model, X, y, X_test, y_test, args, "sgd", args.lr_sgd, args.epochs)
        print(f"{name}: 98% test accuracy at {first_epoch_at(history, 0.98)}; "
              f"last {history.val_accuracy[-1]:.2%}")
        print(f"  test accuracy by epoch: {curve(history)}")
        print(f"  train loss by epoch:    {' '.join(f'{v:.4f}' for v in history.loss)}")
        print(f"  seconds per epoch: chainrule {np.median(history.time):.2f} s, "
              f"PyTorch {'not installed' if torch_s is None else f'{torch_s:.2f} s'}")


def bench_attention(args, data) -> None:
    X, y, X_test, y_test = data
    rows, rows_test = X.reshape(-1, 28, 28), X_test.reshape(-1, 28, 28)
    d, heads, blocks = args.d_model, args.heads, args.blocks
    print(f"\n== Attention over MNIST rows: d_model {d}, {heads} heads, {blocks} block(s), Adam "
          f"lr {args.lr_adam} (cosine), batch {args.batch}, at most {args.budget:.0f} s on "
          f"{len(X):,} images ==")
    torch_s = torch_epoch_seconds(attention_model(d, heads, blocks, args.seed), rows, y,
                                  args.batch, args.lr_adam, "adam", args.seed)
    model = attention_model(d, heads, blocks, args.seed)
    print(f"{model.n_parameters():,} parameters")
    start = time.perf_counter()
    history = train(model, rows, y, rows_test, y_test, args, "adam", args.lr_adam,
                    args.attention_epochs, budget=args.budget)
    seconds = time.perf_counter() - start
    final = history.val_accuracy[-1]
    verdict = "meets" if final >= 0.97 else "MISSES"
    print(f"test accuracy {final:.2%} after {history.epochs_run} epochs in {seconds:.0f} s "
          f"({verdict} the 97% target); 97% at {first_epoch_at(history, 0.97)}")
    print(f"  test accuracy by epoch: {curve(history)}")
    print(f"  seconds per epoch: chainrule {np.median(history.time):.2f} s, "
          f"PyTorch {'not installed' if torch_s is None else f'{torch_s:.2f} s'}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("batchnorm", "attention"))
    parser.add_argument("--epochs", type=int, default=15,
                        help="epochs of the two MLPs (default 15)")
    parser.add_argument("--attention-epochs", type=int, default=10,
                        help="epochs at most of the attention model, the length of its cosine "
                             "schedule (default 10)")
    parser.add_argument("--budget", type=float, default=300.0,
                        help="training seconds allowed for the attention model (default 300)")
    parser.add_argument("--train-samples", type=int, default=None,
                        help="train on the first N images only (default: all 60,000)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr-sgd", type=float, default=0.05)
    parser.add_argument("--lr-adam", type=float, default=2e-3)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--blocks", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads (PyTorch too)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 3,000 images, 2 epochs, 60 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_samples, args.epochs, args.attention_epochs, args.budget = 3000, 2, 2, 60.0
    has_torch = importlib.util.find_spec("torch") is not None
    if has_torch:
        import torch

        torch.set_num_threads(args.threads)
    print_environment("numpy", *(["torch"] if has_torch else []))
    data = load_mnist(args.train_samples)
    if args.only in (None, "batchnorm"):
        bench_batchnorm(args, data)
    if args.only in (None, "attention"):
        bench_attention(args, data)


if __name__ == "__main__":
    main()
