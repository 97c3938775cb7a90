"""What `chainrule train` does about its outputs when something goes wrong.

- The output files are checked before training starts (an empty name, a folder, a device or a
  missing folder is refused at once rather than after the last epoch).
- A model whose loss on its own training data is NaN or inf (it diverged in its last update,
  or its weights are so large that the values overflow) is never saved.
- An interrupted run (Ctrl-C) exits with 130 and never replaces the file named by ``--out``: the
  partly trained model goes to a new file beside it, and the message says where.
"""

from __future__ import annotations

import math
import sys

#: Exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def check_outputs(args) -> None:
    """Refuse unusable ``--out``/``--plot`` names before any work is done."""
    from chainrule._io import check_output_path

    if args.out is not None:
        check_output_path(args.out, "the model")
    if getattr(args, "plot", None) is not None:
        check_output_path(args.plot, "the curves")


def evaluate_trained(model, X, y, X_test, y_test, args) -> tuple[dict, dict | None]:
    """Train and test metrics of the trained model; FloatingPointError when its outputs or its
    training loss are not finite (it diverged in its last updates), so that it is not saved."""
    hint = (f"Lower the learning rate (--lr {args.lr:g} with {args.optimizer}; try "
            f"{args.lr / 10:g}) or clip the gradient (--clip-norm 1).")
    try:
        train = model.evaluate(X, y)
        test = model.evaluate(X_test, y_test) if X_test is not None else None
    except ValueError as exc:
        raise FloatingPointError(f"Training diverged, so the model was not saved: {exc} "
                                 f"{hint}") from None
    if not math.isfinite(train["loss"]):
        raise FloatingPointError(
            f"Training diverged: the trained model's loss on the training data is "
            f"{train['loss']}, so it was not saved. {hint}"
        )
    return train, test


def finish_interrupted(args, model, history) -> int:
    """Save the partly trained model beside ``--out`` (never over it); return 130."""
    from chainrule._io import free_name

    done = f"after {history.epochs_run} epoch{'s' if history.epochs_run != 1 else ''}"
    if not args.out:
        print(f"chainrule train: interrupted {done}; nothing was saved (no --out).",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    while True:
        partial = free_name(args.out, "interrupted")
        try:
            model.save(partial, replace=False)
            break
        except FileExistsError:  # created meanwhile by someone else: take the next name
            continue
    print(f"chainrule train: interrupted {done}; {args.out} was not touched. The partly trained "
          f"model is in {partial}.", file=sys.stderr)
    return EXIT_INTERRUPTED
