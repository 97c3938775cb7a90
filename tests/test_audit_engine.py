"""The derivation engine and the symbolic checker: the gaps the other test files leave.

- The documented list of activations is the list the engine is tested on (no name lost).
- The engine's own guard: a result that ``sympy.diff`` disagrees with is never returned.
- The softmax + cross-entropy steps are notes the step-tree check cannot verify: p - t is
  checked here against finite differences of the softmax and the loss written in NumPy.
- Malicious or runaway formulas are refused quickly with ``FormulaError`` at every entry point
  (derive, check_formula, activation_from_formula, plot, the CLI), and nothing runs.
- The figure of ``chainrule plot`` holds each function and, dashed, its derivative.
- A numeric diagnosis is stated only when its relation holds at every element.
"""

from contextlib import contextmanager

import numpy as np
import pytest
import sympy

import chainrule
from chainrule import nn
from chainrule._cli import TimeUp, time_limit
from chainrule.cli import main
from chainrule.derivation import activation_from_formula, api, derive
from chainrule.derivation.library import activation_names, canonical_activation
from chainrule.derivation.parser import MAX_NUMERIC_EXPONENT, FormulaError, parse_expression
from chainrule.derivation.symbols import x, yhat
from chainrule.gradient_check import CATALOGUE, check_formula, diagnose, gradcheck
from test_derivation_oracle import check_tree, elementary, same
from test_gradcheck_diagnosis import CASES


@contextmanager
def deadline(seconds):
    """Fail the test when the block runs longer than ``seconds`` (the CLI's own alarm timer)."""
    try:
        with time_limit(seconds):
            yield
    except TimeUp:
        pytest.fail(f"took more than {seconds} s")


# --- the activations the engine documents -------------------------------------------------------

DOCUMENTED_ACTIVATIONS = ["identity", "sigmoid", "tanh", "softsign", "relu", "leaky_relu",
                          "elu", "selu", "softplus", "gelu", "silu", "mish", "gaussian",
                          "binary_step"]


def test_the_documented_list_is_the_tested_list():
    assert [canonical_activation(n) for n in DOCUMENTED_ACTIVATIONS] == DOCUMENTED_ACTIVATIONS
    assert set(DOCUMENTED_ACTIVATIONS) <= set(activation_names())
    # The backward comparison runs over the library's elementwise activations: every documented
    # name the library implements is in it (gaussian and the binary step are engine-only).
    library = {n for n in nn.ACTIVATIONS if nn.ACTIVATIONS[n].elementwise}
    assert set(DOCUMENTED_ACTIVATIONS) - library == {"gaussian", "binary_step"}


@pytest.mark.parametrize("name", DOCUMENTED_ACTIVATIONS)
def test_result_equals_sympy_diff_of_the_definition(name):
    # The oracle is SymPy's diff of the printed function, not the engine's own check.
    d = derive(name)
    truth = sympy.diff(elementary(d.function), x)
    assert same(d.result, truth), (name, d.result, truth)


def test_python_api_is_exported_at_the_top_level():
    d = chainrule.derive(activation="sigmoid", loss="bce")
    assert d.result == yhat - sympy.Symbol("y", real=True)


# --- the engine never returns what SymPy disagrees with ---------------------------------


@pytest.fixture
def fresh_cache():
    api._derive_cached.cache_clear()
    yield
    api._derive_cached.cache_clear()


def test_a_wrong_simplification_of_a_formula_is_refused(monkeypatch, fresh_cache):
    monkeypatch.setattr(api, "tidy", lambda e, *args: e + 1)
    with pytest.raises(RuntimeError, match=r"disagrees with sympy\.diff"):
        derive("x**3 + 7*x")


def test_a_wrong_simplification_of_an_activation_is_refused(monkeypatch, fresh_cache):
    monkeypatch.setattr(api, "tidy", lambda e, *args: 2 * e)
    with pytest.raises(RuntimeError, match=r"disagrees with sympy\.diff"):
        derive("softsign")


