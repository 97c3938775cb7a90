"""`chainrule evaluate MODEL --data ...`: loss and accuracy of a saved model on a dataset."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a saved model on a dataset",
        description="Loss (and accuracy for classifiers) on the dataset's "
        "test split when it has one, else on all of it.",
    )
    p.add_argument("model", help="a model file written by `chainrule train --out`")
    p.add_argument("--data", required=True, help="a dataset name, CSV, NPZ or IDX folder")
    p.add_argument("--target", help="the target column of a CSV (default: its last column)")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args) -> int:
    import json

    from chainrule._cli._modelio import load_model_and_data
    from chainrule._cli.train import encode_with

    model, X, y = load_model_and_data(args.model, args.data, args.target)
    if y is None:
        raise ValueError(f"{args.data} has no targets to evaluate against")
    if model.task == "classification" and model.classes_ is not None:
        y = encode_with(model.classes_, y)
    metrics = model.evaluate(X, y)
    if args.json:
        print(json.dumps(metrics))
    else:
        acc = f"  accuracy {metrics['accuracy']:.2%}" if "accuracy" in metrics else ""
        print(f"{args.data}: {metrics['samples']} samples  loss {metrics['loss']:.4f}{acc}")
    return 0
