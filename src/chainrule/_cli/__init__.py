"""Sub-commands of the ``chainrule`` command line (see :mod:`chainrule.cli`).

The time limit on SymPy (:class:`TimeUp`, :func:`time_limit`, :func:`load_engine`) is shared with
the web page and lives in :mod:`chainrule._panels`; ``--timeout`` is the command line's own.
"""

from __future__ import annotations

import contextlib
import re
import sys

from chainrule._panels import TimeUp, load_engine, time_limit

__all__ = ["DEFAULT_TIMEOUT", "MAX_TIMEOUT", "CommandError", "TimeUp", "UsageError",
           "add_timeout", "is_usage_error", "load_engine", "refused_as_usage", "time_limit",
           "timeout_seconds"]


#: Each command's one-line help (in ``chainrule --help``) and its description (in
#: ``chainrule COMMAND --help``), for the commands whose parser needs nothing more.
COMMAND_TEXT = {
    "train": (
        "train a multi-layer perceptron and print its test accuracy",
        "Train a multi-layer perceptron. With no arguments: a 64-128-10 ReLU network "
        "(dropout 0.2) on scikit-learn's digits, printing the test accuracy. Regression "
        "targets are standardised for training; the saved model predicts in their units."
    ),
    "derive": (
        "derive an activation, a loss, a formula or their composition step by step",
        "Derive step by step (sum, product, quotient, chain rules...), simplify, check the "
        "answer against SymPy, and flag singular points and domain conflicts. Symbols: x or "
        "z (input), yhat (an activation's output), y (target), w (weight), p and t (softmax "
        "+ cross-entropy), eta, alpha, m."
    ),
    "plot": (
        "plot activations or formulas and their derivatives to a PNG",
        "Draw each function (solid) and its derivative (dashed) on one figure, with both "
        "formulas in the legend. Example: chainrule plot sigmoid tanh --out act.png"
    ),
    "data": (
        "download MNIST or Fashion-MNIST, or show where they are kept",
        "Download a data set from its public mirrors, check every file against its "
        "published SHA-256, and keep it in $CHAINRULE_DATA_DIR (else the user cache "
        "folder). `chainrule train --data mnist` does this on first use."
    ),
    "serve": (
        "serve a web page that derives step by step and checks hand-derived gradients",
        "Serve a page that derives formulas, activations and losses step by step, plots "
        "them and checks a hand-derived gradient, with a JSON API under /api/. Each "
        "request runs in a worker process under a time budget, so a runaway formula gets "
        "an error and never holds the server."
    ),
}


def add_command(subparsers, name: str, **kwargs):
    """The parser of the command ``name``, with its help and description from
    :data:`COMMAND_TEXT`."""
    help_text, description = COMMAND_TEXT[name]
    return subparsers.add_parser(name, help=help_text, description=description, **kwargs)


def report_width() -> int:
    """The width a report is wrapped to: the terminal's, between 40 and 100 columns; 100 when
    the output is not a terminal (a file, a pipe)."""
    import shutil

    return min(max(shutil.get_terminal_size((100, 24)).columns, 40), 100)


class CommandError(Exception):
    """An error to report in one line on stderr with exit code 1."""


class UsageError(ValueError):
    """An invalid value given to a command (an unknown name, options that contradict each
    other, nothing to work on): reported in one line on stderr with exit code 2, bad usage."""


# A formula refused for its size rather than its writing: the work was too large to do, a
# limit reached (exit status 1, like --timeout), not a mistake in the command.
_SIZE_LIMIT = re.compile(r"too large|nested too deeply|too deep", re.IGNORECASE)

# Errors of the derivation engine and the checks that mean "could not read this formula": bad
# usage of a command, like an invalid option value. Named by module and class, so that the
# command line loads neither SymPy nor the checks to recognise them.
_UNREADABLE = (
    ("chainrule.derivation.parser", "FormulaError"),
    ("chainrule.gradient_check.matrix.network", "MatrixFormulaError"),
    ("chainrule._checks", "UnreadableFormulaError"),
)


def is_usage_error(exc: BaseException) -> bool:
    """Whether ``exc`` reports bad usage (exit status 2): a :class:`UsageError`, or a formula
    the engine or the checks could not read (not one refused for its size)."""
    if isinstance(exc, UsageError):
        return True
    for module, name in _UNREADABLE:
        loaded = sys.modules.get(module)
        kind = getattr(loaded, name, None) if loaded is not None else None
        if isinstance(kind, type) and isinstance(exc, kind):
            return not _SIZE_LIMIT.search(str(exc))
    return False


@contextlib.contextmanager
def refused_as_usage():
    """A ValueError of the library on the values a user gave a command (an unknown activation
    or loss, a variable that is not one, a formula it cannot read, options that contradict each
    other, nothing to work on) re-raised as a :class:`UsageError`: bad usage, exit status 2. A
    formula refused for its size stays as it is: a limit reached, exit status 1."""
    try:
        yield
    except UsageError:
        raise
    except ValueError as exc:
        if _SIZE_LIMIT.search(str(exc)):
            raise
        raise UsageError(str(exc)) from exc


#: Default wall-clock limit of the symbolic commands (derive, check, plot), in seconds.
DEFAULT_TIMEOUT = 60.0
#: The longest --timeout accepted: a week (the interval timer cannot take much more).
MAX_TIMEOUT = 7 * 24 * 3600.0


def timeout_seconds(text: str) -> float:
    """``--timeout``'s value: a finite number of seconds from 0 (no limit) to a week."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0.0 <= value <= MAX_TIMEOUT):
        raise argparse.ArgumentTypeError(
            f"--timeout takes a number of seconds from 0 (no limit) to {MAX_TIMEOUT:g} (a "
            f"week); got {text!r}"
        )
    return value


def add_timeout(parser) -> None:
    """The ``--timeout`` option of the commands that run SymPy on a user's formula."""
    parser.add_argument(
        "--timeout", type=timeout_seconds, default=DEFAULT_TIMEOUT, metavar="SECONDS",
        help="give up after this many seconds (default: %(default)g; 0: no limit); deeply "
             "nested formulas can take SymPy a long time",
    )
