"""Sub-commands of the ``chainrule`` command line (see :mod:`chainrule.cli`)."""

from __future__ import annotations

import contextlib
import importlib
import signal
import threading

#: Default wall-clock limit of the symbolic commands (derive, check, plot), in seconds.
DEFAULT_TIMEOUT = 60.0


class TimeUp(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` inside SymPy eats it."""


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


def load_engine() -> None:
    """Import the derivation engine (and the parts of SymPy it loads on first use) before a
    :func:`time_limit` is armed: the limit is for the work on the user's formula, and an import
    stopped halfway would leave the engine unusable for the rest of the process."""
    for module in ("chainrule.derivation.api", "chainrule.derivation.network",
                   "chainrule.derivation.vector", "chainrule.gradient_check.symbolic",
                   "chainrule.gradient_check.matrix"):
        importlib.import_module(module)


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise :class:`TimeUp` in the main thread after ``seconds`` (no limit where the platform
    has no interval timer, off the main thread, or for ``seconds`` of 0 or None)."""
    usable = (
        seconds
        and seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def alarm(signum, frame):
        raise TimeUp

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
