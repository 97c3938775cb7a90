"""`chainrule derive`: a derivative step by step, simplified and checked, with warnings.

Examples::

    chainrule derive sigmoid --method quotient
    chainrule derive "x * sigmoid(x)"
    chainrule derive --activation tanh --loss bce --weights
    chainrule derive --activation softmax --loss ce --format json
    chainrule derive --loss mse --mean
    chainrule derive softmax
    chainrule derive --layer --activation sigmoid --loss bce
    chainrule derive --network relu,tanh,sigmoid --loss bce
"""

from __future__ import annotations

import sys

from chainrule._cli._formula_args import add_options, add_output_options, keywords

FORMATS = ("text", "latex", "markdown", "json")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "derive",
        help="derive an activation, a loss, a formula or their composition step by step",
        description=(
            "Derive step by step (sum, product, quotient, chain rules...), simplify, check the "
            "answer against SymPy, and flag singular points and domain conflicts. Symbols: x or "
            "z (input), yhat (an activation's output), y (target), w (weight), p and t (softmax "
            "+ cross-entropy), eta, alpha, m."
        ),
    )
    p.add_argument("expression", nargs="?",
                   help="an activation (sigmoid), a loss (bce) or a formula ('x*sigmoid(x)')")
    add_options(
        p,
        ("--activation", "an activation name, e.g. tanh"),
        ("--loss", "a loss name, e.g. bce; with --activation: dE/dz"),
        ("--weights", "continue through z = w*x to dE/dw and the step Δw = -eta*dE/dw"),
    )
    p.add_argument("--method", choices=("quotient", "chain"),
                   help="differentiate fractions by the quotient rule or the chain rule")
    add_options(
        p,
        ("--half", "with --loss mse: the squared error with a factor 1/2"),
        ("--mean", "the loss is the mean over m samples (its derivative carries 1/m)"),
        ("--vector", "with --activation and --loss: through the explicit sum over K outputs"),
        ("--layer", "with --activation and --loss: one dense layer Z = XW + b over a batch of m "
                    "samples, in index form and matrix form with shapes"),
        ("--network", "ACTS", "comma-separated activations, one per dense layer "
                              "(relu,tanh,sigmoid), with --loss: backpropagation through every "
                              "layer"),
        ("--wrt", "the variable of a formula (default: x, then z, yhat, p, w)"),
    )
    add_output_options(p, FORMATS)


def run(args) -> int:
    from chainrule.derivation import derive

    if (args.expression is None and args.activation is None and args.loss is None
            and args.network is None):
        raise ValueError(
            "Nothing to derive: give an expression (chainrule derive sigmoid) or "
            "--activation/--loss (chainrule derive --activation tanh --loss bce)."
        )
    result = derive(
        args.expression,
        **keywords(args, "activation", "loss", "weights", "method", "half", "wrt", "mean",
                   "layer", "network", "vector"),
    )
    if args.format == "json":
        text = result.to_json()
    elif args.format == "latex":
        text = result.to_latex()
    elif args.format == "markdown":
        text = result.to_markdown()
    else:
        text = result.to_text()
    sys.stdout.write(text.rstrip("\n") + "\n")
    return 0
