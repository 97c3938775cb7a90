"""`chainrule predict MODEL --data ...`: print (or save) a trained model's predictions."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict with a saved model",
        description="Print one prediction per line (class labels for a "
        "classifier, values for a regressor).",
    )
    p.add_argument("model", help="a model file written by `chainrule train --out`")
    p.add_argument("--data", required=True, help="a dataset name, CSV, NPZ or IDX folder")
    p.add_argument("--target", help="the target column of a CSV, if it has one (it is ignored)")
    p.add_argument("--proba", action="store_true", help="print class probabilities instead")
    p.add_argument("--out", help="write the predictions to this CSV file instead of stdout")


def run(args) -> int:
    import numpy as np

    from chainrule._cli._modelio import load_model_and_data
    from chainrule._io import atomic_write, check_output_path

    if args.out is not None:
        check_output_path(args.out, "the predictions")
    model, X, _ = load_model_and_data(args.model, args.data, args.target,
                                      features_only=_is_csv(args.data) and args.target is None)
    values = model.predict_proba(X) if args.proba else model.predict(X)
    values = np.asarray(values)
    if values.ndim == 1:
        lines = [str(v) for v in values.tolist()]
    else:
        lines = [",".join(f"{v:.6g}" for v in row) for row in values.tolist()]
    text = "\n".join(lines) + ("\n" if lines else "")
    if args.out:
        atomic_write(args.out, lambda fh: fh.write(text.encode("utf-8")), what="the predictions")
    else:
        print(text, end="")
    return 0


def _is_csv(data: str) -> bool:
    """A CSV file: its columns are all features unless --target names one."""
    return data.lower().endswith((".csv", ".csv.gz"))
