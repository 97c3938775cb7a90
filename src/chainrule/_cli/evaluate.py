"""`chainrule evaluate MODEL --data ...`: loss and accuracy of a saved model on a dataset."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a saved model on a dataset",
        description="Loss (accuracy for classifiers, R^2 for regressors) on the dataset's "
        "test split when it has one; on the rows `chainrule train` held out when the model was "
        "trained on this data; else (or with --all) on every row. A model file that records "
        "no preprocessing (saved from Python) is scored on data without a test split of its "
        "own only with --all, and its features are fed as read, with a warning.",
    )
    p.add_argument("model", help="a model file written by `chainrule train --out`")
    p.add_argument("--data", required=True, help="a dataset name, CSV, NPZ or IDX folder")
    p.add_argument("--target", help="the target column of a CSV (default: its last column)")
    p.add_argument("--all", action="store_true",
                   help="score every row, also those the model was trained on")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args) -> int:
    import json

    from chainrule._cli._metrics import with_r2
    from chainrule._cli._modelio import load_model_and_data
    from chainrule.data import encode_with

    model, X, y, rows = load_model_and_data(args.model, args.data, args.target,
                                            held_out=not args.all, command="evaluate")
    if y is None:
        raise ValueError(f"{args.data} has no targets to evaluate against.")
    if model.task == "classification" and model.classes_ is not None:
        y = encode_with(model.classes_, y)
    metrics = with_r2(model, X, y)
    if args.json:
        print(json.dumps({**metrics, "rows": rows}))
    else:
        acc = f"  accuracy {metrics['accuracy']:.2%}" if "accuracy" in metrics else ""
        r2 = f"  R^2 {metrics['r2']:.4f}" if "r2" in metrics else ""
        print(f"{args.data} ({rows}): {metrics['samples']} samples  loss "
              f"{metrics['loss']:.4f}{acc}{r2}")
    return 0
