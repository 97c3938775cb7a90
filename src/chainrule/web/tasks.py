"""What a worker process does for the server: derive, check, and draw the page's pieces.

Each task takes the validated query (the panel's parameters, named as in
:mod:`chainrule._panels`) and returns JSON-able values. The answers come from the same library
calls that ``chainrule derive`` and ``chainrule check`` make (:func:`chainrule._panels.derive`
and :func:`chainrule._panels.check`), written by the same :func:`chainrule._panels.show`, so
the API answers exactly what the command line prints with ``--format json``. Runs inside
:mod:`chainrule.web.worker`'s processes only (SymPy is imported here).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import sympy

from chainrule import _panels
from chainrule._display import formula_check_html
from chainrule._svg import line_chart
from chainrule.derivation import library
from chainrule.derivation.domain import numeric_function, why_undefined
from chainrule.derivation.plot import undefined_spans
from chainrule.derivation.printing import to_text
from chainrule.derivation.reading import read_as_html
from chainrule.derivation.symbols import SYMBOLS

__all__ = ["TASKS"]

#: Values that stand in for the other symbols of a plotted function (the target, the learning
#: rate...); library defaults for the slopes.
_PLOT_VALUES = {"y": 1, "t": 1, "x": 1, "w": 1, "eta": sympy.Rational(1, 10), "m": 1,
                "delta": 1, "alpha": sympy.Rational(1, 100)}
_GRID_POINTS = 401
_LABEL_CHARS = 70


def derive_json(params: dict) -> str:
    """What ``chainrule derive ... --format json`` prints."""
    return _panels.show(_panels.derive(params), "json")


def check_json(params: dict) -> str:
    """What ``chainrule check ... --format json`` prints."""
    return _panels.show(_panels.check(params), "json")


def _short(text: str) -> str:
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def _samples(f, df, lo: float, hi: float):
    grid = np.linspace(lo, hi, _GRID_POINTS)
    return grid, f(grid), df(grid)


def _activation_name(params: dict) -> str:
    return library.canonical_activation(params.get("activation") or params["expression"])


def plot_svg(d, params: dict) -> tuple[str | None, str]:
    """The function and its derivative as an SVG chart, and a caption (or why there is none)."""
    var, function = d.var, d.function
    if d.kind == "composition" and var.name == "w":  # the loss of z = w·x, as a function of w
        function = function.subs(SYMBOLS["z"], var * SYMBOLS["x"])
    others = sorted((s for s in function.free_symbols | d.result_input_form.free_symbols
                     if s != var), key=lambda s: s.name)
    values = {s: _PLOT_VALUES[s.name] for s in others if s.name in _PLOT_VALUES}
    if d.kind == "activation":
        values.update(library.DEFAULT_NUMERIC.get(_activation_name(params), {}))
    if any(s not in values for s in others):
        return None, "No plot: the formula has symbols without a value to plot with."
    f = numeric_function(function, var, values)
    df = numeric_function(d.result_input_form, var, values)
    grid, fy, dfy = _samples(f, df, -5.0, 5.0)
    finite = np.isfinite(fy) & np.isfinite(dfy)
    if not finite.any():
        return None, "No plot: the function has no finite value on [-5, 5]."
    if finite.mean() < 0.3:  # e.g. a loss of yhat in (0, 1): zoom in on where it is defined
        step = grid[1] - grid[0]
        lo, hi = grid[finite].min() - 0.95 * step, grid[finite].max() + 0.95 * step
        grid, fy, dfy = _samples(f, df, lo, hi)
    dfy = np.where(np.isfinite(fy), dfy, np.nan)  # no slope where the function has no value
    name = str(var)
    series = [(_short(f"f({name}) = {to_text(function)}"), grid, fy),
              (_short(f"f'({name}) = {to_text(d.result_input_form)}"), grid, dfy)]
    caption = f"The function (solid) and its derivative (dashed) against {name}"
    if values:
        caption += ", with " + ", ".join(f"{s} = {to_text(v)}" for s, v in values.items())
    undefined = _undefined(function, var, values, grid, fy)
    if undefined:
        caption += "; shaded where the function has no value"
    svg = line_chart(series, x_label=name, dashed=(1,), title=caption, undefined=undefined)
    return svg, caption + "."


def _undefined(function, var, values, grid, fy) -> list[tuple[float, float, str]]:
    """The spans of ``grid`` where the function has no finite value, each with its reason;
    single points (a pole) are left to the broken line."""
    spans = []
    for lo, hi in undefined_spans(grid, np.isfinite(fy)):
        inside = grid[(grid >= lo) & (grid <= hi)]
        if inside.size < 3:
            continue
        spans.append((lo, hi, why_undefined(function, var, inside, values)))
    return spans


def derive_page(params: dict) -> dict:
    """The derive panel: the JSON, the steps as HTML with MathML, the plot."""
    d = _panels.derive(params)
    if not hasattr(d, "var"):  # a vector or matrix derivation
        # The check panel starts from the same network or layer, in matrix form.
        names = ("loss", "network", "activation", "layer", "half")
        check = ({k: params[k] for k in names if params.get(k)}
                 if params.get("network") or params.get("layer") else {})
        return {"json": d.to_json(), "html": d.to_html(), "plot": None,
                "caption": "No plot: the derivation is of vectors or matrices.",
                "title": d.title, "check": check}
    svg, caption = plot_svg(d, params)
    # The check panel starts from the same function, so only the hand derivation is to type.
    check = {"wrt": str(d.var)}
    if d.kind == "function":
        check["function"] = params.get("expression")
    elif d.kind == "activation":
        check = {"activation": _activation_name(params)}
    elif d.kind == "loss":
        check["loss"] = library.canonical_loss(params.get("loss") or params["expression"])
    elif d.kind == "composition" and str(d.var) == "z":
        check = {"loss": library.canonical_loss(params["loss"]),
                 "activation": _activation_name(params)}
    return {"json": d.to_json(), "html": d.to_html(), "plot": svg, "caption": caption,
            "title": d.title, "check": check}


def check_page(params: dict) -> dict:
    """The check panel: the verdict with its diagnosis as HTML, drawn from the JSON answer
    (a one-variable check or a matrix one alike)."""
    text = check_json(params)
    data = json.loads(text)
    result = SimpleNamespace(**{**data, "findings": [SimpleNamespace(**f)
                                                     for f in data["findings"]]})
    return {"json": text, "html": read_as(params) + formula_check_html(result, style=False),
            "correct": result.correct}


def read_as(params: dict) -> str:
    """The "read as" lines of the formulas a panel's ``params`` hold (none for a name such as
    ``sigmoid``, nor for a matrix formula, read by its own grammar), as HTML with MathML."""
    if _panels.is_matrix_check(params):
        return ""
    names = library.activation_names() + library.loss_names() + ("softmax", "log_softmax")
    lines = []
    for key in ("expression", "function", "formula"):
        text = params.get(key)
        if isinstance(text, str) and text.strip() and text.strip().lower() not in names:
            lines.append(read_as_html(text))
    return "".join(lines)


def warm_up() -> None:
    """Run each task once on a small input, so that SymPy's first-use costs (imports, caches,
    code generation) fall before a worker takes requests, not into a request's budget."""
    derive_page({"expression": "log(x)*sigmoid(x)"})
    derive_page({"activation": "tanh", "loss": "bce"})
    check_page({"formula": "yhat - y", "loss": "mse", "half": True})


#: The tasks a worker runs, by name.
TASKS = {"derive_json": derive_json, "check_json": check_json, "derive_page": derive_page,
         "check_page": check_page, "read_as": read_as}
