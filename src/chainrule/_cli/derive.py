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
    chainrule derive conv2d
    chainrule derive lstm --format json
"""

from __future__ import annotations

import sys

from chainrule._cli import add_command, refused_as_usage
from chainrule._cli._formula_args import add_output_options, add_panel_options
from chainrule._panels import answer, cached

FORMATS = ("text", "latex", "markdown", "json")


def register(subparsers) -> None:
    p = add_command(subparsers, "derive")
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
    with refused_as_usage():
        found = answer("derive", args, args.format)
    sys.stdout.write(found["text"])
    return 0
