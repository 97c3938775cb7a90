"""What the command line and the web page share: the inputs of ``derive`` and ``check``, the
library calls they make, and the time limit on SymPy.

Each :class:`Option` is declared once and is at the same time a parameter of the library
function its panel calls (:func:`chainrule.derivation.derive`,
:func:`chainrule.gradient_check.check_formula`, :func:`chainrule.gradient_check.check_matrix`),
an option of the command line (``--name``), a query parameter of the web page and its API, and a
control of the page's form. :func:`derive` and :func:`check` take the values of a panel by these
names and call the library; both faces call them, so the command line and the page give the
same answer and the same message, and a new option is one more :class:`Option` here.

Only the standard library is imported here; SymPy loads inside :func:`derive`, :func:`check`
and :func:`load_engine`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CHECK", "DERIVE", "PANELS", "Option", "TimeUp", "answer", "cached", "check", "derive",
           "is_matrix_check", "load_engine", "show", "time_limit", "values_of"]

_TRUE = ("1", "true", "on", "yes")
_FALSE = ("", "0", "false", "off", "no")


@dataclass(frozen=True)
class Option:
    """One input of a panel.

    ``kind`` is ``"text"``, ``"choice"`` or ``"flag"`` (a yes/no switch: ``--name`` on the
    command line, a check box on the page, ``name=1`` in a query). A ``choice`` offers
    ``menu`` (a tuple, or a function returning one, for names the derivation engine knows:
    it is called only when the page draws its form); with ``closed`` only those values are
    accepted, otherwise the menu is a suggestion and the library judges the value (it accepts
    aliases). ``positional``: the command's argument rather than an option. ``exclusive``:
    options sharing this word may not be given together on the command line. ``advanced``
    options sit under "Options" on the page. ``help`` is shown on both faces, except where
    the page's words lean on the form's label ("or pick an activation"): there the command
    line shows ``command_help``. A flag with ``values`` may also name one of them instead of
    yes (``--layer batchnorm``, ``layer=batchnorm``); yes alone is the first of them.
    """

    name: str
    label: str
    kind: str = "text"
    help: str = ""
    menu: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()
    closed: bool = False
    placeholder: str = ""
    metavar: str | None = None
    advanced: bool = False
    positional: bool = False
    required: bool = False
    exclusive: str = ""
    command_help: str = ""
    values: tuple[str, ...] = ()

    @property
    def choices(self) -> tuple[str, ...]:
        """The values the page offers (for a closed choice, the only values accepted)."""
        return tuple(self.menu() if callable(self.menu) else self.menu)

    def parse(self, value: str) -> str | bool | None:
        """The value of a query parameter: True/False for a flag, else the text (None when
        empty)."""
        if self.kind == "flag":
            low = value.strip().lower()
            if low in self.values:
                return low
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            named = f", or one of {', '.join(self.values)}" if self.values else ""
            raise ValueError(f"{self.name} is a yes/no option; got {value!r}. Use {self.name}=1"
                             f"{named}, or leave it out.")
        return value.strip() or None


def _activation_names() -> tuple[str, ...]:
    from chainrule.derivation import library

    # The elementwise activations, then the two that map a vector to a vector.
    return (*library.activation_names(), *library.NOT_ELEMENTWISE)


def _loss_names() -> tuple[str, ...]:
    from chainrule.derivation import library

    return tuple(library.loss_names())


# The loss options that both panels offer.
_HALF = Option("half", "Half squared error", "flag", "with the mse loss: (yhat - y)²/2",
               advanced=True)
_MEAN = Option("mean", "Mean over m examples", "flag",
               "the loss is a mean (its derivative has 1/m)", advanced=True)

# What layer= may name besides yes: the dense layer (the same as yes) and the layers whose
# backward pass the engine derives and the matrix check checks.
_LAYERS = ("dense", "batchnorm", "layernorm", "attention")
# What derive's layer= may name besides: the layers whose backward pass the engine derives
# (and the matrix check does not check).
_DERIVED_LAYERS = (*_LAYERS, "conv2d", "maxpool", "avgpool", "rnn", "lstm")

DERIVE: tuple[Option, ...] = (
    Option("expression", "Formula", placeholder="x*sigmoid(x)", positional=True,
           help="a formula in x (or z, yhat, y, w, p, t), an activation or a loss name, or a "
                "layer: batchnorm, layernorm, attention, conv2d, maxpool, avgpool, rnn, lstm"),
    Option("activation", "Activation", "choice", "or pick an activation", _activation_names,
           metavar="NAME", command_help="an activation name, e.g. tanh"),
    Option("loss", "Loss", "choice", "and/or a loss: with both, dE/dz", _loss_names,
           metavar="NAME", command_help="a loss name, e.g. bce; with an activation: dE/dz"),
    Option("network", "or a network", placeholder="relu,tanh,sigmoid", metavar="ACTS",
           help="every dense layer's activation, first to last, with a loss: backpropagation "
                "through every layer"),
    Option("weights", "Through the weights", "flag",
           "continue through z = w·x to dE/dw and the step Δw = -η·dE/dw", advanced=True),
    Option("method", "Fractions by", "choice", "the quotient rule or the chain rule",
           ("quotient", "chain"), closed=True, advanced=True,
           command_help="differentiate fractions by the quotient rule or the chain rule"),
    _HALF,
    _MEAN,
    Option("vector", "Through the sum over K outputs", "flag",
           "with an activation and a loss: the explicit sum over the outputs", advanced=True),
    Option("layer", "Layer (matrix form)", "flag",
           "with an activation and a loss: Z = XW + b over a batch, with shapes; or "
           "batchnorm, layernorm, attention, conv2d, maxpool, avgpool, rnn, lstm: that layer's "
           "backward pass", advanced=True, values=_DERIVED_LAYERS),
    Option("wrt", "Variable", help="the variable of a formula (default: x, then z, ...)",
           placeholder="x", metavar="VAR", advanced=True),
)

CHECK: tuple[Option, ...] = (
    Option("formula", "Your derivative", placeholder="-(y/yhat - (1-y)/(1-yhat))",
           help="the derivative you worked out by hand", positional=True, required=True,
           command_help='the derivative, e.g. "-(y/yhat - (1-y)/(1-yhat))"'),
    Option("loss", "of the loss", "choice", "the loss you differentiated", _loss_names,
           metavar="NAME", exclusive="target",
           command_help="the loss differentiated, e.g. bce, mse, ce (an unknown name lists "
                        "the known ones)"),
    Option("function", "or of the function", placeholder="x*sigmoid(x)", metavar="EXPR",
           help="any formula instead of a loss", exclusive="target"),
    Option("activation", "Activation", "choice",
           "with a loss: dE/dz through this activation; alone: its own derivative",
           _activation_names, metavar="NAME"),
    Option("wrt", "Variable", help="default: yhat, or p; z with an activation; W for a layer "
                                   "(X, gamma or beta for a normalization; Q, K or V for "
                                   "attention)",
           placeholder="yhat", metavar="VAR", advanced=True,
           command_help="the variable (default: yhat, or p; z with an activation; W for a "
                        "layer; the last layer's W for a network; X, gamma, beta for "
                        "batchnorm and layernorm; Q, K, V for attention)"),
    _MEAN,
    _HALF,
    Option("layer", "Layer (matrix form)", "flag",
           "X @ W + b, then the activation (implied by a formula with @ or .T); or batchnorm, "
           "layernorm, attention", advanced=True, values=_LAYERS,
           command_help="a matrix formula for one dense layer Z = X @ W + b, Yhat = "
                        "activation(Z) (implied by a formula with @ or .T); --layer batchnorm, "
                        "layernorm or attention: a gradient of that layer"),
    Option("causal", "Causal mask", "flag",
           "with layer=attention: each step attends to itself and the steps before",
           advanced=True),
    Option("network", "Network activations", placeholder="relu,sigmoid", metavar="ACTS",
           help="matrix form for a network: every layer's activation, first to last",
           advanced=True),
    Option("sum", "Summed loss (matrix form)", "flag",
           "the loss is summed over the m examples (no 1/m)", advanced=True),
)

PANELS: dict[str, tuple[Option, ...]] = {"derive": DERIVE, "check": CHECK}


def values_of(panel: str, source) -> dict:
    """The panel's values read from ``source``: a mapping (a parsed query) or an object with
    one attribute per option (parsed command-line arguments). A missing value is None, or
    False for a flag; a value given empty stays empty, for the library to name."""
    get = source.get if isinstance(source, dict) else lambda name: getattr(source, name, None)
    values = {}
    for option in PANELS[panel]:
        value = get(option.name)
        if option.kind == "flag":
            value = value if isinstance(value, str) and option.values else bool(value)
        values[option.name] = value
    return values


# --- the library calls ---------------------------------------------------------------------------


def derive(values: dict):
    """:func:`chainrule.derivation.derive` with the derive panel's ``values``."""
    from chainrule.derivation import derive as derive_

    v = values_of("derive", values)
    return derive_(v.pop("expression"), **v)


