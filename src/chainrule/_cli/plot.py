"""`chainrule plot`: placeholder until its issue lands."""

from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("plot", help="(not yet implemented)")


def run(args) -> int:
    raise NotImplementedError("chainrule plot is not implemented yet")
