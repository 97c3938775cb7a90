"""The inputs of the page's two panels, declared once.

Each :class:`Field` is at the same time a query parameter of ``/derive`` and ``/check`` (and of
``/api/derive`` and ``/api/check``), a control of the form, and an option of the command line:
its name is the option's name, so :func:`command_line` turns a query into the very arguments of
``chainrule derive`` or ``chainrule check``. A new option of either command is one more field
here, and the form, the API and ``/api``'s description follow.
"""

from __future__ import annotations

from dataclasses import dataclass

from chainrule.derivation import library

__all__ = ["CHECK_FIELDS", "DERIVE_FIELDS", "PANELS", "Field", "command_line"]

_TRUE = ("1", "true", "on", "yes")
_FALSE = ("", "0", "false", "off", "no")


@dataclass(frozen=True)
class Field:
    """One input of a panel: a query parameter, a form control and an API parameter.

    ``kind`` is ``"text"``, ``"choice"`` (a menu of ``choices``; the engine still accepts its
    aliases) or ``"flag"`` (a check box; true is ``1``, ``true``, ``on`` or ``yes``).
    ``advanced`` fields sit under "Options"; a ``positional`` field is the command's argument
    rather than an option.
    """

    name: str
    label: str
    kind: str = "text"
    help: str = ""
    choices: tuple[str, ...] = ()
    placeholder: str = ""
    advanced: bool = False
    positional: bool = False

    def parse(self, value: str) -> str | bool | None:
        if self.kind == "flag":
            low = value.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(f"{self.name} is a yes/no option; got {value!r}. Use {self.name}=1 "
                             "or leave it out.")
        return value.strip() or None


def _activation_choices() -> tuple[str, ...]:
    # The library's elementwise activations, and the two that map a vector to a vector.
    return (*library.activation_names(), *library.NOT_ELEMENTWISE)


# The loss options that both panels offer.
_HALF = Field("half", "Half squared error", "flag", "with the mse loss: (yhat - y)²/2",
              advanced=True)
_MEAN = Field("mean", "Mean over m examples", "flag",
              "the loss is a mean (its derivative has 1/m)", advanced=True)

DERIVE_FIELDS: tuple[Field, ...] = (
    Field("expression", "Formula", placeholder="x*sigmoid(x)", positional=True,
          help="a formula in x (or z, yhat, y, w, p, t), an activation or a loss name"),
    Field("activation", "Activation", "choice", "or pick an activation", _activation_choices()),
    Field("loss", "Loss", "choice", "and/or a loss: with both, dE/dz",
          tuple(library.loss_names())),
    Field("network", "or a network", placeholder="relu,tanh,sigmoid",
          help="every dense layer's activation, first to last, with a loss: backpropagation "
               "through every layer"),
    Field("weights", "Through the weights", "flag",
          "continue through z = w·x to dE/dw and the step Δw = -η·dE/dw", advanced=True),
    Field("method", "Fractions by", "choice", "the quotient rule or the chain rule",
          ("quotient", "chain"), advanced=True),
    _HALF,
    _MEAN,
    Field("vector", "Through the sum over K outputs", "flag",
          "with an activation and a loss: the explicit sum over the outputs", advanced=True),
    Field("layer", "One dense layer (matrix form)", "flag",
          "with an activation and a loss: Z = XW + b over a batch, with shapes", advanced=True),
    Field("wrt", "Variable", help="the variable of a formula (default: x, then z, ...)",
          placeholder="x", advanced=True),
)

CHECK_FIELDS: tuple[Field, ...] = (
    Field("formula", "Your derivative", placeholder="-(y/yhat - (1-y)/(1-yhat))",
          help="the derivative you worked out by hand", positional=True),
    Field("loss", "of the loss", "choice", "the loss you differentiated",
          tuple(library.loss_names())),
    Field("function", "or of the function", placeholder="x*sigmoid(x)",
          help="any formula instead of a loss"),
    Field("activation", "Activation", "choice",
          "with a loss: dE/dz through this activation; alone: its own derivative",
          _activation_choices()),
    Field("wrt", "Variable", help="default: yhat, or p; z with an activation; W for a layer",
          placeholder="yhat", advanced=True),
    _MEAN,
    _HALF,
    Field("layer", "Matrix form: one dense layer", "flag",
          "X @ W + b, then the activation (implied by a formula with @ or .T)", advanced=True),
    Field("network", "Network activations", placeholder="relu,sigmoid",
          help="matrix form for a network: every layer's activation, first to last",
          advanced=True),
    Field("sum", "Summed loss (matrix form)", "flag",
          "the loss is summed over the m examples (no 1/m)", advanced=True),
)

PANELS = {"derive": DERIVE_FIELDS, "check": CHECK_FIELDS}


def command_line(panel: str, values: dict) -> list[str]:
    """The arguments of ``chainrule <panel>`` for the parsed query ``values``, with JSON output
    and no time limit of its own (the worker keeps the time)."""
    argv = [panel, "--format", "json", "--timeout", "0"]
    positional = []
    for field in PANELS[panel]:
        value = values.get(field.name)
        if not value:
            continue
        if field.positional:
            positional.append(value)
        elif field.kind == "flag":
            argv.append(f"--{field.name}")
        else:
            argv.append(f"--{field.name}={value}")
    return [*argv, "--", *positional]