def test_a_wrong_composition_is_refused(monkeypatch, fresh_cache):
    from chainrule.derivation import compose

    monkeypatch.setattr(compose, "_tidy_in_output", lambda e: -e)
    with pytest.raises(RuntimeError, match=r"disagrees with sympy\.diff"):
        derive(activation="tanh", loss="bce")


# --- compositions the step-tree check cannot see ----------------------------------------


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


@pytest.mark.parametrize("targets", ["one-hot", "distribution"])
def test_softmax_ce_p_minus_t_against_finite_differences(targets, rng):
    d = derive(activation="softmax", loss="ce")
    p_sym, t_sym = sympy.Symbol("p", real=True), sympy.Symbol("t", real=True)
    grad = sympy.lambdify((p_sym, t_sym), d.result, modules="numpy")
    zv = rng.normal(size=4)
    tv = np.eye(4)[2] if targets == "one-hot" else rng.dirichlet(np.ones(4))

    def E(v):
        return -np.sum(tv * np.log(_softmax(v)))

    h = 1e-6
    numeric = np.array([(E(zv + h * e) - E(zv - h * e)) / (2 * h) for e in np.eye(4)])
    np.testing.assert_allclose(grad(_softmax(zv), tv), numeric, rtol=1e-6, atol=1e-9)


def test_softmax_ce_assumption_is_needed():
    # With targets that do not sum to one the true gradient is p·Σt - t, not p - t: the
    # stated assumption carries weight, and the test above would notice it missing.
    zv = np.array([0.3, -1.2, 0.8])
    tv = np.array([0.5, 0.5, 0.5])

    def E(v):
        return -np.sum(tv * np.log(_softmax(v)))

    h = 1e-6
    numeric = np.array([(E(zv + h * e) - E(zv - h * e)) / (2 * h) for e in np.eye(3)])
    assert not np.allclose(numeric, _softmax(zv) - tv, atol=1e-3)


@pytest.mark.parametrize(("activation", "loss", "half"),
                         [("tanh", "bce", False), ("sigmoid", "bce", False),
                          ("softplus", "mse", True)])
def test_every_step_holds_by_the_chain_method_with_weights(activation, loss, half):
    d = derive(activation=activation, loss=loss, half=half, weights=True, method="chain")
    assert sum(check_tree(s) for s in d.steps) >= 5


# --- hostile formulas at every entry point -----------------------------------------

_NESTED_SIGMOID = "sigmoid(" * 31 + "x" + ")" * 31  # within the parser's depth limit


def _payloads(marker):
    return [
        f"__import__('pathlib').Path('{marker}').touch()",
        f"(lambda: __import__('pathlib').Path('{marker}').touch())()",
        "x.__class__.__mro__",
        "exp.__globals__",
        "().__class__",
        "x+" * 300 + "x",
        "(" * 60 + "x" + ")" * 60,
        "(x+1)**999999999999",  # was: minutes in the simplifier expanding the power
        "((x+1)**8)**9",  # SymPy combines this into (x + 1)**72
        "x**x**x**x**x**x**x**x",  # was: MemoryError out of mpmath, a traceback in the CLI
    ]


def _entry_points(tmp_path):
    out = str(tmp_path / "f.png")
    return {
        "derive": lambda s: derive(s),
        "check formula": lambda s: check_formula(s, function="x**2"),
        "check function": lambda s: check_formula("2*x", function=s),
        "from_formula": lambda s: activation_from_formula(s),
        "plot": lambda s: __import__("chainrule.derivation.plot").derivation.plot.plot_functions(
            [s], out),
    }


@pytest.mark.parametrize("entry", ["derive", "check formula", "check function", "from_formula",
                                   "plot"])
def test_hostile_formulas_are_refused_quickly_everywhere(entry, tmp_path):
    marker = tmp_path / "ran"
    call = _entry_points(tmp_path)[entry]
    parse_expression("x")  # warm the imports
    for text in _payloads(marker):
        with deadline(5.0), pytest.raises(FormulaError):
            call(text)
    assert not marker.exists()
    assert not (tmp_path / "f.png").exists()


