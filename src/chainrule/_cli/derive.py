"""`chainrule derive`: placeholder until its issue lands."""

from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("derive", help="(not yet implemented)")


def run(args) -> int:
    raise NotImplementedError("chainrule derive is not implemented yet")
