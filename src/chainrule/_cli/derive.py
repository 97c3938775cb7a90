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

from chainrule._cli._formula_args import add_output_options, add_panel_options
from chainrule._panels import answer, cached

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


def answer_from_cache(args) -> int | None:
    """Print the answer kept from an earlier run of the same query (exit code 0), or None."""
    found = cached("derive", args, args.format)
    if found is None or not isinstance(found.get("text"), str):
        return None
    sys.stdout.write(found["text"])
    return 0


def run(args) -> int:
    sys.stdout.write(answer("derive", args, args.format)["text"])
    return 0
