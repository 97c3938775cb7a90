"""`chainrule check`: placeholder until its issue lands."""

from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("check", help="(not yet implemented)")


def run(args) -> int:
    raise NotImplementedError("chainrule check is not implemented yet")
