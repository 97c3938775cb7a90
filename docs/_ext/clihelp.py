"""The ``chainrule-cli`` directive: the command line reference, read from its argparse parsers.

For the parser that :func:`chainrule.cli.build_parser` makes, and for each of its commands in
order, a section titled ``chainrule COMMAND`` with the command's one-line summary and its
``--help`` text exactly as the terminal prints it (100 columns). The help is taken as plain
text, never parsed as markup, so what the page shows is what ``chainrule COMMAND --help`` prints.
"""

from __future__ import annotations

import os
from unittest import mock

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

COLUMNS = "100"


def _help(parser) -> str:
    with mock.patch.dict(os.environ, {"COLUMNS": COLUMNS}):
        return parser.format_help()


def _subcommands(parser):
    """(name, one-line summary, parser) of each command of ``parser``, in order."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, summaries.get(name) or "", sub


class ChainruleCli(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        from chainrule.cli import build_parser

        parser = build_parser()
        result: list[nodes.Node] = [nodes.literal_block(text=_help(parser), language="text")]
        for name, summary, sub in _subcommands(parser):
            section_id = nodes.make_id(f"chainrule-{name}")
            section = nodes.section(ids=[section_id], names=[section_id])
            section += nodes.title(text=f"chainrule {name}")
            if summary:
                section += nodes.paragraph(text=summary[0].upper() + summary[1:] + ".")
            section += nodes.literal_block(text=_help(sub), language="text")
            self.state.document.note_implicit_target(section, section)
            result.append(section)
        return result


def setup(app):
    app.add_directive("chainrule-cli", ChainruleCli)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
