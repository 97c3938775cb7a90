"""Property tests of the two doors that take arbitrary user input: the formula parser and the
model loader. Any text, any bytes: either a result or one clear error, within a time limit.

Derandomized in CI (the "ci" Hypothesis profile in conftest.py), so a red run reproduces.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chainrule
from chainrule._cli import TimeUp, time_limit
from chainrule.cli import main
from chainrule.derivation import activation_from_formula, derive
from chainrule.derivation.parser import FormulaError, parse_expression
from chainrule.gradient_check import check_formula
from chainrule.nn import mlp
from chainrule.serialization import ModelFileError

SECONDS = 20  # per example; SymPy on a loaded machine

TOKENS = [
    "x", "y", "z", "w", "yhat", "q", "(", ")", "+", "-", "*", "/", "**", "^", ",", " ", "0",
    "1", "2", "9", "64", "65", "1e308", "1e-320", ".5", "e", "pi", "exp(", "log(", "sqrt(",
    "sigmoid(", "relu(", "max(", "abs(", "sin(", "tanh(", "softplus(", "bce(", "0**", "(-1)**",
    "x.real", "[", "]", "'", "lambda", "__import__(", "=", ";", "\n", "\x00", "\udcff", "é",
]

formulas = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(TOKENS), max_size=25).map("".join),
)


def _parse(text: str):
    with time_limit(SECONDS):
        return parse_expression(text)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(formulas)
def test_any_text_parses_or_gives_one_formula_error(text):
    try:
        expr = _parse(text)
    except FormulaError as exc:
        message = str(exc)
        assert message and "\n" not in message.strip()
        assert "Traceback" not in message
    except TimeUp:
        pytest.fail(f"parsing {text!r} took more than {SECONDS} s")
    else:
        assert isinstance(expr, sympy.Expr)
        assert not expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo, sympy.I)


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow,
                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12).map("".join))
def test_derive_on_any_formula_exits_with_a_result_or_one_line(capsys, text):
    capsys.readouterr()
    try:
        rc = main(["derive", text, "--timeout", str(SECONDS)])
    except SystemExit as exc:  # argparse: usage error
        rc = exc.code
    out, err = capsys.readouterr()
    assert rc in (0, 1, 2), err
    assert "Traceback" not in err and "internal error" not in err.lower()
    if rc == 1:
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("chainrule derive: error: ")
    if rc == 0:
        assert out.strip()


# --- the model loader ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    model = mlp([3, 4, 2], output="softmax", seed=0)
    model.task = "classification"
    model.classes_ = np.array(["a", "b"])
    model.save(path)
    return path.read_bytes()


def _load_bytes(tmp_path, data: bytes):
    path = tmp_path / "m.safetensors"
    path.write_bytes(data)
    with time_limit(SECONDS):
        return chainrule.load(path)


def _loads_or_refuses(tmp_path, data: bytes) -> None:
    try:
        model = _load_bytes(tmp_path, data)
    except ModelFileError as exc:
        message = str(exc)
        assert str(tmp_path / "m.safetensors") in message  # names the file
        assert "\n" not in message.strip()
    except TimeUp:
        pytest.fail(f"loading took more than {SECONDS} s")
    else:
        try:
            out = model.predict_proba(np.zeros((2, model.in_features)))
        except ValueError:
            return  # e.g. an output that overflows: a clear error, not a crash
        assert np.isfinite(out).all()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_any_bytes_load_or_give_one_model_file_error(tmp_path, data):
    _loads_or_refuses(tmp_path, data)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_model_files_load_or_give_one_model_file_error(tmp_path, model_bytes, data):
    raw = bytearray(model_bytes)
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)),
                               min_size=1, max_size=6))
    for position, value in edits:
        raw[position] = value
    cut = data.draw(st.integers(0, len(raw)))
    _loads_or_refuses(tmp_path, bytes(raw[:cut] if data.draw(st.booleans()) else raw))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)

FIELDS = ["format", "version", "layers", "task", "classes", "preprocessing", "training",
          "layers.0", "layers.0.type", "layers.0.config", "layers.0.config.in_features",
          "layers.0.config.out_features", "layers.0.config.bias", "layers.0.config.dtype",
          "layers.1.name", "layers.1.config", "layers.2", "layers.3", "layers.3.name",
          "layers.3.config", "layers.3.config.axis", "classes.0", "classes.1"]


def _replace(meta, dotted: str, value):
    node = meta
    keys = dotted.split(".")
    for key in keys[:-1]:
        try:
            node = node[int(key)] if isinstance(node, list) else node[key]
        except (KeyError, IndexError, TypeError, ValueError):
            return meta
    last = keys[-1]
    if isinstance(node, list):
        if last.isdigit() and int(last) < len(node):
            node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    return meta


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(FIELDS), json_values), min_size=1, max_size=3))
def test_any_metadata_loads_or_names_the_file(tmp_path, model_bytes, changes):
    n = int.from_bytes(model_bytes[:8], "little")
    header = json.loads(model_bytes[8:8 + n])
    meta = json.loads(header["__metadata__"]["chainrule"])
    for dotted, value in changes:
        meta = _replace(meta, dotted, value)
    header["__metadata__"]["chainrule"] = json.dumps(meta)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    _loads_or_refuses(tmp_path, len(raw).to_bytes(8, "little") + raw + model_bytes[8 + n:])


# --- malicious and runaway formulas at every entry point ------------------------------------------


@contextmanager
def deadline(seconds):
    """Fail the test when the block runs longer than ``seconds`` (the CLI's own alarm timer)."""
    try:
        with time_limit(seconds):
            yield
    except TimeUp:
        pytest.fail(f"took more than {seconds} s")


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
        "(x+1)**999999999999",  # expanding the power would keep the simplifier busy for minutes
        "((x+1)**8)**9",  # SymPy combines this into (x + 1)**72
        "x**x**x**x**x**x**x**x",  # evaluating it runs mpmath out of memory
    ]