def is_matrix_check(values: dict) -> bool:
    """Whether the check panel's ``values`` check a matrix formula: ``layer=True``,
    ``network=`` or a formula with ``@`` or ``.T``."""
    formula = values.get("formula") or ""
    return bool(values.get("layer") or values.get("network") or "@" in formula
                or ".T" in formula or "ᵀ" in formula)


def check(values: dict):
    """:func:`chainrule.gradient_check.check_matrix` for a matrix formula, else
    :func:`chainrule.gradient_check.check_formula`, with the check panel's ``values``."""
    v = values_of("check", values)
    if isinstance(v["layer"], str) and v["layer"] != "dense":
        return _check_layer(v)
    if v["causal"]:
        raise ValueError("causal=True is for layer='attention'.")
    if is_matrix_check(v):
        from chainrule.gradient_check.matrix import check_matrix

        if v["function"] is not None:
            raise ValueError("function= is for one-variable formulas; a matrix formula is the "
                             "gradient of a loss: give loss='mse', 'bce' or 'ce'.")
        if v["mean"] and v["sum"]:
            raise ValueError("mean=True and sum=True contradict each other; give one of them.")
        return check_matrix(v["formula"], loss=v["loss"], activation=v["activation"],
                            network=v["network"], wrt=v["wrt"], mean=not v["sum"],
                            half=v["half"])
    from chainrule.gradient_check.symbolic import check_formula

    if v["sum"]:
        raise ValueError("sum=True applies to matrix formulas (layer=True or network=); a "
                         "one-example derivative has no sum over the batch.")
    return check_formula(v["formula"], loss=v["loss"], function=v["function"],
                         activation=v["activation"], wrt=v["wrt"], mean=v["mean"],
                         half=v["half"])


