"""How the checkers write the activations and losses they name, in one place.

The sentences of the checkers speak of an activation's derivative (``σ'(z) = yhat(1 - yhat)``),
of its output form, of the output activation that fuses with a loss, and of a loss by its title.
Every such table of :mod:`chainrule.gradient_check` lives here, so that deriving them from the
core's activation and loss classes is one edit. Only the standard library is imported here.
"""

from __future__ import annotations

__all__ = [
    "DERIVATIVE_TEXT",
    "FUSED",
    "LOSS_TITLES",
    "MATRIX_LOSSES",
    "MATRIX_LOSS_ALIASES",
    "MATRIX_OUTPUT_FORM",
    "OUTPUT_FORMS",
    "derivative_text",
]

#: How the derivative of a known activation is written in a sentence.
DERIVATIVE_TEXT = {
    "sigmoid": "σ'(z) = σ(z)(1 - σ(z)) = yhat(1 - yhat)",
    "tanh": "tanh'(z) = 1 - tanh²(z) = 1 - yhat²",
    "relu": "relu'(z) = 1 for z > 0, 0 otherwise",
    "identity": "1",
    "softplus": "softplus'(z) = σ(z)",
}

#: The derivative written through the output, u -> f'(z) where u = f(z): its text and the
#: function of u. Applying it to z instead of to f(z) is the mirror image of evaluating f' at
#: the output.
OUTPUT_FORMS = {
    "sigmoid": ("yhat(1 - yhat)", lambda u: u * (1.0 - u)),
    "tanh": ("1 - yhat²", lambda u: 1.0 - u * u),
}

#: Output forms of g' in the matrix formula grammar ("{H}" is the layer's output, "{Z}" its
#: input).
MATRIX_OUTPUT_FORM = {"sigmoid": "{H} * (1 - {H})", "tanh": "(1 - {H}**2)", "relu": "({Z} > 0)"}

#: (output activation, loss) pairs whose delta fuses: dE/dZ = (Yhat - Y)/m (times 2 for the
#: squared error).
FUSED = {("sigmoid", "bce"), ("softmax", "ce"), ("identity", "mse")}

#: The losses a matrix check knows: name -> how a sentence names it.
MATRIX_LOSSES = {
    "mse": "squared error",
    "bce": "binary cross-entropy",
    "ce": "cross-entropy",
}

#: Names the matrix check accepts beside every name and alias of ``chainrule.losses.get``.
MATRIX_LOSS_ALIASES = {"l2": "mse", "logloss": "bce"}

#: How the scalar check titles the loss it differentiates.
LOSS_TITLES = {
    "mse": "squared-error loss",
    "bce": "binary cross-entropy loss",
    "bce_with_logits": "binary cross-entropy-with-logits loss",
    "ce": "cross-entropy loss (one class's term)",
    "huber": "Huber loss",
}


def derivative_text(name: str) -> str:
    """The derivative of the activation ``name`` as a sentence writes it."""
    return DERIVATIVE_TEXT.get(name, f"{name}'(z)")