def _plot(text, out):
    from chainrule.derivation.plot import plot_functions

    return plot_functions([text], out)


def _entry_points(tmp_path):
    out = str(tmp_path / "f.png")
    return {
        "derive": lambda s: derive(s),
        "check formula": lambda s: check_formula(s, function="x**2"),
        "check function": lambda s: check_formula("2*x", function=s),
        "from_formula": lambda s: activation_from_formula(s),
        "plot": lambda s: _plot(s, out),
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


# --- hostile matrix formulas: einsum and ones, refused quickly with the fix ---------------------

_MATRIX_PAYLOADS = [
    'np.einsum("abcdef,abcdef,abcdef,abcdef->abc", X, X, X, X)',  # axes that X does not have
    'np.einsum("i,j,k,l->ijk", m, m, m, m)',
    'np.einsum("ij,jk,kl,lm,mn->in", X, X, X, X, X)',  # five operands
    'np.einsum("ij" * 40, X)',
    'np.einsum("...", X)',
    "np.einsum(__import__('os').getcwd(), X)",
    "np.ones((10000, 10000))",
    "np.ones((10000, 2))",
    "np.ones((1e308, 1))",
    "np.ones((-1, m))",
    "np.ones((1, m)) @ np.ones((1, m))",
    "np.ones(X.shape)",
]


@pytest.mark.parametrize("formula", _MATRIX_PAYLOADS)
def test_hostile_einsum_and_ones_are_refused_in_one_line(formula, tmp_path, monkeypatch):
    """Refused with one line, or (shapes that do not fit) judged not correct, within 5 s."""
    from chainrule.gradient_check.matrix import MatrixFormulaError, check_matrix

    monkeypatch.chdir(tmp_path)
    with deadline(5.0):
        try:
            result = check_matrix(formula, activation="sigmoid", loss="bce")
        except MatrixFormulaError as exc:
            message = str(exc)
        else:
            assert not result.correct and result.kind is not None
            message = result.findings[0].rule
    assert "\n" not in message and "Traceback" not in message and "einsum()" not in message
    assert list(tmp_path.iterdir()) == []


# --- wrong types and misspelt names given to derive, and piecewise functions to check ---------


@pytest.mark.parametrize("value", [["sigmoid"], {"sigmoid": 1}, {"sigmoid"}, 3, 2.5, b"sigmoid",
                                   object()])
@pytest.mark.parametrize("parameter", ["activation", "loss"])
def test_derive_refuses_a_name_of_the_wrong_type_in_one_line(parameter, value):
    with pytest.raises(TypeError) as info:
        derive(**{parameter: value})
    message = str(info.value)
    assert f"{parameter}= takes one name" in message and "unhashable" not in message


@pytest.mark.parametrize("argv", [["derive", "sigmod"], ["derive", "--activation", "tahn"],
                                  ["derive", "--loss", "bcee"], ["plot", "tahn"]])
def test_a_misspelt_name_gets_a_guess_on_the_command_line(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with deadline(10.0):
        assert main(argv) == 2  # an unknown name is bad usage
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "did you mean" in err.lower()


@pytest.mark.parametrize(("function", "claim"), [("relu(x)**2", "2*x"),
                                                 ("binary_step(x)*x", "0"),
                                                 ("relu(-x)**2*binary_step(x)", "x"),
                                                 ("relu(relu(x)**2)", "1")])
def test_piecewise_functions_are_checked_on_the_command_line(function, claim, capsys):
    with deadline(20.0):
        assert main(["check", "--function", function, claim]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("Not correct:") and captured.err == ""