def _check_layer(v: dict):
    """:func:`chainrule.gradient_check.check_layer` with the check panel's values ``v``; an
    option of the dense checks is refused by its name."""
    from chainrule.gradient_check.matrix import check_layer

    for name in ("loss", "function", "activation", "network", "mean", "half", "sum"):
        if v[name]:
            raise ValueError(f"{name}= does not apply to layer={v['layer']!r}: its gradient is "
                             "checked against dY (dO for attention), the gradient from above; "
                             f"leave out {name}=.")
    return check_layer(v["formula"], layer=v["layer"], wrt=v["wrt"], causal=v["causal"])


#: How a derivation or a check is written out, by format name.
_WRITERS = {"json": "to_json", "latex": "to_latex", "markdown": "to_markdown", "text": "to_text"}


def show(result, fmt: str = "json") -> str:
    """``result`` (a derivation or a check) written in ``fmt``, ending with one newline: what
    the command line prints and what the API answers."""
    return getattr(result, _WRITERS[fmt])().rstrip("\n") + "\n"


def read_as_lines(values) -> list[str]:
    """For a one-variable check: a ``read as: ...`` line for each formula (the derivative and
    ``function=``) that was read other than as typed, spaces aside."""
    from chainrule.derivation.reading import read_formula

    v = values_of("check", values)
    if is_matrix_check(v):
        return []
    lines = []
    for key in ("formula", "function"):
        text = v.get(key)
        if isinstance(text, str) and text.strip():
            read = read_formula(text)
            if "".join(read.split()) != "".join(text.split()):
                lines.append(f"read as: {read}")
    return lines


# --- answers kept on disk ------------------------------------------------------------------------


def _request(panel: str, values, fmt: str) -> dict:
    """The canonical query: every option of the panel by name, and the format."""
    return {"values": values_of(panel, values), "format": fmt}


def cached(panel: str, values, fmt: str) -> dict | None:
    """The answer kept for this query (see :func:`answer`), or None; loads neither SymPy nor
    the engine."""
    from chainrule import _cache

    return _cache.load(panel, _request(panel, values, fmt))


def answer(panel: str, values, fmt: str) -> dict:
    """Run the ``panel`` (``"derive"`` or ``"check"``) on ``values`` and keep the answer:
    ``text`` (what :func:`show` writes in ``fmt``), ``paragraph`` (a check's explanation, else
    None) and ``correct`` (a check's verdict, else True)."""
    from chainrule import _cache

    result = (derive if panel == "derive" else check)(values)
    out = {"text": show(result, fmt) if panel == "derive" or fmt == "json" else None,
           "paragraph": getattr(result, "paragraph", None),
           "correct": bool(getattr(result, "correct", True)),
           "read_as": read_as_lines(values) if panel == "check" else []}
    _cache.store(panel, _request(panel, values, fmt), out)
    return out


# --- the time limit ------------------------------------------------------------------------------


class TimeUp(BaseException):
    """Raised by the alarm; a BaseException so that no ``except Exception`` inside SymPy eats it."""


def load_engine() -> None:
    """Import the derivation engine and the checks (and the parts of SymPy they load on first
    use) before a :func:`time_limit` is armed: the limit is for the work on the user's formula,
    and an import stopped halfway would leave the engine unusable for the rest of the
    process."""
    import chainrule.derivation.api
    import chainrule.derivation.attention
    import chainrule.derivation.conv
    import chainrule.derivation.layers
    import chainrule.derivation.network
    import chainrule.derivation.normalization
    import chainrule.derivation.pooling
    import chainrule.derivation.recurrent
    import chainrule.derivation.vector
    import chainrule.gradient_check.matrix
    import chainrule.gradient_check.symbolic  # noqa: F401


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise :class:`TimeUp` in the main thread after ``seconds`` (no limit where the platform
    has no interval timer, off the main thread, or for ``seconds`` of 0 or None)."""
    usable = (
        seconds
        and seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def alarm(signum, frame):
        raise TimeUp

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
