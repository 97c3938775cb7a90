"""`chainrule plot`: activations (or formulas) and their derivatives on one figure (PNG)."""

from __future__ import annotations

import math

from chainrule._cli import UsageError, add_command, add_timeout


def register(subparsers) -> None:
    p = add_command(subparsers, "plot")
    p.add_argument("functions", nargs="+",
                   help="activation names (sigmoid, tanh, relu, ...) or formulas in x")
    p.add_argument("--out", default="activations.png", help="PNG file (default: %(default)s)")
    p.add_argument("--range", nargs=2, type=float, default=(-5.0, 5.0), metavar=("LOW", "HIGH"),
                   help="the x range (default: -5 5)")
    p.add_argument("--no-derivative", action="store_true", help="draw the functions only")
    add_timeout(p)


def run(args) -> int:
    from chainrule.derivation.plot import plot_functions

    low, high = args.range
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise UsageError(f"The range must be two finite numbers, low < high; got --range "
                         f"{low:g} {high:g}.")
    path = plot_functions(
        args.functions, args.out, x_range=tuple(args.range), derivative=not args.no_derivative
    )
    print(f"wrote {path}")
    return 0
