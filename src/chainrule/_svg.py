"""Line charts as inline SVG text, drawn from sampled values with NumPy only.

Used where a figure has to travel inside HTML (a notebook cell, the web page) without
matplotlib or any file: :func:`line_chart` takes a few named series and returns one ``<svg>``
element with axes, ticks, a zero line, a legend below the plotting area and the
spans where a function has no value shaded with the reason. Points that are not finite, or lie far
outside the shown range (near a pole), break the line instead of drawing a spike.
"""

from __future__ import annotations

from html import escape

import numpy as np

__all__ = ["PALETTE", "line_chart", "nice_ticks"]

#: Line colours (colour-blind safe, Okabe-Ito), used in order.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")

_WIDTH, _HEIGHT = 560, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 14, 14, 34
_LEGEND_ROW = 16


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """About ``count`` round tick values (steps of 1, 2 or 5 times a power of ten) in [lo, hi]."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return [float(lo)] if np.isfinite(lo) else []
    raw = (hi - lo) / max(count - 1, 1)
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = np.ceil(lo / step) * step
    ticks = np.arange(first, hi + step * 1e-9, step)
    return [0.0 if abs(t) < step * 1e-9 else float(t) for t in ticks]


def _tick_label(v: float) -> str:
    return f"{v:.4g}".replace("-", "\u2212")


def _y_range(values: list[np.ndarray]) -> tuple[float, float]:
    """The shown y range: all finite values, or the 2nd to 98th percentile when a pole would
    flatten everything else."""
    finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.array([])
    if finite.size == 0:
        return -1.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    q_lo, q_hi = np.percentile(finite, [2, 98])
    spread = q_hi - q_lo
    if spread > 0 and (hi - lo) > 8 * spread:
        lo, hi = q_lo - 0.5 * spread, q_hi + 0.5 * spread
    if hi - lo < 1e-12:
        lo, hi = lo - 1.0, hi + 1.0
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad


def _paths(x: np.ndarray, y: np.ndarray, sx, sy, lo: float, hi: float) -> list[str]:
    """SVG path data, one piece per run of finite points inside [lo, hi] (with a margin)."""
    margin = hi - lo
    ok = np.isfinite(x) & np.isfinite(y) & (y > lo - margin) & (y < hi + margin)
    pieces, current = [], []
    for xi, yi, good in zip(x, y, ok, strict=True):
        if good:
            current.append(f"{sx(xi):.1f},{sy(min(max(yi, lo - margin), hi + margin)):.1f}")
        elif current:
            pieces.append(current)
            current = []
    if current:
        pieces.append(current)
    return ["M" + " L".join(piece) for piece in pieces if len(piece) > 1]


class _Frame:
    """The plotting area of a chart: the shown ranges and the map from values to pixels."""

    def __init__(self, prepared, width: int, height: int):
        xs = [x[np.isfinite(x)] for _, x, _ in prepared]
        xs = [x for x in xs if x.size]
        self.x_lo = min((float(x.min()) for x in xs), default=0.0)
        self.x_hi = max((float(x.max()) for x in xs), default=1.0)
        if self.x_hi <= self.x_lo:
            self.x_lo, self.x_hi = self.x_lo - 0.5, self.x_hi + 0.5
        self.y_lo, self.y_hi = _y_range([y for _, _, y in prepared])
        self.width, self.height = width, height
        self.plot_w, self.plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM

    def sx(self, v):
        return _LEFT + (v - self.x_lo) / (self.x_hi - self.x_lo) * self.plot_w

    def sy(self, v):
        return _TOP + (self.y_hi - v) / (self.y_hi - self.y_lo) * self.plot_h


def _grid(f: _Frame, x_label: str, y_label: str) -> list[str]:
    """The background, the ticks with their grid lines (darker at zero) and the axis labels."""
    out = [f'<rect class="plot-area" x="{_LEFT}" y="{_TOP}" width="{f.plot_w}" '
           f'height="{f.plot_h}" fill="#fff" stroke="#bbb"/>']
    for t in nice_ticks(f.y_lo, f.y_hi):
        py = f.sy(t)
        out.append(f'<line x1="{_LEFT}" x2="{_LEFT + f.plot_w}" y1="{py:.1f}" y2="{py:.1f}" '
                   f'stroke="{"#888" if t == 0 else "#eee"}"/>')
        out.append(f'<text x="{_LEFT - 4}" y="{py + 4:.1f}" text-anchor="end">'
                   f"{_tick_label(t)}</text>")
    for t in nice_ticks(f.x_lo, f.x_hi, 8):
        px = f.sx(t)
        out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{_TOP}" y2="{_TOP + f.plot_h}" '
                   f'stroke="{"#888" if t == 0 else "#eee"}"/>')
        out.append(f'<text x="{px:.1f}" y="{_TOP + f.plot_h + 14}" text-anchor="middle">'
                   f"{_tick_label(t)}</text>")
    if x_label:
        out.append(f'<text x="{_LEFT + f.plot_w / 2:.1f}" y="{f.height - 4}" '
                   f'text-anchor="middle">{escape(x_label)}</text>')
    if y_label:
        middle = _TOP + f.plot_h / 2
        out.append(f'<text x="12" y="{middle:.1f}" text-anchor="middle" '
                   f'transform="rotate(-90 12 {middle:.1f})">{escape(y_label)}</text>')
    return out


def _lines(prepared, f: _Frame, dashed: tuple[int, ...], clip: str) -> list[str]:
    """Each series as paths clipped to the plotting area."""
    out = []
    for i, (label, x, y) in enumerate(prepared):
        colour = PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="6 4"' if i in dashed else ""
        for d in _paths(x, y, f.sx, f.sy, f.y_lo, f.y_hi):
            out.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"{dash} '
                       f'clip-path="url(#{clip})"><title>{escape(label)}</title></path>')
    return out


def _legend(prepared, f: _Frame, dashed: tuple[int, ...]) -> list[str]:
    """One entry per series, in a box below the plotting area and its axis labels, where it
    hides no curve."""
    top = f.height + 2
    out = [f'<g class="legend"><rect class="legend-box" x="{_LEFT}" y="{top}" '
           f'width="{f.plot_w}" height="{_LEGEND_ROW * len(prepared) + 4}" fill="none"/>']
    for i, (label, _, _) in enumerate(prepared):
        colour = PALETTE[i % len(PALETTE)]
        ly = top + _LEGEND_ROW * (i + 1) - 2
        dash = ' stroke-dasharray="6 4"' if i in dashed else ""
        out.append(f'<line x1="{_LEFT + 4}" x2="{_LEFT + 28}" y1="{ly - 4}" y2="{ly - 4}" '
                   f'stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{_LEFT + 34}" y="{ly}">{escape(label)}</text>')
    out.append("</g>")
    return out


def _shaded(regions, f: _Frame) -> list[str]:
    """Each ``(low, high, reason)`` as a grey band over the plotting area, labelled with its
    reason: where the function has no value, nothing is drawn and the band says why."""
    out = []
    for lo, hi, reason in regions:
        x0 = max(f.sx(lo), _LEFT)
        x1 = min(f.sx(hi), _LEFT + f.plot_w)
        if x1 - x0 < 0.5:
            continue
        middle = (x0 + x1) / 2
        if len(reason) * 6 < x1 - x0:  # about 6 pixels a character at font-size 11
            label = (f'<text class="undefined-reason" x="{middle:.1f}" y="{_TOP + 14}" '
                     f'text-anchor="middle" fill="#555">{escape(reason)}</text>')
        else:  # a narrow band: the reason runs down it
            label = (f'<text class="undefined-reason" x="{middle + 4:.1f}" y="{_TOP + 6}" '
                     f'fill="#555" transform="rotate(90 {middle + 4:.1f} {_TOP + 6})">'
                     f"{escape(reason)}</text>")
        out.append(f'<g class="undefined"><title>undefined: {escape(reason)}</title>'
                   f'<rect class="undefined-region" x="{x0:.1f}" y="{_TOP}" '
                   f'width="{x1 - x0:.1f}" height="{f.plot_h}" fill="#888" '
                   f'fill-opacity="0.15"/>{label}</g>')
    return out


def line_chart(
    series: list[tuple[str, np.ndarray, np.ndarray]],
    *,
    x_label: str = "",
    y_label: str = "",
    title: str = "",
    dashed: tuple[int, ...] = (),
    width: int = _WIDTH,
    height: int = _HEIGHT,
    undefined: list[tuple[float, float, str]] = (),
) -> str:
    """One ``<svg>`` element plotting each ``(label, x, y)`` of ``series`` as a line.

    ``dashed`` lists the indices of series drawn dashed (a derivative beside its function,
    a validation curve beside the training one). ``undefined`` lists ``(low, high, reason)``
    spans of x where the function has no value: shaded, with the reason written in them. The
    legend sits below the plotting area (``height`` is the chart's without it); labels are
    escaped; the result is valid XML.
    """
    prepared = [(label, np.asarray(x, dtype=float), np.asarray(y, dtype=float))
                for label, x, y in series]
    frame = _Frame(prepared, width, height)
    total = height + _LEGEND_ROW * len(prepared) + 8
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
           f'height="{total}" viewBox="0 0 {width} {total}" role="img" '
           f'aria-label="{escape(title or ", ".join(s[0] for s in prepared))}" '
           'font-family="sans-serif" font-size="11">']
    if title:
        out.append(f"<title>{escape(title)}</title>")
    # Charts of one size have identical clip rectangles, so a repeated id is harmless.
    clip = f"chainrule-plot-{width}x{height}"
    out.append(f'<defs><clipPath id="{clip}"><rect x="{_LEFT}" y="{_TOP}" '
               f'width="{frame.plot_w}" height="{frame.plot_h}"/></clipPath></defs>')
    out += _grid(frame, x_label, y_label)
    out += _shaded(undefined, frame)
    out += _lines(prepared, frame, dashed, clip)
    out += _legend(prepared, frame, dashed)
    out.append("</svg>")
    return "".join(out)
