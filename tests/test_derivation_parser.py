"""The whitelist parser: what it accepts, what it refuses, and that refusing runs nothing."""

import time

import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

from chainrule.derivation.functions import sigmoid
from chainrule.derivation.parser import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NUMERIC_EXPONENT,
    SYMBOLS,
    FormulaError,
    parse_expression,
)
from chainrule.derivation.printing import to_python

x, y, yhat = SYMBOLS["x"], SYMBOLS["y"], SYMBOLS["yhat"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x * sigmoid(x)", x * sigmoid(x)),
        ("2^x + 1", 2**x + 1),  # '^' is power, with power's precedence
        ("x^2^3", x ** (2**3)),
        ("-x**2", -(x**2)),
        ("1/(1 + exp(-x))", 1 / (1 + sympy.exp(-x))),
        ("0.5 * x", x / 2),  # decimals stay exact
        ("max(0, x)", sympy.Piecewise((x, x > 0), (0, True))),
        ("max(x, 0)", sympy.Piecewise((x, x > 0), (0, True))),
        ("ln(x) + log(x)", 2 * sympy.log(x)),
        ("abs(x) + sqrt(x)", sympy.Abs(x) + sympy.sqrt(x)),
        ("-(y*log(yhat) + (1-y)*log(1-yhat))",
         -(y * sympy.log(yhat) + (1 - y) * sympy.log(1 - yhat))),
        ("bce(yhat, y)", -y * sympy.log(yhat) - (1 - y) * sympy.log(1 - yhat)),
        ("silu(x)", x * sigmoid(x)),
        ("  tanh(x)  ", sympy.tanh(x)),
        ("e^x + pi", sympy.exp(x) + sympy.pi),
    ],
)
def test_parses_whitelisted_syntax(text, expected):
    assert parse_expression(text) == expected


def test_symbols_are_real_and_shared():
    e = parse_expression("yhat - y")
    assert e.free_symbols == {yhat, y}
    assert all(s.is_real for s in e.free_symbols)
    assert SYMBOLS["x"] is x


def test_symbols_argument_restricts_names():
    assert parse_expression("x + 1", symbols=["x"]) == x + 1
    with pytest.raises(FormulaError, match="Unknown name 'y'"):
        parse_expression("x + y", symbols=["x"])
    with pytest.raises(FormulaError, match="Unknown symbol 'q'"):
        parse_expression("x", symbols=["q"])


@pytest.mark.parametrize(
    ("text", "quoted", "column"),
    [
        ("x + foo(x)", "'foo'", 5),
        ("x + q", "'q'", 5),
        ("x.real", "'x.real'", 1),
        ("2 * [1, 2]", "'[1, 2]'", 5),
        ("tanh(x, 2)", "'tanh(x, 2)'", 1),
        ("x ^ 2 + 'a'", "\"'a'\"", 9),  # the column is in the user's text, '^' and all
        ("exp(x=1)", "'exp(x=1)'", 1),
    ],
)
def test_errors_quote_the_part_and_its_column(text, quoted, column):
    with pytest.raises(FormulaError) as info:
        parse_expression(text)
    message = str(info.value)
    assert quoted in message
    assert f"column {column}" in message
    assert "\n" not in message


def test_syntax_error_names_column():
    with pytest.raises(FormulaError, match=r"column \d+"):
        parse_expression("x +* 2")


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('echo pwned')",
        "(lambda: 1)()",
        "x.__class__",
        "exp.__globals__",
        "open('/etc/passwd')",
        "[c for c in ()]",
        "x if x else 1",
        "x == 1",
        "x and 1",
        "{}",
        "f'{x}'",
        "x[0]",
        "True + x",
        "1j * x",
        "exp",
        "max(x, 1)",
        "9**9**9**9",
        "1e400 * x",
        "1/0",
        "",
        "   ",
    ],
)
def test_malicious_or_invalid_input_is_refused(text):
    with pytest.raises(FormulaError):
        parse_expression(text)


def test_refusing_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(FormulaError):
        parse_expression(f"__import__('pathlib').Path('{marker}').touch()")
    assert not marker.exists()


