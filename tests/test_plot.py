"""`chainrule plot`: a PNG with each function and its derivative."""

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.derivation.plot import plot_functions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    return width, height, len(data)


def test_cli_writes_a_png(tmp_path, capsys):
    out = tmp_path / "act.png"
    assert main(["plot", "sigmoid", "tanh", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    width, height, size = _png_size(out)
    assert (width, height) == (800, 500)
    assert size > 10_000  # curves and a legend, not an empty canvas


def test_formulas_and_range(tmp_path):
    out = plot_functions(["x*sigmoid(x)", "relu", "leaky_relu"], tmp_path / "f.png",
                         x_range=(-3, 3), derivative=False)
    assert _png_size(out)[:2] == (800, 500)


def test_bad_requests_exit_1_or_2(tmp_path, capsys):
    assert main(["plot", "sigmoid", "--out", str(tmp_path / "a.pdf")]) == 1
    assert ".png" in capsys.readouterr().err
    assert main(["plot", "bce", "--out", str(tmp_path / "a.png")]) == 1
    assert "loss" in capsys.readouterr().err
    # a formula that cannot be read and a range that is none are bad usage
    assert main(["plot", "x +", "--out", str(tmp_path / "a.png")]) == 2
    assert main(["plot", "tanh", "--range", "2", "1", "--out", str(tmp_path / "a.png")]) == 2
    assert not (tmp_path / "a.png").exists()


def test_too_many_curves():
    with pytest.raises(ValueError, match="At most 8"):
        plot_functions(["sigmoid"] * 9, "x.png")


@pytest.mark.parametrize("name, label", [
    ("relu", "relu'(x) = {1 for x > 0; 0 otherwise}"),
    ("leaky_relu", "leaky_relu'(x) = {1 for x > 0; α otherwise}"),
    ("sigmoid", "sigmoid'(x) = σ(x)(1 - σ(x))"),
])
def test_derivative_labels_read_as_the_text_output(name, label):
    from chainrule.derivation.plot import _curve

    _, df_label, *_ = _curve(name)
    assert df_label == label
    assert "ITE" not in df_label and "Piecewise" not in df_label and "Max" not in df_label


# --- each function solid, its derivative dashed in the same colour --------------------------------


def test_plot_draws_each_function_and_its_derivative(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    seen = {}
    original = Figure.savefig

    def capture(self, *args, **kwargs):
        seen["lines"] = [(ln.get_xdata(), ln.get_ydata(), ln.get_linestyle(), ln.get_color())
                         for ln in self.axes[0].get_lines()]
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    specs = ["sigmoid", "tanh", "x*sigmoid(x)", "softplus"]
    plot_functions(specs, tmp_path / "a.png")
    curves = [ln for ln in seen["lines"] if len(ln[0]) > 2]  # not the axis lines
    assert len(curves) == 2 * len(specs)
    truth = [lambda v: 1 / (1 + np.exp(-v)), np.tanh, lambda v: v / (1 + np.exp(-v)),
             lambda v: np.log1p(np.exp(v))]
    for i, f in enumerate(truth):
        (gx, fy, f_style, f_color), (_, dfy, df_style, df_color) = curves[2 * i:2 * i + 2]
        assert f_style == "-" and df_style == "--" and f_color == df_color
        np.testing.assert_allclose(fy, f(gx), rtol=1e-9, atol=1e-12)
        # the dashed curve is the derivative of the solid one (central differences inside)
        slope = (fy[2:] - fy[:-2]) / (gx[2:] - gx[:-2])
        np.testing.assert_allclose(dfy[1:-1], slope, atol=1e-3)


# --- where a function is undefined, and where the legend goes -------------------------------------


def test_undefined_spans_cover_the_points_without_a_value():
    from chainrule.derivation.plot import undefined_spans

    grid = np.linspace(-2.0, 2.0, 9)  # step 0.5
    defined = grid > 0.2  # undefined at -2 .. 0, defined at 0.5 .. 2
    # widened by half a step (0.25) on the side where the next point has a value
    assert undefined_spans(grid, defined) == [(-2.0, 0.25)]
    assert undefined_spans(grid, np.ones(9, dtype=bool)) == []
    holes = np.ones(9, dtype=bool)
    holes[[0, 4, 8]] = False  # the ends and the middle (a pole at 0)
    assert undefined_spans(grid, holes) == [(-2.0, -1.75), (-0.25, 0.25), (1.75, 2.0)]


def test_the_plot_shades_where_log_is_undefined_and_keeps_the_legend_off_the_curves(
        tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    seen = {}
    original = Figure.savefig

    def capture(self, *args, **kwargs):
        ax = self.axes[0]
        renderer = self.canvas.get_renderer()
        seen["legend"] = ax.get_legend().get_window_extent(renderer)
        seen["axes"] = ax.get_window_extent(renderer)
        seen["spans"] = [p.get_x() for p in ax.patches] + [p.get_x() + p.get_width()
                                                           for p in ax.patches]
        seen["slope"] = [ln.get_ydata() for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    plot_functions(["log(x)"], tmp_path / "log.png", x_range=(-2.0, 2.0), points=401)
    assert seen["legend"].y1 <= seen["axes"].y0  # the legend lies below the axes
    assert min(seen["spans"]) == -2.0 and 0.0 <= max(seen["spans"]) <= 0.01  # x ≤ 0 shaded
    [slope] = seen["slope"]
    assert np.isnan(slope[:200]).all()  # 1/x is not drawn where log x has no value


# --- the page's SVG plot: undefined spans shaded with their reason, the legend off the data ------

_SVG = "{http://www.w3.org/2000/svg}"


def _svg_points(path) -> np.ndarray:
    import re

    return np.array([[float(v) for v in p.split(",")]
                     for p in re.findall(r"-?[\d.]+,-?[\d.]+", path.get("d"))])


def _box(element) -> tuple[float, float, float, float]:
    x, y = float(element.get("x")), float(element.get("y"))
    return x, y, x + float(element.get("width")), y + float(element.get("height"))


def _page_plot(params):
    import xml.etree.ElementTree as ET

    from chainrule.web.tasks import derive_page

    return ET.fromstring(derive_page(params)["plot"])


def test_the_page_plot_of_tanh_and_bce_shades_z_below_0_with_its_reason():
    root = _page_plot({"activation": "tanh", "loss": "bce"})
    area = _box(root.find(f".//{_SVG}rect[@class='plot-area']"))
    [band] = root.findall(f".//{_SVG}g[@class='undefined']")
    region = _box(band.find(f"{_SVG}rect"))
    reason = band.find(f"{_SVG}text").text
    assert reason == "tanh(z) ≤ 0: log undefined"
    # z from -5 to 0: the left edge of the plot to about the middle
    assert region[0] == area[0] and abs(region[2] - (area[0] + area[2]) / 2) < 3
    paths = root.findall(f".//{_SVG}path")
    dashed = [p for p in paths if p.get("stroke-dasharray")]
    assert dashed and paths
    for path in paths:  # neither the function nor its derivative is drawn for z < 0
        assert (_svg_points(path)[:, 0] >= region[2] - 1e-6).all()


def test_the_page_plot_legend_lies_outside_the_plotting_area():
    for params in ({"activation": "tanh", "loss": "bce"}, {"expression": "x*sigmoid(x)"},
                   {"expression": "log(x)"}):
        root = _page_plot(params)
        area = _box(root.find(f".//{_SVG}rect[@class='plot-area']"))
        legend = _box(root.find(f".//{_SVG}rect[@class='legend-box']"))
        assert legend[1] >= area[3]  # below the plotting area, and its tick labels too
        assert legend[3] <= float(root.get("height"))
        for text in root.find(f".//{_SVG}g[@class='legend']").iter(f"{_SVG}text"):
            assert float(text.get("y")) > area[3]


def test_a_function_defined_everywhere_has_no_shaded_span():
    root = _page_plot({"expression": "x*sigmoid(x)"})
    assert root.findall(f".//{_SVG}g[@class='undefined']") == []


def test_a_pole_is_a_broken_line_not_a_shaded_band():
    root = _page_plot({"expression": "1/x"})
    assert root.findall(f".//{_SVG}g[@class='undefined']") == []


def test_the_figure_writes_the_reason_in_the_shaded_band(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    seen = {}
    original = Figure.savefig

    def capture(self, *args, **kwargs):
        ax = self.axes[0]
        renderer = self.canvas.get_renderer()
        seen["reasons"] = [t.get_text() for t in ax.texts]
        seen["legend"] = ax.get_legend().get_window_extent(renderer)
        seen["axes"] = ax.get_window_extent(renderer)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    plot_functions(["log(x)", "sqrt(x)", "tanh"], tmp_path / "f.png", x_range=(-2.0, 2.0),
                   points=401)
    assert "x ≤ 0: log undefined" in seen["reasons"]
    assert "x < 0: no real root" in seen["reasons"]
    legend, axes = seen["legend"], seen["axes"]
    assert legend.y1 <= axes.y0 or legend.x0 >= axes.x1  # outside the axes: off every curve
