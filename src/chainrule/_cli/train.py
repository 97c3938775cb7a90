"""`chainrule train`: train an MLP or a CNN on a dataset and report its test accuracy."""

from __future__ import annotations

import json
import sys
import time
import warnings

from chainrule._cli import add_command

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
    "scale": "auto",
    "dropout": 0.2,
}

#: ``--scale`` choices: the scalers of :data:`chainrule.data.SCALERS` and "auto".
SCALE_CHOICES = ("auto", "standard", "minmax", "none")


def _number(kind, low: float, high: float = float("inf"), low_open: bool = False,
            high_open: bool = True, what: str = ""):
    """An argparse type: a number of ``kind`` in the given range, else a usage error (exit 2)."""
    import argparse
    import math

    def parse(text: str):
        shown = repr(text if len(text) <= 40 else text[:20] + "...")
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}; got {shown}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {what}; got {shown}")
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"expected {what}; got {text}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


POSITIVE_INT = _number(int, 1, what="an integer >= 1")
NONNEGATIVE_INT = _number(int, 0, what="an integer >= 0")
POSITIVE_FLOAT = _number(float, 0.0, low_open=True, what="a positive number")
FRACTION_OPEN = _number(float, 0.0, 1.0, low_open=True, what="a fraction in (0, 1)")
FRACTION = _number(float, 0.0, 1.0, what="a fraction in [0, 1)")


def _layers(text: str) -> list:
    """``--layers``: the tokens of :func:`chainrule.nn.spec.parse_layers`, else a usage error
    naming the token and the grammar (exit 2)."""
    import argparse

    from chainrule.nn.spec import parse_layers

    try:
        return parse_layers(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("layers=", "--layers ", 1)) from None


def register(subparsers) -> None:
    """The `train` parser: the data, the network, the training, the split and the outputs."""
    p = add_command(subparsers, "train")
    _add_data_options(p)
    _add_network_options(p)
    _add_training_options(p)
    _add_split_options(p)
    _add_output_options(p)


def _add_data_options(p) -> None:
    p.add_argument(
        "--data",
        default=DEFAULTS["data"],
        help="a dataset name (digits, iris, wine, breast_cancer, diabetes, mnist, "
        "fashion-mnist), a .csv file, a .npz file (X, y) or a folder of IDX files "
        "(default: %(default)s)",
    )
    p.add_argument("--target", help="the target column of a CSV (default: its last column)")


def _add_network_options(p) -> None:
    from chainrule import losses
    from chainrule.nn import ACTIVATIONS

    p.add_argument("--layers", type=_layers, default=_layers(DEFAULTS["layers"]),
                   help="the hidden layers, comma-separated: N a dense layer of N units; "
                   "cOUTkK[sS][pP] a convolution of OUT channels, a KxK kernel, stride S, "
                   "padding P (followed by --activation); pK max pooling, aK average pooling "
                   "over KxK windows. Convolutions and pools come first and see the features "
                   "as one-channel square images (MNIST: 1x28x28); a flatten comes before the "
                   "first dense layer. Example: c32k3,p2,c64k3,p2,128 "
                   f"(default: {DEFAULTS['layers']}; none: no hidden layer)")
    p.add_argument("--activation", default=DEFAULTS["activation"], choices=sorted(ACTIVATIONS),
                   help="hidden activation (default: %(default)s)")
    p.add_argument("--output-activation", choices=sorted(ACTIVATIONS),
                   help="output activation (default: softmax for classes, sigmoid for two, "
                        "identity for regression)")
    p.add_argument("--loss", choices=sorted(losses.LOSSES),
                   help="loss (default: ce, bce for two classes, mse for regression)")


