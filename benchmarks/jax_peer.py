"""JAX as a peer in bench_mlp.py: the same network, weights, batches and SGD step, ``jax.jit``-ed.

XLA sizes its CPU thread pool once, from the CPUs the process may run on, so each thread count
gets its own worker process (``python jax_peer.py THREADS``), restricted to that many CPUs with
``sched_setaffinity`` before JAX loads. The benchmark sends it one command per line and reads
back one time in seconds, so that JAX's epochs interleave with the other frameworks':

    epoch BATCH SEED     one epoch in the order numpy.random.default_rng(SEED).permutation(n),
                         each batch gathered inside the jitted step (as chainrule's loop does)
    matmuls BATCH        the eight products of an epoch alone (bench_mlp.matmuls_alone), jitted;
                         the epoch over this is where XLA's time goes besides the products
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class JaxWorker:
    """A JAX process limited to ``threads`` CPUs, driven line by line."""

    def __init__(self, threads: int, lr: float):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "jax_peer.py"), str(threads), repr(lr)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.info = self._read()  # the worker's description of itself, once it is ready

    def _read(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the JAX worker stopped; run `python benchmarks/jax_peer.py 1`.")
        return line.strip()

    def ask(self, command: str) -> float:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return float(self._read())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _serve(threads: int, lr: float) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cpus[:threads])
    import jax
    import jax.numpy as jnp
    import numpy as np

    from bench_mlp import SIZES, load_mnist
    from chainrule.nn import mlp

    X_np, y_np = load_mnist(quiet=True)
    X, y = jnp.asarray(X_np), jnp.asarray(y_np.astype(np.int32))
    model = mlp(SIZES, activation="relu", output="softmax", seed=0)  # bench_mlp's start
    start = [(jnp.asarray(d.W), jnp.asarray(d.b)) for d in model.dense_layers]

    def logits(params, xb, dot):
        h = xb
        for W, b in params[:-1]:
            h = jax.nn.relu(dot(h, W) + b)
        W, b = params[-1]
        return dot(h, W) + b

    def loss(params, xb, yb, dot):
        logp = jax.nn.log_softmax(logits(params, xb, dot))
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    def make_step(dot):
        def step(params, idx):
            xb, yb = X[idx], y[idx]
            grads = jax.grad(loss)(params, xb, yb, dot)
            return jax.tree.map(lambda p, g: p - lr * g, params, grads)

        return jax.jit(step, donate_argnums=0)

    step = make_step(jnp.matmul)

    @jax.jit
    def products(xb, Ws):
        h1 = xb @ Ws[0]
        h2 = h1 @ Ws[1]
        out = h2 @ Ws[2]
        d2 = out @ Ws[2].T
        d1 = d2 @ Ws[1].T
        return h2.T @ out, h1.T @ d2, xb.T @ d1

    def epoch(fn, batch, seed):
        order = np.random.default_rng(seed).permutation(len(X_np))
        idxs = [jnp.asarray(order[i : i + batch]) for i in range(0, len(order) - batch + 1, batch)]
        params = jax.tree.map(jnp.copy, start)
        jax.block_until_ready(fn(jax.tree.map(jnp.copy, start), idxs[0]))  # compile
        t = time.perf_counter()
        for idx in idxs:
            params = fn(params, idx)
        jax.block_until_ready(params)
        return time.perf_counter() - t

    def matmuls(batch):
        xb = X[:batch]
        Ws = [W for W, _ in start]
        jax.block_until_ready(products(xb, Ws))
        t = time.perf_counter()
        for _ in range(len(X_np) // batch):
            out = products(xb, Ws)
        jax.block_until_ready(out)
        return time.perf_counter() - t

    print(f"JAX {jax.__version__} on {len(os.sched_getaffinity(0))} CPU(s)", flush=True)
    for line in sys.stdin:
        kind, *args = line.split()
        if kind == "epoch":
            result = epoch(step, int(args[0]), int(args[1]))
        else:
            result = matmuls(int(args[0]))
        print(f"{result:.6f}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    _serve(int(sys.argv[1]), float(sys.argv[2]))