def test_long_and_deep_input_is_refused_quickly():
    start = time.perf_counter()
    with pytest.raises(FormulaError, match="limit is 500"):
        parse_expression("x+" * 10_000 + "x")
    with pytest.raises(FormulaError, match="nested too deeply"):
        parse_expression("(" * 200 + "x" + ")" * 200)
    with pytest.raises(FormulaError, match="nested too deeply"):
        parse_expression("-" * (MAX_DEPTH + 5) + "x")
    with pytest.raises(FormulaError, match="nested too deeply"):
        parse_expression("exp(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1))
    # refusal does not depend on the size of the input (a loose bound, not a benchmark)
    assert time.perf_counter() - start < 5.0
    assert len("x+" * 10_000) > MAX_LENGTH


def test_non_string_is_refused():
    with pytest.raises(FormulaError, match="must be a string; got int"):
        parse_expression(3)


_ATOMS = st.sampled_from(["x", "y", "2", "0.5", "yhat", "pi"])
_FUNCS = st.sampled_from(["exp", "log", "sin", "tanh", "sigmoid", "softplus", "erf", "abs"])


def _formula(depth=3):
    if depth == 0:
        return _ATOMS
    sub = _formula(depth - 1)
    return st.one_of(
        _ATOMS,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/"]), sub).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(_FUNCS, sub).map(lambda t: f"{t[0]}({t[1]})"),
        sub.map(lambda s: f"-{s}"),
    )


@given(_formula())
def test_printed_python_form_parses_back(text):
    try:
        e = parse_expression(text)
    except FormulaError:
        return  # e.g. a division by a literal zero
    back = parse_expression(to_python(e))
    assert back == e or sympy.expand(back - e) == 0 or sympy.simplify(back - e) == 0


@given(st.text(max_size=60))
def test_arbitrary_text_raises_only_formula_error(text):
    try:
        result = parse_expression(text)
    except FormulaError:
        return
    assert isinstance(result, sympy.Expr)


@pytest.mark.parametrize("text, column", [("x**", 4), ("x +", 4), ("sin(x) *", 9)])
def test_a_formula_that_ends_too_early_points_at_its_end(text, column):
    # Python reports offset 0 for an unexpected end; the column must be where the operand is
    # missing, not column 1.
    with pytest.raises(FormulaError, match=rf"ends too early at column {column} "):
        parse_expression(text)


# --- the exponent limit ---------------------------------------------------------------------------


def test_the_exponent_limit_is_exactly_the_documented_one():
    assert parse_expression(f"(x + 1)**{MAX_NUMERIC_EXPONENT}") == (x + 1) ** MAX_NUMERIC_EXPONENT
    assert parse_expression(f"x**-{MAX_NUMERIC_EXPONENT}") == x**-MAX_NUMERIC_EXPONENT
    for text in (f"x**{MAX_NUMERIC_EXPONENT + 1}", f"(x + 1)^{MAX_NUMERIC_EXPONENT + 1}",
                 "(x**8)**9", "x**1e30", f"2**{MAX_NUMERIC_EXPONENT + 1}"):
        with pytest.raises(FormulaError, match=f"±{MAX_NUMERIC_EXPONENT}"):
            parse_expression(text)


# --- an unreadable formula is its own error -----------------------------------------------------


@pytest.mark.parametrize("text", ["x +* 2", "x +", "(x", "", "  ", "x\0", "sigmoid(x))"])
def test_an_unreadable_formula_raises_the_syntax_error(text):
    from chainrule._checks import UnreadableFormulaError
    from chainrule.derivation import FormulaSyntaxError

    with pytest.raises(FormulaSyntaxError) as info:
        parse_expression(text)
    assert isinstance(info.value, FormulaError) and isinstance(info.value, UnreadableFormulaError)


@pytest.mark.parametrize("text", ["f(x)", "q + x", "x[0]", "x**1000"])
def test_a_readable_formula_that_is_refused_is_no_syntax_error(text):
    from chainrule._checks import UnreadableFormulaError

    with pytest.raises(FormulaError) as info:
        parse_expression(text)
    assert not isinstance(info.value, UnreadableFormulaError)


def test_the_checks_pass_the_syntax_error_on():
    from chainrule.derivation import FormulaSyntaxError
    from chainrule.gradient_check import check_formula

    with pytest.raises(FormulaSyntaxError):
        check_formula("yhat -* y", loss="mse")
    with pytest.raises(FormulaSyntaxError):
        check_formula("2*x", function="x**")


# -- the forgiving reading: what people type and what the page prints, pasted back --

z = SYMBOLS["z"]


@pytest.mark.parametrize(
    ("typed", "explicit"),
    [
        ("2x", "2*x"),
        ("2 x", "2*x"),
        ("2 sigma(z)", "2*sigmoid(z)"),
        ("2sigmoid(z)", "2*sigmoid(z)"),
        ("x(1-x)", "x*(1-x)"),
        ("(1-y)log(1-yhat)", "(1-y)*log(1-yhat)"),
        ("(1 + yhat)(yhat - y)/yhat", "(1 + yhat)*(yhat - y)/yhat"),
        ("x y", "x*y"),
        ("2pi x", "2*pi*x"),
        ("sin x", "sin(x)"),
        ("log yhat", "log(yhat)"),
        ("σ z", "sigmoid(z)"),
        ("σ(z)(1 − σ(z))", "sigmoid(z)*(1 - sigmoid(z))"),
        ("sin x^2", "sin(x**2)"),
        ("sin 2x", "sin(2*x)"),
        ("sin sin x", "sin(sin(x))"),
        ("exp x + 1", "exp(x) + 1"),
        ("-(y log yhat + (1-y) log(1-yhat))", "-(y*log(yhat) + (1-y)*log(1-yhat))"),
        ("ŷ - y", "yhat - y"),
        ("Ŷ - y", "yhat - y"),
        ("y\u0302 - y", "yhat - y"),  # y and a combining circumflex
        ("x²", "x**2"),
        ("(1 - ŷ)³", "(1 - yhat)**3"),
        ("x⁻¹", "x**(-1)"),
        ("x·σ(x)", "x*sigmoid(x)"),
        ("x × y ⋅ z", "x*y*z"),
        ("x − y", "x - y"),
        ("x ÷ 2", "x/2"),
        ("√x", "sqrt(x)"),
        ("√(1 + x²)", "sqrt(1 + x**2)"),
        ("η α δ", "eta*alpha*delta"),
        ("2e", "2*e"),
        ("1e3 x", "1e3*x"),
        ("x·σ(x)(1 - σ(x)) + 2x + σ(x)", "x*sigmoid(x)*(1 - sigmoid(x)) + 2*x + sigmoid(x)"),
    ],
)
def test_each_forgiving_form_parses_to_the_explicit_one(typed, explicit):
    assert parse_expression(typed) == parse_expression(explicit)


def test_the_page_text_of_a_result_parses_back_to_it():
    from chainrule import derive
    from chainrule.derivation.printing import to_text

    for d in (derive("x*sigmoid(x) + x**2"), derive(activation="tanh", loss="bce")):
        for expr in (d.result, d.result_input_form):
            assert sympy.simplify(parse_expression(to_text(expr)) - expr) == 0


@pytest.mark.parametrize(
    ("text", "quoted", "column"),
    [
        ("ŷ-q", "'q'", 3),  # the hat is one character of the text, not the four of yhat
        ("ŷ + foo(x)", "'foo'", 5),
        ("2x + q", "'q'", 6),
        ("σ z + x.real", "'x.real'", 7),
        ("x₁ + 1", "'x₁'", 1),
        ("σ(z) + ŷ²ᵀ", "'ᵀ'", 10),
        ("x + é", "'é'", 5),
    ],
)
def test_errors_point_at_the_typed_character(text, quoted, column):
    with pytest.raises(FormulaError) as info:
        parse_expression(text)
    message = str(info.value)
    assert quoted in message and f"column {column}" in message, message


@pytest.mark.parametrize(
    "text",
    [
        "2 __import__('os')",
        "x __import__('os')",
        "x (lambda: 1)()",
        "2x.__class__",
        "σ x.__class__",
        "x if x else 1",
        "x\nx",
        "x²⁰⁰⁰",
        "2x^1000",
        "√ x**1000",
        "sin sin sin",
        "x y ^ 99999",
        "1j x",
        "σ",
    ],
)
def test_hostile_input_stays_refused_in_the_forgiving_forms(text):
    with pytest.raises(FormulaError):
        parse_expression(text)


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("2x(1 − x)", "2*x*(1 - x)"),
        ("σ z + ŷ²", "sigmoid(z) + yhat**2"),
        ("log yhat", "log(yhat)"),
        ("x * sigmoid(x)", "x*sigmoid(x)"),
        ("x +", "x+"),  # unreadable: as far as it was read
    ],
)
def test_read_formula_writes_the_reading_in_python_syntax(typed, read):
    from chainrule.derivation.reading import read_formula

    assert read_formula(typed) == read


def test_every_elementary_function_the_reading_knows_is_one_the_parser_builds():
    from chainrule.derivation.parser import _UNARY
    from chainrule.derivation.reading import ELEMENTARY

    assert set(ELEMENTARY) == {*_UNARY, "max"}
