r"""Functions and their derivatives on one figure (matplotlib, Agg backend, imported lazily).

``plot_functions(["sigmoid", "tanh"], "act.png")`` draws each function as a solid line and its
derivative, as the engine derives it, as a dashed line of the same colour; the legend, below
the axes where it hides no curve, gives both formulas, as textbook figures of activations do;
where a function or its derivative is undefined (``log(x)`` for x ≤ 0) the figure is shaded.
Formulas work too (``"x*sigmoid(x)"``). Symbolic slopes take the library's defaults (leaky ReLU
:math:`\alpha = 0.01`, ELU :math:`\alpha = 1`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import sympy

from chainrule._figures import save_png
from chainrule.derivation import library
from chainrule.derivation.api import derive
from chainrule.derivation.domain import numeric_function, why_undefined
from chainrule.derivation.printing import to_text
from chainrule.derivation.simplify import textbook_form
from chainrule.derivation.symbols import yhat

__all__ = ["plot_functions", "undefined_spans"]

MAX_CURVES = 8


def _curve(spec: str):
    """(label of f, label of f', f, f', variable) for an activation name or a formula."""
    d = derive(spec)
    if d.kind not in ("activation", "function"):
        raise ValueError(f"The function {spec!r} is a loss of two variables; plot activations "
                         "or formulas in x.")
    var = d.var
    if d.kind == "activation":
        name = library.canonical_activation(spec)
        params = library.DEFAULT_NUMERIC.get(name, {})
        definition = library.activation_definition(name, var)
        shown = d.result if d.result_output_form is None else d.result_output_form.subs(
            yhat, d.function)
        if shown.has(sympy.Piecewise, sympy.ITE) or d.result.has(sympy.Piecewise):
            shown = d.result  # substituting relu(x) into "yhat > 0" leaves raw SymPy conditions
        f_label = f"{name}({var}) = {to_text(definition)}"
        if to_text(definition) == f"{name}({var})":
            f_label = f"{name}({var})"
        df_label = f"{name}'({var}) = {to_text(textbook_form(shown))}"
    else:
        params = {}
        f_label = f"f({var}) = {to_text(d.function)}"
        df_label = f"f'({var}) = {to_text(textbook_form(d.result))}"
    f = numeric_function(d.function, var, params)
    df = numeric_function(d.result, var, params)
    return f_label, df_label, f, df, str(var), (d.function, var, params)


def undefined_spans(grid: np.ndarray, defined: np.ndarray) -> list[tuple[float, float]]:
    """The intervals of ``grid`` where ``defined`` is False, each widened by half a grid step
    on both sides (where the grid has no point, the function may be undefined too)."""
    spans, step = [], (grid[1] - grid[0]) / 2 if len(grid) > 1 else 0.0
    edges = np.flatnonzero(np.diff(np.concatenate(([0], (~defined).astype(int), [0]))))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        spans.append((max(grid[0], grid[start] - step), min(grid[-1], grid[stop - 1] + step)))
    return spans


def _shade_undefined(ax, grid: np.ndarray, defined: np.ndarray, color, name: str,
                     function) -> None:
    """Shade, in the curve's colour, where a function has no finite value (log x for x ≤ 0),
    and write the reason in the band (``x ≤ 0: log undefined``)."""
    for i, (a, b) in enumerate(undefined_spans(grid, defined)):
        ax.axvspan(a, b, color=color, alpha=0.12, lw=0, zorder=0,
                   label=f"{name} undefined" if i == 0 else None)
        inside = grid[(grid >= a) & (grid <= b)]
        if inside.size >= 3:
            expr, var, params = function
            ax.text((a + b) / 2, 0.97, why_undefined(expr, var, inside, params),
                    transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=8,
                    color="0.3", rotation=0 if (b - a) > 0.25 * (grid[-1] - grid[0]) else 90,
                    gid="undefined-reason")


def _clip_poles(ax, values: list[np.ndarray]) -> None:
    """Near a pole (1/x at 0) keep the axis on the bulk of the values, not on the spike."""
    finite = np.concatenate([v[np.isfinite(v)] for v in values] or [np.zeros(0)])
    if finite.size < 10:
        return
    lo, hi = np.percentile(finite, [1, 99])
    pad = max(hi - lo, 1e-9) * 0.5
    if finite.min() < lo - 4 * pad or finite.max() > hi + 4 * pad:
        ax.set_ylim(lo - pad, hi + pad)


def plot_functions(
    specs: list[str],
    path: str | os.PathLike,
    *,
    x_range: tuple[float, float] = (-5.0, 5.0),
    points: int = 801,
    derivative: bool = True,
    dpi: int = 100,
) -> Path:
    """Draw each function (and its derivative) on one figure and save it as PNG to ``path``.

    The file is written atomically (a temporary file, then a rename), so a failed run never
    leaves a half-written image.
    """
    if not specs:
        raise ValueError("Nothing to plot: name at least one activation or formula.")
    if len(specs) > MAX_CURVES:
        raise ValueError(f"At most {MAX_CURVES} functions fit in one figure; got {len(specs)}.")
    lo, hi = (float(v) for v in x_range)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"The range must be two finite numbers, low < high; got {x_range}.")
    from chainrule._io import check_output_path

    path = check_output_path(path, "the image")
    if path.suffix.lower() != ".png":
        raise ValueError(
            f"The figure is written as PNG; give a .png file name, got {str(path)!r}."
        )
    curves = [_curve(spec) for spec in specs]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(lo, hi, points)
    fig, ax = plt.subplots(figsize=(8, 5))
    try:
        shown = []
        for i, (f_label, df_label, f, df, _, function) in enumerate(curves):
            color = f"C{i}"
            with np.errstate(all="ignore"):
                fy, dfy = f(grid), np.asarray(df(grid), dtype=float)
            dfy = np.where(np.isfinite(fy), dfy, np.nan)  # no slope where f is undefined
            ax.plot(grid, fy, color=color, lw=2, label=f_label)
            if derivative:
                ax.plot(grid, dfy, color=color, lw=1.5, ls="--", label=df_label)
            name = f_label.split(" = ")[-1] if f_label.startswith("f(") else f_label.split(" = ")[0]
            _shade_undefined(ax, grid, np.isfinite(fy), color if len(curves) > 1 else "0.5", name,
                             function)
            shown += [fy, dfy] if derivative else [fy]
        _clip_poles(ax, shown)
        ax.axhline(0, color="0.6", lw=0.8)
        ax.axvline(0, color="0.6", lw=0.8)
        ax.grid(alpha=0.3)
        ax.set_xlabel(curves[0][4])
        names = ", ".join(specs)
        ax.set_title(f"{names} and {'their derivatives' if len(specs) > 1 else 'its derivative'}"
                     if derivative else names)
        # Below the axes, never over a curve: the labels are formulas, often long.
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12),
                  ncol=1 if len(curves) < 3 else 2, frameon=False)
        fig.tight_layout()
        save_png(fig, path, dpi)
    finally:
        plt.close(fig)
    return path
