"""The options ``chainrule derive`` and ``chainrule check`` take: each panel's inputs, declared
once in :mod:`chainrule._panels` for the command line and the web page alike, then how the
answer is printed (``--format``) and how long SymPy may take (``--timeout``)."""

from __future__ import annotations

from chainrule._cli import add_timeout
from chainrule._panels import PANELS


def add_panel_options(parser, panel: str) -> None:
    """Add the inputs of ``panel`` (``"derive"`` or ``"check"``) to ``parser``: a positional
    argument, a switch for a flag, else an option with a value (from its choices when they are
    closed); options that exclude one another share a mutually exclusive group."""
    groups = {}
    for option in PANELS[panel]:
        help_text = option.command_help or option.help
        if option.positional:
            parser.add_argument(option.name, nargs=None if option.required else "?",
                                help=help_text)
            continue
        target = parser
        if option.exclusive:
            if option.exclusive not in groups:
                groups[option.exclusive] = parser.add_mutually_exclusive_group()
            target = groups[option.exclusive]
        flag = f"--{option.name}"
        if option.kind == "flag":
            target.add_argument(flag, action="store_true", help=help_text)
        elif option.closed:
            target.add_argument(flag, choices=option.choices, help=help_text)
        else:
            target.add_argument(flag, metavar=option.metavar, help=help_text)


def add_output_options(parser, formats: tuple[str, ...]) -> None:
    """``--format`` (the first of ``formats`` by default), then ``--timeout``."""
    parser.add_argument("--format", choices=formats, default=formats[0],
                        help="output format (default: %(default)s)")
    add_timeout(parser)
