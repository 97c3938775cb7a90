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
    chainrule derive batchnorm
    chainrule derive attention --format json
"""

from __future__ import annotations

import sys

from chainrule._cli import refused_as_usage
from chainrule._cli._formula_args import add_output_options, add_panel_options
from chainrule._panels import derive, show, values_of

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
    add_panel_options(p, "derive")
    add_output_options(p, FORMATS)


def run(args) -> int:
    with refused_as_usage():
        result = derive(values_of("derive", args))
    sys.stdout.write(show(result, args.format))
    return 0