def _add_training_options(p) -> None:
    from chainrule import optim

    p.add_argument("--optimizer", default=DEFAULTS["optimizer"], choices=sorted(optim.OPTIMIZERS),
                   help="optimizer (default: %(default)s)")
    p.add_argument("--lr", type=POSITIVE_FLOAT, default=DEFAULTS["lr"],
                   help="learning rate (default: %(default)s)")
    p.add_argument("--clip-norm", type=POSITIVE_FLOAT, default=None, metavar="MAX",
                   help="clip the gradient to this global L2 norm before each update (default: "
                        "no clipping)")
    p.add_argument("--epochs", type=POSITIVE_INT, default=DEFAULTS["epochs"],
                   help="epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=DEFAULTS["batch_size"],
                   help="mini-batch size (default: %(default)s)")
    p.add_argument("--threads", type=POSITIVE_INT, metavar="N",
                   help="BLAS threads for training (default: 1 for small products, else BLAS's "
                        "own setting)")
    p.add_argument("--dropout", type=FRACTION, default=DEFAULTS["dropout"],
                   help="dropout after each hidden layer (default: %(default)s; 0: none)")
    p.add_argument("--validation-split", type=FRACTION, default=0.0,
                   help="fraction of the training data held out for validation")
    p.add_argument("--early-stopping", type=POSITIVE_INT, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without improvement (restores the best "
                        "weights)")


def _add_split_options(p) -> None:
    p.add_argument("--test-size", type=FRACTION_OPEN, default=DEFAULTS["test_size"],
                   help="test fraction for data without a test split (default: %(default)s)")
    p.add_argument(
        "--scale",
        choices=SCALE_CHOICES,
        default=DEFAULTS["scale"],
        help="feature scaling, fitted on the training data: auto leaves features already in "
        "[0, 1] as they are (images: IDX pixels are divided by 255 on loading) and "
        "standardises any other data (default: %(default)s)",
    )
    p.add_argument("--seed", type=NONNEGATIVE_INT, default=DEFAULTS["seed"],
                   help="random seed (default: %(default)s)")


def _add_output_options(p) -> None:
    p.add_argument("--out", metavar="MODEL", help="save the trained model (.safetensors)")
    p.add_argument("--plot", metavar="PNG", help="save loss and accuracy curves to a PNG")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no per-epoch progress and no download progress")


def _defaults_for(task: str, n_classes: int) -> tuple[str, str]:
    """The task's loss (squared error, binary or categorical cross-entropy) and the output
    activation that fuses with it (``fuses_with``, the loss class's own)."""
    from chainrule.losses import LOSSES

    loss = "mse" if task == "regression" else "bce" if n_classes == 2 else "ce"
    return LOSSES[loss].fuses_with, loss


def run(args) -> int:
    """Train as the options say, then report.

    1. Check the output names, load the data and prepare it (split, labels, scaling).
    2. Build the network for the task (:func:`_build_model`).
    3. Train it (:func:`_train`), regression targets standardised and folded back.
    4. Score it on the training and the test set; an interrupted run saves beside ``--out``.
    5. Save the model and the curves; print a summary (text or JSON).
    """
    from chainrule import data as cdata
    from chainrule._cli._faults import check_outputs, evaluate_trained, finish_interrupted

    check_outputs(args)
    ds = cdata.load_dataset(args.data, target=args.target, progress=not args.quiet)
    prepared = cdata.prepare_dataset(ds, args.test_size, args.scale, args.seed)
    model, network = _build_model(args, ds, prepared)
    history, seconds = _train(model, args, prepared, ds.task, network["loss"])
    X, y, Xt, yt = prepared["X"], prepared["y"], prepared["X_test"], prepared["y_test"]
    train_metrics, test_metrics = evaluate_trained(model, X, y, Xt, yt, args)
    if history.interrupted:
        return finish_interrupted(args, model, history)
    if model.task != "classification":
        from chainrule._cli._metrics import r2_score

        train_metrics["r2"] = r2_score(model, X, y)
        if test_metrics is not None:
            test_metrics["r2"] = r2_score(model, Xt, yt)
    _save(model, history, args)
    summary = _summary(args, ds, prepared, model, history, seconds, network, train_metrics,
                       test_metrics)
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        _print_summary(summary, seconds, args)
    return 0


def _build_model(args, ds, prepared) -> tuple:
    """The network for the task: the model, and its ``sizes``, ``output_activation`` and
    ``loss`` (a dict, as the summary names them).

    The output activation and the loss are the task's defaults unless the options name them;
    the output width is the number of classes (1 for two classes with a binary loss) or of
    regression targets.
    """
    import numpy as np

    from chainrule._cli import UsageError
    from chainrule.nn import mlp

    y = prepared["y"]
    n_classes = len(prepared["classes"]) if prepared["classes"] is not None else 0
    out_act, loss = _defaults_for(ds.task, n_classes)
    out_act = args.output_activation or out_act
    loss = args.loss or loss
    if ds.task == "regression":
        n_out = y.shape[1] if np.ndim(y) == 2 else 1
    elif loss in ("bce", "bce_with_logits"):
        if n_classes != 2:
            raise UsageError(
                f"--loss {loss} is for two classes; {ds.name} has {n_classes}. Use --loss ce."
            )
        n_out = 1
    else:
        n_out = n_classes
    n_in = prepared["X"].shape[1]
    if any(token.is_image for token in args.layers):
        model, sizes = _image_model(args, n_in, n_out, out_act)
    else:
        sizes = [n_in, *(token.size for token in args.layers), n_out]
        model = mlp(sizes, activation=args.activation, output=out_act, dropout=args.dropout,
                    seed=args.seed)
    model.classes_ = prepared["classes"]
    model.preprocessing = prepared["preprocessing"]
    return model, {"sizes": sizes, "output_activation": out_act, "loss": loss}


def _image_model(args, n_in: int, n_out: int, out_act) -> tuple:
    """A network with convolutions or pools: the features as one-channel square images."""
    import math

    from chainrule._cli import UsageError
    from chainrule.nn.spec import network

    side = math.isqrt(n_in)
    if side * side != n_in:
        raise UsageError(f"--layers {','.join(t.text for t in args.layers)} has convolutions or "
                         f"pools, which need square images; the data has {n_in} features, not a "
                         "square number of pixels. Use dense layers only.")
    try:
        model = network(args.layers, (1, side, side), n_out, activation=args.activation,
                        output=out_act, dropout=args.dropout, seed=args.seed)
    except ValueError as exc:
        raise UsageError(str(exc).replace("layers:", "--layers:", 1)) from None
    sizes = [f"1x{side}x{side}", *(token.text if token.is_image else token.size
                                   for token in args.layers), n_out]
    return model, sizes


def _train(model, args, prepared: dict, task: str, loss: str):
    """Fit ``model`` as the options say: ``history, seconds``. Regression targets are
    standardised for training when the output is linear, then folded into the last layer."""

    X, y = prepared["X"], prepared["y"]
    y_fit, target_scaling = y, None
    if task == "regression" and _output_is_linear(model) and _squarable(y, model.dtype):
        y_fit, target_scaling = standardise_targets(y)
    from chainrule.training import TrainingWarning

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TrainingWarning)
        history = _fit_with_options(model, X, y_fit, loss, args)
    for warning in caught:
        if issubclass(warning.category, TrainingWarning):
            print(f"chainrule train: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    seconds = time.perf_counter() - t0
    if target_scaling is not None:
        fold_target_scaling(model, *target_scaling)
        model.preprocessing["target_scaling"] = {
            "mean": target_scaling[0].tolist(),
            "scale": target_scaling[1].tolist(),
            "note": "targets were standardised for training; the last Dense layer maps back "
                    "to their units",
        }
    return history, seconds


def _save(model, history, args) -> None:
    """Write ``--out`` (the model) and ``--plot`` (the curves), when given."""
    if args.out:
        model.save(args.out)
    if args.plot:
        from chainrule._cli._plotting import plot_history

        plot_history(history, args.plot)


def _summary(args, ds, prepared, model, history, seconds, network, train_metrics,
             test_metrics) -> dict:
    """The run as the JSON summary: data, architecture, training, metrics and speed."""
    import numpy as np

    validation = None
    if history.val_loss:
        validation = {"loss": history.val_loss[-1],
                      **({"accuracy": history.val_accuracy[-1]} if history.val_accuracy else {})}
    speeds = history.samples_per_second
    return {
        "dataset": ds.name,
        "task": ds.task,
        "samples": {"train": len(prepared["X"]),
                    "test": len(prepared["X_test"]) if prepared["X_test"] is not None else 0},
        "architecture": {
            "sizes": network["sizes"],
            "activation": args.activation,
            "output_activation": network["output_activation"],
            "layers": [repr(layer) for layer in model.layers],
            "parameters": model.n_parameters(),
        },
        "loss": network["loss"],
        "optimizer": args.optimizer,
        "lr": args.lr,
        "scale": prepared["preprocessing"]["scaler"]["type"],
        "epochs_run": history.epochs_run,
        "stopped_early": history.stopped_early,
        "interrupted": history.interrupted,
        "train": train_metrics,
        "validation": validation,
        "test": test_metrics,
        "seconds": round(seconds, 3),
        "samples_per_second": round(float(np.median(speeds)), 1) if speeds else 0.0,
        "model_file": args.out,
    }


def _print_summary(summary: dict, seconds: float, args) -> None:
    """The summary as text: one line on the run, one per split, the test accuracy, the files."""
    arch, epochs = summary["architecture"], summary["epochs_run"]
    print(
        f"Trained {' -> '.join(map(str, arch['sizes']))} ({arch['activation']}, "
        f"{arch['output_activation']} output, {summary['loss']} loss, {summary['optimizer']}) "
        f"on {summary['dataset']}: {epochs} epoch{'' if epochs == 1 else 's'} in "
        f"{seconds:.1f}s ({summary['samples_per_second']:,.0f} samples/s)."
    )
    for label in ("train", "test"):
        metrics = summary[label]
        if metrics is None:
            continue
        acc = f", accuracy {metrics['accuracy']:.2%}" if "accuracy" in metrics else ""
        r2 = f", R^2 {metrics['r2']:.4f}" if "r2" in metrics else ""
        print(f"  {label:5s} loss {metrics['loss']:.4f}{acc}{r2}")
    test = summary["test"]
    if test and "accuracy" in test:
        print(f"Test accuracy: {test['accuracy']:.2%}")
    if args.out:
        print(f"Saved the model to {args.out}")
    if args.plot:
        print(f"Saved the curves to {args.plot}")


def _output_is_linear(model) -> bool:
    """True when nothing but identity activations follows the last Dense layer."""
    from chainrule.nn import Dense

    for layer in reversed(model.layers):
        if isinstance(layer, Dense):
            return True
        if getattr(layer, "name", None) != "identity":
            return False
    return False


def standardise_targets(y):
    r"""Regression targets as :math:`(y - \mu)/\sigma` per output, with :math:`(\mu, \sigma)`.

    A network's first steps output values near 0 with a spread near 1; targets in the hundreds
    (diabetes: mean 152, variance 5,930) take most of the training just to reach their scale.
    """
    import numpy as np

    y = np.asarray(y, dtype=np.float64)
    y2 = y.reshape(len(y), -1)
    mean = y2.mean(axis=0)
    scale = y2.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return ((y2 - mean) / scale).reshape(y.shape), (mean, scale)


def fold_target_scaling(model, mean, scale) -> None:
    r"""Make the model predict in the targets' units: the last Dense layer's :math:`W, b`
    become :math:`W\sigma` and :math:`b\sigma + \mu` (column-wise), so a saved model needs no
    extra step and reads the same from PyTorch."""
    import numpy as np

    from chainrule.nn import Dense

    last = next(layer for layer in reversed(model.layers) if isinstance(layer, Dense))
    dtype = last.W.dtype
    last.W[...] = (last.W.astype(np.float64) * scale).astype(dtype)
    if last.b is not None:
        last.b[...] = (last.b.astype(np.float64) * scale + mean).astype(dtype)


def _squarable(y, dtype) -> bool:
    """False for targets too large to square in the model's float type: those are left to the
    training checks, which say so (standardising them would only move the overflow into the
    folded weights)."""
    import math

    import numpy as np

    y = np.asarray(y, dtype=np.float64)
    return bool(y.size) and float(np.max(np.abs(y))) <= math.sqrt(float(np.finfo(dtype).max)) / 1e3


def _fit_with_options(model, X, y, loss, args):
    """``model.fit`` with the command's options (a line of progress per epoch unless quiet)."""
    from chainrule import optim

    return model.fit(
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
        stream=sys.stderr if not args.json else None,
        threads=args.threads,
    )
