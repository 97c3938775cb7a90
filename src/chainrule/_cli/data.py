"""`chainrule data download NAME`: fetch MNIST or Fashion-MNIST into the data folder."""

from __future__ import annotations

from chainrule._cli import add_command


def register(subparsers) -> None:
    from chainrule.download import DATASETS

    p = add_command(subparsers, "data")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    down = sub.add_parser("download", help="download a data set (skipped when already there)")
    down.add_argument("name", choices=sorted(DATASETS), help="the data set")
    down.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    where = sub.add_parser("path", help="print the folder a data set is (or will be) kept in")
    where.add_argument("name", choices=sorted(DATASETS), help="the data set")


def run(args) -> int:
    from chainrule import download

    if args.action == "path":
        home = download.data_home()
        if home is None:
            raise ImportError(
                "Finding the user cache folder needs platformdirs: pip install \".[data]\" from "
                "a clone of chainrule (\"chainrule[data]\" once published), or set "
                "CHAINRULE_DATA_DIR."
            )
        print(home / args.name)
        return 0
    folder = download.fetch(args.name, progress=not args.quiet)
    print(f"{args.name}: {len(download.DATASETS[args.name].files)} files verified in {folder}")
    return 0
