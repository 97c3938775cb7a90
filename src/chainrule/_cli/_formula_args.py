"""The options ``chainrule derive`` and ``chainrule check`` share: what is differentiated
(``--activation``, ``--loss``, ``--wrt``, ``--layer``, ``--network``, ``--mean``, ``--half``),
how the answer is printed (``--format``) and how long SymPy may take (``--timeout``)."""

from __future__ import annotations

from chainrule._cli import add_timeout

#: The options that are on/off switches; every other option takes a value.
SWITCHES = frozenset({"--half", "--layer", "--mean", "--sum", "--vector", "--weights"})


def add_options(parser, *options: tuple[str, str] | tuple[str, str, str]) -> None:
    """Add each option, ``(flag, help)`` or ``(flag, metavar, help)``, in order: a switch of
    :data:`SWITCHES`, else an option with a value (shown as ``metavar`` where one is given)."""
    for flag, *rest in options:
        help_text = rest[-1]
        if flag in SWITCHES:
            parser.add_argument(flag, action="store_true", help=help_text)
        elif len(rest) == 2:
            parser.add_argument(flag, metavar=rest[0], help=help_text)
        else:
            parser.add_argument(flag, help=help_text)


def add_output_options(parser, formats: tuple[str, ...]) -> None:
    """``--format`` (the first of ``formats`` by default), then ``--timeout``."""
    parser.add_argument("--format", choices=formats, default=formats[0],
                        help="output format (default: %(default)s)")
    add_timeout(parser)


def keywords(args, *names: str) -> dict:
    """The parsed options ``names`` as keyword arguments of the Python function they feed."""
    return {name: getattr(args, name) for name in names}
