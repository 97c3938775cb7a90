r"""Which output activation is fused with which loss: the training objective of a model.

Training a sigmoid output with binary cross-entropy, or a softmax output with cross-entropy,
through the two functions one after the other divides by :math:`\hat y(1 - \hat y)` and then
multiplies by it again; the fused form is the with-logits loss on the scores, whose delta is
:math:`(\hat y - y)/m`. Each loss class says what it fuses with (``fuses_with``) and its
with-logits sibling (``logits_loss``); this module turns that into the objective that
:mod:`chainrule.training` runs, and refuses the pairings that apply an activation twice.
"""

from __future__ import annotations

from chainrule import losses as _losses
from chainrule.nn import activations as _act

__all__ = ["default_loss", "fused_objective"]


def fused_objective(model, loss) -> tuple[int, _losses.Loss]:
    r"""``(n, loss_fn)``: training runs the first ``n`` layers of ``model`` against ``loss_fn``.

    A loss with a with-logits sibling (``loss.logits_loss``: BCE, CE) needs its ``fuses_with``
    output activation (sigmoid, softmax): training drops that activation and uses the sibling,
    whose delta at the logits is :math:`(\hat y - y)/m` (no division by
    :math:`\hat y(1-\hat y)`, so a saturated output cannot produce NaN); Identity + MSE drops
    the identity. Any other activation in front of such a loss is refused, and so is a
    with-logits loss behind an activation that already makes probabilities.
    """
    loss = _losses.get(loss)
    n = len(model.layers)
    last = model.output_activation
    if loss.logits_loss is not None:
        if last != loss.fuses_with:
            raise ValueError(_unfusable(model, loss))
        kwargs = {"reduction": loss.reduction} if hasattr(loss, "reduction") else {}
        return n - 1, _losses.get(loss.logits_loss, **kwargs)
    if loss.applies is not None and last in _probability_outputs():
        fused = default_loss(last)
        fix = (f"loss={fused!r} (chainrule fuses it with the output activation)"
               if _losses.LOSSES[fused].logits_loss else "a softmax output with loss='ce'")
        raise ValueError(
            f"Loss {loss.name!r} takes raw scores (logits) but the model already ends in "
            f"{type(model.layers[-1]).__name__}, which would be applied twice. Use "
            f"{fix} or remove the output activation."
        )
    return (n - 1, loss) if last == "identity" else (n, loss)


def _probability_outputs() -> set[str]:
    """The output activations that a with-logits loss must not follow: those the with-logits
    losses apply themselves (sigmoid, softmax) and the ones over a whole row (log-softmax)."""
    applied = {cls.applies for cls in _losses.LOSSES.values() if cls.applies}
    return applied | {name for name, cls in _act.ACTIVATIONS.items() if not cls.elementwise}


def default_loss(output_activation: str | None) -> str:
    """The loss a model with this output activation is scored with when none is named: the one
    that fuses with it (``"ce"`` after a softmax, ``"bce"`` after a sigmoid), ``"mse"`` else."""
    for name, cls in _losses.LOSSES.items():
        if output_activation is not None and cls.fuses_with == output_activation:
            return name
    return "mse"


def _unfusable(model, loss) -> str:
    """Why ``loss`` cannot follow the model's output, and the two fixes."""
    last = model.output_activation
    wanted, fused_name = loss.fuses_with, loss.logits_loss
    ends = (f"ends in {type(model.layers[-1]).__name__}" if last
            else "has no output activation (it outputs raw scores)")
    hint = ""
    if last == "tanh":
        hint = (" Tanh outputs values in (-1, 1): the loss would take the log of a negative "
                "number, and its gradient divides by zero at yhat = 0. (tanh(z) + 1)/2 = "
                "sigmoid(2z) is the rescaled form.")
    return (
        f"{type(loss).__name__} needs predicted probabilities in [0, 1], but the model {ends}."
        f"{hint} Use a {_act.ACTIVATIONS[wanted].__name__} output layer (chainrule then trains "
        f"it from the logits), or loss={fused_name!r} on the raw scores."
    )
