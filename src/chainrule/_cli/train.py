"""`chainrule train`: train an MLP on a dataset and report its test accuracy."""

from __future__ import annotations

import json
import sys
import time

DEFAULTS = {
    "data": "digits",
    "layers": "128",
    "activation": "relu",
    "optimizer": "adam",
    "lr": 1e-3,
    "epochs": 30,
    "batch_size": 32,
    "seed": 0,
    "test_size": 0.2,
    "scale": "standard",
}


def _layers(text: str) -> list[int]:
    import argparse

    if text.strip() in ("", "none"):
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--layers takes comma-separated widths like 256,128; got {text!r}"
        ) from None
    if min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--layers widths must be >= 1; got {text!r}")
    return sizes


def register(subparsers) -> None:
    from chainrule import losses, optim
    from chainrule.nn import ACTIVATIONS

    p = subparsers.add_parser(
        "train",
        help="train a multi-layer perceptron and print its test accuracy",
        description=(
            "Train a multi-layer perceptron. With no arguments: a 64-128-10 ReLU network on "
            "scikit-learn's digits, printing the test accuracy."
        ),
    )
    p.add_argument(
        "--data",
        default=DEFAULTS["data"],
        help="a dataset name (digits, iris, wine, breast_cancer, diabetes, mnist, "
        "fashion-mnist), a .csv file, a .npz file (X, y) or a folder of IDX files "
        "(default: %(default)s)",
    )
    p.add_argument("--target", help="the target column of a CSV (default: its last column)")
    p.add_argument(
        "--layers",
        type=_layers,
        default=_layers(DEFAULTS["layers"]),
        help=f"hidden layer widths, comma-separated (default: {DEFAULTS['layers']})",
    )
    p.add_argument(
        "--activation",
        default=DEFAULTS["activation"],
        choices=sorted(ACTIVATIONS),
        help="hidden activation (default: %(default)s)",
    )
    p.add_argument(
        "--output-activation",
        choices=sorted(ACTIVATIONS),
        help="output activation (default: softmax for classes, sigmoid for two, "
        "identity for regression)",
    )
    p.add_argument(
        "--loss",
        choices=sorted(losses.LOSSES),
        help="loss (default: ce, bce for two classes, mse for regression)",
    )
    p.add_argument(
        "--optimizer",
        default=DEFAULTS["optimizer"],
        choices=sorted(optim.OPTIMIZERS),
        help="optimizer (default: %(default)s)",
    )
    p.add_argument(
        "--lr", type=float, default=DEFAULTS["lr"], help="learning rate (default: %(default)s)"
    )
    p.add_argument(
        "--clip-norm",
        type=float,
        default=None,
        metavar="MAX",
        help="clip the gradient to this global L2 norm before each update (default: no clipping)",
    )
    p.add_argument(
        "--epochs", type=int, default=DEFAULTS["epochs"], help="epochs (default: %(default)s)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULTS["batch_size"],
        help="mini-batch size (default: %(default)s)",
    )
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="BLAS threads for training (default: 1 for small products, else BLAS's own setting)",
    )
    p.add_argument("--dropout", type=float, default=0.0, help="dropout after each hidden layer")
    p.add_argument(
        "--validation-split",
        type=float,
        default=0.0,
        help="fraction of the training data held out for validation",
    )
    p.add_argument(
        "--early-stopping",
        type=int,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without improvement (restores the best weights)",
    )
    p.add_argument(
        "--test-size",
        type=float,
        default=DEFAULTS["test_size"],
        help="test fraction for data without a test split (default: %(default)s)",
    )
    p.add_argument(
        "--scale",
        choices=("standard", "minmax", "none"),
        default=DEFAULTS["scale"],
        help="feature scaling, fitted on the training data (default: %(default)s)",
    )
    p.add_argument(
        "--seed", type=int, default=DEFAULTS["seed"], help="random seed (default: %(default)s)"
    )
    p.add_argument("--out", metavar="MODEL", help="save the trained model (.safetensors)")
    p.add_argument("--plot", metavar="PNG", help="save loss and accuracy curves to a PNG")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-epoch progress")


def _defaults_for(task: str, n_classes: int) -> tuple[str, str]:
    if task == "regression":
        return "identity", "mse"
    return ("sigmoid", "bce") if n_classes == 2 else ("softmax", "ce")


