"""How the checkers write the activations and losses they name: read from the core's classes.

Each activation class of :mod:`chainrule.nn` carries its title, its derivative as a textbook
writes it and its output form (``yhat(1 - yhat)``); each loss class of :mod:`chainrule.losses`
its title and the output activation it fuses with. The checkers' sentences read them here, and
add only what is theirs: which losses a matrix check covers, and the output forms written in the
matrix formula grammar.
"""

from __future__ import annotations

from chainrule import losses, nn

__all__ = [
    "FUSED",
    "MATRIX_LOSSES",
    "MATRIX_OUTPUT_FORM",
    "OUTPUT_FORMS",
    "derivative_text",
    "loss_title",
]


def _smooth_output_form(cls) -> str | None:
    """The output form of an activation whose derivative is one smooth formula of its output
    (sigmoid, tanh, softplus), else None: a piecewise or constant one adds nothing to f'(z)."""
    text = cls.output_form_text
    if text is None or "otherwise" in text or text == "1":
        return None
    return text


#: The derivative written through the output, u -> f'(z) where u = f(z): its text and the
#: function of u. Applying it to z instead of to f(z) is the mirror image of evaluating f' at
#: the output.
OUTPUT_FORMS = {
    name: (_smooth_output_form(cls), cls().output_form)
    for name, cls in nn.ACTIVATIONS.items() if _smooth_output_form(cls) is not None
}

#: Output forms of g' in the matrix formula grammar ("{H}" is the layer's output, "{Z}" its
#: input): the checker's own notation for the core's output forms.
MATRIX_OUTPUT_FORM = {"sigmoid": "{H} * (1 - {H})", "tanh": "(1 - {H}**2)", "relu": "({Z} > 0)"}

#: (output activation, loss) pairs whose delta fuses: dE/dZ = (Yhat - Y)/m (times 2 for the
#: squared error), from each loss class's ``fuses_with``.
FUSED = {(cls.fuses_with, name) for name, cls in losses.LOSSES.items() if cls.fuses_with}

#: The losses a matrix check covers: name -> the loss class's title.
MATRIX_LOSSES = {name: losses.LOSSES[name].title for name in ("mse", "bce", "ce")}


def derivative_text(name: str) -> str:
    """The derivative of the activation ``name`` as a sentence writes it, with its output form
    where it is one formula of the output (``σ'(z) = σ(z)(1 - σ(z)) = yhat(1 - yhat)``)."""
    cls = nn.ACTIVATIONS.get(name)
    if cls is None:
        return f"{name}'(z)"
    form = _smooth_output_form(cls)
    return cls.derivative_text + (f" = {form}" if form else "")


def loss_title(name: str) -> str:
    """How the scalar check titles the loss ``name`` it differentiates."""
    cls = losses.LOSSES.get(name)
    if cls is None:
        return f"{name} loss"
    return f"{cls.title} loss" + (" (one class's term)" if name == "ce" else "")
