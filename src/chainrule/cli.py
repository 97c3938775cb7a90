"""The ``chainrule`` command: train, predict, evaluate, derive, check, plot, data, serve.

Each sub-command lives in ``chainrule._cli.<name>`` with two functions: ``register(subparsers)``
adds its parser (cheap: no heavy imports), and ``run(args)`` does the work and returns the exit
code. Heavy libraries (SymPy, matplotlib, scikit-learn) are imported inside ``run`` only.

Exit codes: 0 success; 1 the command ran and the answer is no or it failed (a wrong derivative,
unreadable data or model file, a diverged training, a time limit reached: one clear line on
stderr, no traceback); 2 bad usage (argparse's convention): an unknown option, a missing
argument, an invalid option value (an unknown activation or loss name, a variable that is not
one, options that contradict each other) or a formula that cannot be read, in one line;
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import re
import signal
import sys
import threading
import warnings

from chainrule._cli import CommandError, UsageError, is_usage_error

__all__ = ["COMMANDS", "EXIT_USAGE", "CommandError", "UsageError", "build_parser",
           "flags_for_parameters", "main"]

COMMANDS = ("train", "predict", "evaluate", "derive", "check", "check_backward", "plot", "data",
            "serve")

#: Exit status of bad usage: an unknown option, an invalid value, a missing argument.
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, with two differences.

    A value starting with "-" that is no option of the command (the formula ``-y/yhat`` or
    ``-yhat``, the number ``-1e308``) is read as a value, not as an unknown option; only an
    argument that is exactly one of the command's options, or starts with "--", is an option.

    A usage error is one line on stderr, ``chainrule train: error: ...`` (exit status 2),
    rather than the whole usage: ``--help`` shows that.
    """

    def _parse_optional(self, arg_string):
        if (
            len(arg_string) > 1
            and arg_string[0] == "-"
            and not arg_string.startswith("--")
            and arg_string not in self._option_string_actions
            and not self._takes_attached_value(arg_string[:2])
        ):
            return None
        return super()._parse_optional(arg_string)

    def _takes_attached_value(self, short: str) -> bool:
        """Whether ``short`` (``-o``) is an option with a value, as in ``-ofile``."""
        action = self._option_string_actions.get(short)
        return action is not None and action.nargs != 0

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())}\n")

    def unrecognized(self, extras: list[str]):
        """Refuse the arguments no option of this command takes, with the nearest option."""
        import difflib

        message = f"unrecognized arguments: {' '.join(extras)}"
        options = [o for o in self._option_string_actions if o.startswith("--")]
        for extra in extras:
            if extra.startswith("-"):
                near = difflib.get_close_matches(extra.split("=")[0], options, n=1)
                if near:
                    message += f"; did you mean {near[0]}?"
                    break
        self.error(message)


