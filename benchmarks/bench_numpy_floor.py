"""The floor for a NumPy core: a minimal hand-written training loop for bench_mlp's network.

MLP 784-256-128-10, ReLU, softmax + cross-entropy, float32, plain SGD, batch 128, 1 BLAS thread,
one epoch of MNIST. No checks, no layers, every buffer preallocated and written with ``out=``:
the least a NumPy loop can do per batch. Printed per repeat: the full epoch, the epoch without
the batch gather (``np.take``), the epoch without the weight update, and the eight matmuls alone.
chainrule's own epoch (bench_mlp.py) is compared with these figures in the README.

    uv run python benchmarks/bench_numpy_floor.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from bench_mlp import SIZES, load_mnist, matmuls_alone
from blas_info import print_environment


class Floor:
    def __init__(self, batch: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.B = batch
        self.W = [
            (rng.standard_normal((i, o)) * np.sqrt(2 / i)).astype(np.float32)
            for i, o in itertools.pairwise(SIZES)
        ]
        self.b = [np.zeros(o, np.float32) for o in SIZES[1:]]
        self.dW = [np.empty_like(w) for w in self.W]
        self.db = [np.empty_like(b) for b in self.b]
        self.H = [np.empty((batch, o), np.float32) for o in SIZES[1:]]  # layer outputs
        self.D = [np.empty((batch, o), np.float32) for o in SIZES[1:]]  # dE/dZ per layer
        self.ones = np.ones(batch, np.float32)
        self.xb = np.empty((batch, SIZES[0]), np.float32)
        self.yb = np.empty(batch, np.int64)
        self.rows = np.arange(batch)

    def epoch(self, X, y, order, lr=0.05, take=True, update=True) -> float:
        B, W, b, H, D = self.B, self.W, self.b, self.H, self.D
        t = time.perf_counter()
        for i in range(0, len(order) - B + 1, B):
            if take:
                np.take(X, order[i : i + B], axis=0, out=self.xb)
                np.take(y, order[i : i + B], out=self.yb)
            h = self.xb
            for k in range(3):
                np.matmul(h, W[k], out=H[k])
                H[k] += b[k]
                if k < 2:
                    np.maximum(H[k], 0, out=H[k])
                h = H[k]
            g = D[2]  # (softmax(z) - onehot) / m
            np.subtract(H[2], H[2].max(axis=1, keepdims=True), out=g)
            np.exp(g, out=g)
            g /= g.sum(axis=1, keepdims=True)
            g[self.rows, self.yb] -= 1.0
            g *= 1.0 / B
            for k in (2, 1, 0):
                below = self.xb if k == 0 else H[k - 1]
                np.matmul(below.T, D[k], out=self.dW[k])
                np.matmul(self.ones, D[k], out=self.db[k])
                if k > 0:
                    np.matmul(D[k], W[k].T, out=D[k - 1])
                    D[k - 1] *= H[k - 1] > 0
            if update:
                for p, dp in zip(W + b, self.dW + self.db, strict=True):
                    dp *= lr
                    p -= dp
        return time.perf_counter() - t


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    print_environment()
    X, y = load_mnist()
    floor = Floor(128)
    rng = np.random.default_rng(0)
    print("minimal NumPy loop, batch 128, 1 thread: seconds per epoch")
    print(f"{'full':>8}{'no take':>9}{'no update':>11}{'matmuls':>9}")
    with threadpool_limits(1):
        for _ in range(args.repeats):
            order = rng.permutation(len(X))
            full = floor.epoch(X, y, order)
            no_take = floor.epoch(X, y, order, take=False)
            no_update = floor.epoch(X, y, order, update=False)
            mm = matmuls_alone(floor.W, X, 128)
            print(f"{full:>8.3f}{no_take:>9.3f}{no_update:>11.3f}{mm:>9.3f}")


if __name__ == "__main__":
    main()
