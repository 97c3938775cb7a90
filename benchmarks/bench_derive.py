"""How long `derive` takes: every built-in activation (budget: 2 s each), the compositions, and
the vector and matrix derivations (softmax Jacobians, one layer per activation, networks of
depth 1 to 4, each including its finite-difference verification; budget 2 s each).

Each derivation runs cold: the engine's caches (derivations, simplifications, equality checks)
and SymPy's own caches are cleared before every call, so the figure is what a first
`chainrule derive NAME` pays after SymPy is imported. SymPy's own import is timed separately.
Printed: the best of ``--repeats`` runs per item and whether it is within the budget.

First, the command line as a learner meets it: ``chainrule derive sigmoid`` (and a check) in a
fresh process, cold (an empty answer cache) and repeated (answered from the cache, without
SymPy; budget 0.3 s on a quiet machine). ``--command-line-only`` stops there.

    uv run python benchmarks/bench_derive.py [--repeats 3] [--command-line-only]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from blas_info import print_environment

BUDGET_S = 2.0
REPEATED_BUDGET_S = 0.3
COMMANDS = [["derive", "sigmoid"], ["derive", "--network", "relu,sigmoid", "--loss", "bce"],
            ["check", "yhat - y", "--loss", "mse", "--half"]]
COMPOSITIONS = [
    ("sigmoid", "bce", False, False),
    ("tanh", "bce", False, True),
    ("identity", "mse", True, False),
    ("softmax", "ce", False, False),
    ("relu", "bce", False, False),
    ("gelu", "mse", True, True),
]
MATRIX = [
    ("softmax Jacobian", dict(expression="softmax")),
    ("log_softmax Jacobian", dict(expression="log_softmax")),
    ("vector softmax + ce", dict(activation="softmax", loss="ce", vector=True)),
    ("vector sigmoid + bce", dict(activation="sigmoid", loss="bce", vector=True)),
    ("layer sigmoid + bce", dict(activation="sigmoid", loss="bce", layer=True)),
    ("layer identity + mse", dict(activation="identity", loss="mse", half=True, layer=True)),
    ("layer softmax + ce", dict(activation="softmax", loss="ce", layer=True)),
    ("layer gelu + huber", dict(activation="gelu", loss="huber", layer=True)),
    ("network sigmoid", dict(network="sigmoid", loss="bce")),
    ("network relu,sigmoid", dict(network="relu,sigmoid", loss="bce")),
    ("network relu,tanh,softmax", dict(network="relu,tanh,softmax", loss="ce")),
    ("network relu,tanh,sigmoid,sigmoid", dict(network="relu,tanh,sigmoid,sigmoid", loss="bce")),
    ("network mish,silu,gelu,identity", dict(network="mish,silu,gelu,identity", loss="mse")),
]


def _clear_caches() -> None:
    from sympy.core.cache import clear_cache

    from chainrule.derivation import api, custom, network, simplify

    clear_cache()  # SymPy's own memo tables too: every run starts cold
    network._cached.cache_clear()
    network._gprime.cache_clear()
    api._derive_cached.cache_clear()
    simplify.tidy.cache_clear()
    simplify.equivalent.cache_clear()
    custom._compile.cache_clear()


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        _clear_caches()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _command_seconds(command: list[str], cache: str) -> float:
    env = {**os.environ, "CHAINRULE_CACHE_DIR": cache}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "chainrule", *command], env=env, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def command_line_timings(repeats: int) -> bool:
    """Each command cold (an empty cache) and repeated (best of ``repeats``); True when every
    repeated run is within the budget."""
    print(f"{'command line':<54}{'cold':>8}{'repeated':>11}   within {REPEATED_BUDGET_S} s")
    ok = True
    with tempfile.TemporaryDirectory() as cache:
        for command in COMMANDS:
            cold = _command_seconds(command, cache)
            again = min(_command_seconds(command, cache) for _ in range(max(repeats, 1)))
            ok &= again < REPEATED_BUDGET_S
            label = "chainrule " + " ".join(command)
            print(f"{label:<54}{cold:>6.2f} s{again:>9.3f} s   "
                  f"{'yes' if again < REPEATED_BUDGET_S else 'NO'}")
    print()
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--command-line-only", action="store_true",
                        help="only the cold and repeated command-line timings")
    args = parser.parse_args(argv)

    print_environment()
    quick = command_line_timings(args.repeats)
    if args.command_line_only:
        return 0 if quick else 1  # the engine runs on SymPy; NumPy only for the figures
    start = time.perf_counter()
    import sympy  # noqa: F401

    from chainrule.derivation import derive
    from chainrule.derivation.library import activation_names

    print(f"import sympy + chainrule.derivation: {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    derive("sigmoid")  # the first call also loads SymPy's solvers and printers
    print(f"first derive('sigmoid') in a fresh process: {time.perf_counter() - start:.2f} s\n")
    print(f"{'activation':<14}{'quotient/default':>18}{'chain':>10}   within {BUDGET_S:.0f} s")
    worst = 0.0
    for name in activation_names():
        t_default = _best(lambda n=name: derive(n), args.repeats)
        t_chain = _best(lambda n=name: derive(n, method="chain"), args.repeats)
        worst = max(worst, t_default, t_chain)
        ok = "yes" if max(t_default, t_chain) < BUDGET_S else "NO"
        print(f"{name:<14}{t_default:>16.3f} s{t_chain:>8.3f} s   {ok}")

    print(f"\n{'composition':<30}{'time':>10}")
    for act, loss, half, weights in COMPOSITIONS:
        label = f"{act} + {loss}{' (half)' if half else ''}{' + weights' if weights else ''}"
        t = _best(lambda a=act, lo=loss, h=half, w=weights: derive(
            activation=a, loss=lo, half=h, weights=w), args.repeats)
        print(f"{label:<30}{t:>8.3f} s")
    print(f"\nslowest activation: {worst:.3f} s (budget {BUDGET_S:.0f} s)")

    start = time.perf_counter()
    derive(activation="sigmoid", loss="bce", layer=True)  # loads NumPy's lambdify namespace
    print(f"\nfirst matrix derivation in this process: {time.perf_counter() - start:.2f} s")
    print(f"\n{'vector / matrix derivation':<38}{'time':>10}   within {BUDGET_S:.0f} s")
    worst_matrix = 0.0
    for label, kwargs in MATRIX:
        t = _best(lambda kw=kwargs: derive(**kw), args.repeats)
        worst_matrix = max(worst_matrix, t)
        print(f"{label:<38}{t:>8.3f} s   {'yes' if t < BUDGET_S else 'NO'}")
    print(f"\nslowest vector / matrix derivation: {worst_matrix:.3f} s (budget {BUDGET_S:.0f} s)")
    return 0 if max(worst, worst_matrix) < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
