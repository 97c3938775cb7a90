"""`chainrule evaluate`: placeholder until its issue lands."""

from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("evaluate", help="(not yet implemented)")


def run(args) -> int:
    raise NotImplementedError("chainrule evaluate is not implemented yet")