def run(args) -> int:
    import numpy as np

    from chainrule import data as cdata
    from chainrule import optim
    from chainrule.nn import mlp

    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1; got {getattr(args, name)}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(
            f"--threads must be >= 1; got {args.threads}. Leave it out to let chainrule choose."
        )
    if not 0.0 < args.lr < float("inf"):
        raise ValueError(f"--lr must be a positive number; got {args.lr}")
    if args.clip_norm is not None and not 0.0 < args.clip_norm < float("inf"):
        raise ValueError(f"--clip-norm must be a positive number; got {args.clip_norm}")

    from chainrule._cli._faults import check_outputs, evaluate_trained, finish_interrupted

    check_outputs(args)
    ds = cdata.load_dataset(args.data, target=args.target)
    prepared = prepare_dataset(ds, args.test_size, args.scale, args.seed)
    X, y, Xt, yt = prepared["X"], prepared["y"], prepared["X_test"], prepared["y_test"]
    n_classes = len(prepared["classes"]) if prepared["classes"] is not None else 0
    out_act, loss = _defaults_for(ds.task, n_classes)
    out_act = args.output_activation or out_act
    loss = args.loss or loss
    if ds.task == "regression":
        n_out = y.shape[1] if np.ndim(y) == 2 else 1
    elif loss in ("bce", "bce_with_logits"):
        if n_classes != 2:
            raise ValueError(
                f"--loss {loss} is for two classes; {ds.name} has {n_classes}. Use --loss ce."
            )
        n_out = 1
    else:
        n_out = n_classes
    sizes = [X.shape[1], *args.layers, n_out]
    model = mlp(
        sizes, activation=args.activation, output=out_act, dropout=args.dropout, seed=args.seed
    )
    model.classes_ = prepared["classes"]
    model.preprocessing = prepared["preprocessing"]

    stream = sys.stderr if not args.json else None
    t0 = time.perf_counter()
    history = model.fit(
        X,
        y,
        loss=loss,
        optimizer=optim.get(args.optimizer, lr=args.lr, clip_norm=args.clip_norm),
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=args.validation_split,
        early_stopping=args.early_stopping,
        seed=args.seed,
        verbose=0 if (args.quiet or args.json) else 1,
        stream=stream,
        threads=args.threads,
    )
    seconds = time.perf_counter() - t0
    train_metrics, test_metrics = evaluate_trained(model, X, y, Xt, yt, args)
    if history.interrupted:
        return finish_interrupted(args, model, history)
    if args.out:
        model.save(args.out)
    if args.plot:
        from chainrule._cli._plotting import plot_history

        plot_history(history, args.plot)

    summary = {
        "dataset": ds.name,
        "task": ds.task,
        "samples": {"train": len(X), "test": len(Xt) if Xt is not None else 0},
        "architecture": {
            "sizes": sizes,
            "activation": args.activation,
            "output_activation": out_act,
            "layers": [repr(layer) for layer in model.layers],
            "parameters": model.n_parameters(),
        },
        "loss": loss,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "epochs_run": history.epochs_run,
        "stopped_early": history.stopped_early,
        "interrupted": history.interrupted,
        "train": train_metrics,
        "validation": (
            {
                "loss": history.val_loss[-1],
                **({"accuracy": history.val_accuracy[-1]} if history.val_accuracy else {}),
            }
            if history.val_loss
            else None
        ),
        "test": test_metrics,
        "seconds": round(seconds, 3),
        "samples_per_second": round(float(np.median(history.samples_per_second)), 1)
        if history.samples_per_second
        else 0.0,
        "model_file": args.out,
    }
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return 0
    print(
        f"Trained {' -> '.join(map(str, sizes))} ({args.activation}, {out_act} output, "
        f"{loss} loss, {args.optimizer}) on {ds.name}: {history.epochs_run} epochs in "
        f"{seconds:.1f}s ({summary['samples_per_second']:,.0f} samples/s)."
    )
    for label, metrics in (("train", train_metrics), ("test", test_metrics)):
        if metrics is None:
            continue
        acc = f", accuracy {metrics['accuracy']:.2%}" if "accuracy" in metrics else ""
        print(f"  {label:5s} loss {metrics['loss']:.4f}{acc}")
    if test_metrics and "accuracy" in test_metrics:
        print(f"Test accuracy: {test_metrics['accuracy']:.2%}")
    if args.out:
        print(f"Saved the model to {args.out}")
    if args.plot:
        print(f"Saved the curves to {args.plot}")
    return 0


def prepare_dataset(ds, test_size: float, scale: str, seed: int) -> dict:
    """Split (unless the data has its own test set), encode labels, fit the scaler on train."""
    from chainrule import data as cdata
    from chainrule._cli._faults import check_enough_samples

    check_enough_samples(ds)
    if ds.X_test is not None:
        X, y, Xt, yt = ds.X, ds.y, ds.X_test, ds.y_test
    else:
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"--test-size must be in (0, 1); got {test_size}")
        X, Xt, y, yt = cdata.train_test_split(
            ds.X, ds.y, test_size=test_size, stratify=ds.task == "classification", seed=seed
        )
    classes = None
    if ds.task == "classification":
        classes, y = cdata.encode_labels(y)
        yt = encode_with(classes, yt)
    scaler = cdata.make_scaler(scale)
    X = scaler.fit_transform(X)
    Xt = scaler.transform(Xt)
    preprocessing = {
        "scaler": scaler.to_config(),
        "feature_names": list(ds.feature_names or []),
        "task": ds.task,
    }
    return {
        "X": X,
        "y": y,
        "X_test": Xt,
        "y_test": yt,
        "classes": classes,
        "preprocessing": preprocessing,
    }


def encode_with(classes, y):
    """Map labels ``y`` to indices of ``classes``; unknown labels raise ValueError naming them."""
    import numpy as np

    y = np.asarray(y)
    idx = np.searchsorted(classes, y)
    idx = np.clip(idx, 0, len(classes) - 1)
    bad = classes[idx] != y
    if bad.any():
        raise ValueError(
            f"label {y[bad][0].item()!r} does not occur in the training data (known: "
            f"{', '.join(map(str, classes[:10]))}{'...' if len(classes) > 10 else ''})"
        )
    return idx
