"""The options ``chainrule derive`` and ``chainrule check`` take: each panel's inputs, declared
once in :mod:`chainrule._panels` for the command line and the web page alike, then how the
answer is printed (``--format``) and how long SymPy may take (``--timeout``)."""

from __future__ import annotations

from chainrule._cli import add_timeout
from chainrule._panels import PANELS


def add_panel_options(parser, panel: str) -> None:
    """Add the inputs of ``panel`` (``"derive"`` or ``"check"``) to ``parser``: a positional
    argument, a switch for a flag (which may name a value, ``--layer batchnorm``), else an
    option with a value (from its choices when they are closed); options that exclude one
    another share a mutually exclusive group."""
    _keep_positionals(parser, {f"--{o.name}": o for o in PANELS[panel] if o.values})
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
        if option.kind == "flag" and option.values:
            target.add_argument(flag, nargs="?", const=True, default=False,
                                choices=option.values, metavar="|".join(option.values[1:]),
                                type=str.lower, help=help_text)
        elif option.kind == "flag":
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


def _keep_positionals(parser, flags: dict) -> None:
    """Let a flag that may name a value (``--layer``, ``--layer batchnorm``) stand alone before
    the positional argument: ``--layer "X.T @ D"`` reads the formula (a word is the flag's
    value, refused with the choices when unknown), and is ``--layer=dense``, the dense layer."""
    if not flags:
        return
    base = type(parser)

    class PanelParser(base):
        def parse_known_args(self, args=None, namespace=None):
            if args is not None:
                args = list(args)
                for i, arg in enumerate(args):
                    following = args[i + 1].strip().lower() if i + 1 < len(args) else ""
                    if arg in flags and following and not following.startswith("-") and \
                            not following.replace("_", "").isalnum():
                        args[i] = f"{arg}={flags[arg].values[0]}"
            return super().parse_known_args(args, namespace)

    PanelParser.__name__ = PanelParser.__qualname__ = base.__name__
    parser.__class__ = PanelParser
