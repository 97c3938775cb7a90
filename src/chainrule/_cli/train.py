"""`chainrule train`: placeholder until its issue lands."""

from __future__ import annotations


def register(subparsers) -> None:
    subparsers.add_parser("train", help="(not yet implemented)")


def run(args) -> int:
    raise NotImplementedError("chainrule train is not implemented yet")