@pytest.mark.parametrize("entry", ["derive", "from_formula", "plot"])
def test_nesting_that_exhausts_the_stack_is_a_formula_error(entry, tmp_path):
    # 31 nested sigmoids parse (the limit is 40 levels) but SymPy recurses past Python's limit
    call = _entry_points(tmp_path)[entry]
    with deadline(10.0), pytest.raises(FormulaError, match="nested too deeply"):
        call(_NESTED_SIGMOID)


@pytest.mark.parametrize(
    "argv",
    [
        ["derive", "x**x**x**x**x**x**x**x"],
        ["derive", _NESTED_SIGMOID],
        ["derive", "(x+1)**999999999999"],
        ["check", "--function", "x**x**x**x**x**x**x**x", "x"],
        ["check", "--function", "x**2", "(x+1)**999999999999"],
        ["plot", "x**x**x**x**x**x**x**x", "--out", "PNG"],
    ],
)
def test_cli_refuses_runaway_formulas_in_one_line(argv, capsys, tmp_path):
    argv = [str(tmp_path / "f.png") if a == "PNG" else a for a in argv]
    with deadline(10.0):
        assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith(f"chainrule {argv[0]}: error:")


def test_the_exponent_limit_is_exactly_the_documented_one():
    assert parse_expression(f"(x + 1)**{MAX_NUMERIC_EXPONENT}") == (x + 1) ** MAX_NUMERIC_EXPONENT
    assert parse_expression(f"x**-{MAX_NUMERIC_EXPONENT}") == x**-MAX_NUMERIC_EXPONENT
    for text in (f"x**{MAX_NUMERIC_EXPONENT + 1}", f"(x + 1)^{MAX_NUMERIC_EXPONENT + 1}",
                 "(x**8)**9", "x**1e30", f"2**{MAX_NUMERIC_EXPONENT + 1}"):
        with pytest.raises(FormulaError, match=f"±{MAX_NUMERIC_EXPONENT}"):
            parse_expression(text)


# --- the plot holds each function and its derivative ------------------------------------


def test_plot_draws_each_function_and_its_derivative(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from chainrule.derivation.plot import plot_functions

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


# --- the catalogue names every documented kind of mistake -----------------------------------------

DOCUMENTED_KINDS = ["sign_flipped", "scaled", "transposed", "activation_missing",
                    "activation_twice", "activation_at_output", "softmax_diagonal",
                    "wrong_variable"]


def test_catalogue_holds_every_documented_kind():
    assert set(DOCUMENTED_KINDS) <= set(CATALOGUE)
    assert len(CATALOGUE) >= 10


@pytest.mark.parametrize("kind", [*DOCUMENTED_KINDS, "zero"])
def test_a_relation_broken_at_one_element_is_not_stated(kind, rng):
    G, T, hints = CASES[kind](rng)
    G = np.array(G, dtype=float)
    assert diagnose(G, T, **hints).kind == kind  # the case as built does fire
    for i in (0, G.size - 1):
        broken = G.copy()
        broken.flat[i] += 0.75 * (1.0 + abs(broken.flat[i]))
        found = diagnose(broken, T, **hints)
        assert found is None or found.kind != kind, (i, found)


def test_array_output_with_a_wrong_jacobian_fails(rng):
    A = rng.normal(size=(3, 4))
    x0 = rng.normal(size=4)
    assert gradcheck(lambda v: A @ v, lambda v: A, x0).passed
    wrong = A.copy()
    wrong[1, 2] += 0.5
    assert not gradcheck(lambda v: A @ v, lambda v: wrong, x0).passed
    assert not gradcheck(lambda v: A @ v, lambda v: -A, x0).passed


def test_check_formula_correct_forms_are_not_flagged_for_other_losses():
    assert check_formula("2*(yhat - y)", loss="mse").correct
    assert check_formula("yhat - y", loss="mse", half=True).correct
    assert check_formula("(1 + yhat)*(yhat - y)/yhat", loss="bce", activation="tanh").correct
    assert check_formula("yhat*(1 - yhat)*(yhat - y)", loss="mse", half=True,
                         activation="sigmoid").correct