def _undecodable(argv: list[str]) -> str | None:
    """The first argument that was not valid UTF-8 on the command line, if any."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raw = arg.encode("utf-8", "surrogateescape") if isinstance(arg, str) else arg
            return raw.decode("utf-8", "backslashreplace").encode(
                "ascii", "backslashreplace").decode("ascii")
    return None


def build_parser(commands: tuple[str, ...] = COMMANDS) -> argparse.ArgumentParser:
    """The parser of ``commands`` (all by default; the command line builds only the one it
    runs when that is derive or check, which need neither NumPy nor SymPy to answer from the
    cache)."""
    from chainrule import __version__

    parser = _Parser(
        prog="chainrule",
        description=(
            "Backpropagation you can read, check and trust: train small networks, derive "
            "gradients step by step, and check hand-derived gradients."
        ),
    )
    parser.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in commands:
        module = importlib.import_module(f"chainrule._cli.{name}")
        module.register(sub)
    parser.commands = sub.choices  # each command's own parser, by name
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    try:
        return _main(argv)
    finally:
        if argv is None and threading.current_thread() is threading.main_thread():
            # The process is exiting: a late Ctrl-C must not kill it with a signal after it
            # has reported and chosen its exit code (130 when interrupted).
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _main(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser((argv[0],) if argv[:1] in (["derive"], ["check"]) else COMMANDS)
    bad = _undecodable(argv)
    if bad is not None:
        parser.error(f"the argument '{bad}' is not valid UTF-8 text; pass file names and "
                     "formulas as UTF-8")
    args, extras = parser.parse_known_args(argv)
    if extras:
        (parser.commands.get(args.command) or parser).unrecognized(extras)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(f"chainrule._cli.{args.command}")
    from chainrule._panels import TimeUp, load_engine, time_limit

    timeout = getattr(args, "timeout", None)  # the commands that run SymPy on a formula
    from_cache = getattr(module, "answer_from_cache", None)  # a repeated query: no SymPy
    if from_cache is not None and (code := from_cache(args)) is not None:
        return code
    try:
        if timeout:
            load_engine()
        # Overflow and NaN are checked and named where they matter; NumPy's RuntimeWarnings
        # would only print its own words before that message.
        with time_limit(timeout), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
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
    except ModuleNotFoundError as exc:
        from chainrule._extras import EXTRAS, missing_extra

        known = (exc.name or "").split(".")[0] in EXTRAS
        message = missing_extra(exc, f"chainrule {args.command}") if known else exc
        print(f"chainrule {args.command}: error: {message}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"chainrule {args.command}: error: ran out of memory; the data, the model or the "
              "formula is too large for this machine", file=sys.stderr)
        return 1
    except RecursionError:
        print(f"chainrule {args.command}: error: the input is nested too deeply to handle; "
              "write it with less nesting", file=sys.stderr)
        return 1
    except (CommandError, ValueError, OSError, KeyError, ImportError, FloatingPointError) as exc:
        message = flags_for_parameters(_one_line(exc), parser.commands[args.command])
        print(f"chainrule {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE if is_usage_error(exc) else 1


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line; an OSError as "file: what went wrong"."""
    if isinstance(exc, KeyError) and exc.args:
        message = str(exc.args[0])
    elif isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        message = f"{exc.filename}: {exc.strerror.lower()}"
        message = {
            "is a directory": f"{exc.filename} is a folder; give the path of a file",
        }.get(exc.strerror.lower(), message)
    elif isinstance(exc, OSError) and exc.strerror:
        message = str(exc.strerror)
    else:
        message = str(exc)
    return " ".join(message.split())


# A keyword argument as the library writes it in a message: name=value, where the value is
# quoted, a word, or nothing (``give activation= and loss=``).
_KEYWORD = re.compile(r"""(?<![\w.-])([A-Za-z_]\w*)=('[^']*'|"[^"]*"|[^\s,;()]*[^\s,;().:!?]|)""")


def flags_for_parameters(message: str, parser: argparse.ArgumentParser) -> str:
    """A library message in the command line's words: each ``name=value`` whose name is an
    option of ``parser`` becomes ``--name value`` (``activation='tahn'``: ``--activation
    'tahn'``), a switch's ``name=True`` becomes ``--name`` and ``name=None`` or ``name=False``
    becomes ``no --name``. The options are read from the parser, so the words follow it; a
    keyword inside a call written in the message (``derive(loss='mse')``) is Python and stays."""
    flags = {action.dest: (max(action.option_strings, key=len), action.nargs == 0)
             for action in parser._actions if action.option_strings}
    calls = _inside_calls(message)

    def replace(match: re.Match) -> str:
        name, value = match.group(1), match.group(2)
        if name not in flags or calls[match.start()]:
            return match.group(0)
        flag, switch = flags[name]
        if value in ("None", "False"):
            return f"no {flag}"
        if value in ("", "True"):
            return flag
        return match.group(0) if switch else f"{flag} {value}"  # a switch takes no value

    return _KEYWORD.sub(replace, message)


def _inside_calls(text: str) -> list[bool]:
    """For each character of ``text``: whether it is inside the brackets of a call, ``f(...)``
    (an opening bracket right after a letter, digit or underscore)."""
    inside, opened = [], []
    for k, ch in enumerate(text):
        if ch == "(":
            opened.append(k > 0 and (text[k - 1].isalnum() or text[k - 1] == "_"))
        elif ch == ")" and opened:
            opened.pop()
        inside.append(any(opened))
    return inside


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
