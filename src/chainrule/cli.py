"""The ``chainrule`` command: train, predict, evaluate, derive, check, plot, serve.

Each sub-command lives in ``chainrule._cli.<name>`` with two functions: ``register(subparsers)``
adds its parser (cheap: no heavy imports), and ``run(args)`` does the work and returns the exit
code. Heavy libraries (SymPy, matplotlib, scikit-learn) are imported inside ``run`` only.

Exit codes: 0 success, 1 a data, model or formula error (one clear line on stderr, no
traceback), 2 bad usage (argparse's convention), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("train", "predict", "evaluate", "derive", "check", "plot", "serve")


class CommandError(Exception):
    """An error to report in one line on stderr with exit code 1."""


def build_parser() -> argparse.ArgumentParser:
    from chainrule import __version__

    parser = argparse.ArgumentParser(
        prog="chainrule",
        description=(
            "Backpropagation you can read, check and trust: train small networks, derive "
            "gradients step by step, and check hand-derived gradients."
        ),
    )
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"chainrule._cli.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(f"chainrule._cli.{args.command}")
    from chainrule._cli import TimeUp, time_limit

    timeout = getattr(args, "timeout", None)
    try:
        with time_limit(timeout):
            return int(module.run(args) or 0)
    except TimeUp:
        print(
            f"chainrule {args.command}: error: gave up after {timeout:g} s (--timeout); the "
            "formula is too nested or too large for SymPy in that time: write it with less "
            "nesting, or allow more time with --timeout SECONDS (0: no limit)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("chainrule: interrupted", file=sys.stderr)
        return 130
    except (CommandError, ValueError, OSError, KeyError, ImportError, FloatingPointError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"chainrule {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
