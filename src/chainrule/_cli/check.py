"""`chainrule check`: check a hand-derived derivative and say what is wrong with it.

    chainrule check --loss bce --wrt yhat "-(y/yhat + (1-y)/(1-yhat))"

prints one paragraph (or JSON with ``--format json``) and exits 1 when the formula is wrong,
0 when it is right, 2 when it cannot be read or an option's value is refused (bad usage). A
formula that starts with a minus, "-(y/yhat+...)", is read as the formula (see
:mod:`chainrule.cli`). SymPy is imported when :func:`run` calls the check.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from chainrule._cli import refused_as_usage, report_width
from chainrule._cli._formula_args import add_output_options, add_panel_options
from chainrule._panels import answer, cached


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check a hand-derived derivative and say which term or factor is wrong",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Check a hand-derived derivative against SymPy and, when it is wrong, say which\n"
            "term has the wrong sign, which factor is missing or extra, and the rule that\n"
            "gives the right one. Exit status 1 when the formula is wrong, 0 when it is right,\n"
            "2 when it cannot be read or an option's value is refused."
        ),
        epilog=(
            "symbols: yhat (prediction), y (target), z (pre-activation), x, w, p (probability),\n"
            "         t (one-hot target), m (batch size)\n"
            "examples:\n"
            '  chainrule check --loss bce --wrt yhat "-(y/yhat + (1-y)/(1-yhat))"\n'
            '  chainrule check --loss bce --activation tanh "(yhat + 1)*(yhat - y)/yhat"\n'
            '  chainrule check --function "x*sigmoid(x)" "sigmoid(x)*(1 + x*(1 - sigmoid(x)))"\n'
            '  chainrule check --loss ce --activation softmax "p - t"\n'
            "matrix form (one dense layer, or a network with --network):\n"
            "  names: X (m×n), Y or T (m×k), Yhat, P or O (m×k), m; one layer: W (n×k), b (k),\n"
            "         Z (m×k); a network: W1, b1, Z1, H1 (m×h1), ..., the last H is Yhat\n"
            "  syntax: @ .T + - * / ** (Z > 0) sum(A, axis=0) A.sum(axis=0) mean exp log sqrt\n"
            "          abs, the activations sigmoid(Z), ... and their derivatives\n"
            "          sigmoid_prime(Z), ...\n"
            "  chainrule check --layer --activation sigmoid --loss bce \\\n"
            '      "X.T @ (sigmoid(X @ W) - Y) / m"\n'
            '  chainrule check --network relu,sigmoid --loss bce --wrt W1 \\\n'
            '      "X.T @ (((Yhat - Y) @ W2.T) * (Z1 > 0)) / m"\n'
            "batch norm, layer norm, attention (--layer batchnorm|layernorm|attention):\n"
            "  names: X, dY (the gradient from above), gamma, beta, mu, var, Xhat, eps, m, n;\n"
            "         attention: Q, K, V, S, P, O, dO, d (and mask with --causal)\n"
            '  chainrule check --layer batchnorm --wrt X "gamma * dY / sqrt(var + eps)"\n'
            '  chainrule check --layer attention --wrt V --causal "P.T @ dO"'
        ),
    )
    add_panel_options(parser, "check")
    add_output_options(parser, ("text", "json"))


def _print(found: dict, args) -> int:
    if args.format == "json":
        sys.stdout.write(found["text"])
    else:
        for line in found.get("read_as") or ():  # how a formula typed as on paper was read
            print(line)
        print(fill(found["paragraph"], report_width()))
    return 0 if found["correct"] else 1


def answer_from_cache(args) -> int | None:
    """Print the answer kept from an earlier run of the same check (exit code 0 when correct,
    1 when not), or None."""
    found = cached("check", args, args.format)
    field = "text" if args.format == "json" else "paragraph"
    if found is None or not isinstance(found.get(field), str):
        return None
    return _print(found, args)


def run(args) -> int:
    with refused_as_usage():
        found = answer("check", args, args.format)
    return _print(found, args)


_NBSP = "\u00a0"


def fill(paragraph: str, width: int) -> str:
    """Wrap ``paragraph`` without breaking a formula inside its brackets: "(1 - yhat)" stays
    on one line (the spaces around an operator within brackets do not break)."""
    chars = list(paragraph)
    depth = 0
    for i, ch in enumerate(chars):
        depth += ch == "("
        depth -= ch == ")"
        if ch == " " and depth > 0:
            before = chars[i - 1] if i else ""
            after = chars[i + 1] if i + 1 < len(chars) else ""
            if before in "+-·/=*" or after in "+-·/=*":
                chars[i] = _NBSP
    wrapped = textwrap.fill("".join(chars), width=width, break_long_words=False,
                            break_on_hyphens=False)
    return wrapped.replace(_NBSP, " ")
