"""Sub-commands of the ``chainrule`` command line (see :mod:`chainrule.cli`).

The time limit on SymPy (:class:`TimeUp`, :func:`time_limit`, :func:`load_engine`) is shared with
the web page and lives in :mod:`chainrule._panels`; ``--timeout`` is the command line's own.
"""

from __future__ import annotations

from chainrule._panels import TimeUp, load_engine, time_limit

__all__ = ["DEFAULT_TIMEOUT", "MAX_TIMEOUT", "CommandError", "TimeUp", "add_timeout",
           "load_engine", "time_limit", "timeout_seconds"]


class CommandError(Exception):
    """An error to report in one line on stderr with exit code 1."""


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
