"""`chainrule predict`: placeholder until its issue lands."""

from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("predict", help="(not yet implemented)")


def run(args) -> int:
    raise NotImplementedError("chainrule predict is not implemented yet")
