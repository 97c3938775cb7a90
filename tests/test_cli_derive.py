"""`chainrule derive` through `chainrule.cli.main`: exit codes and output."""

import json

import pytest

from chainrule.cli import main


def test_done_when_tanh_bce(capsys):
    assert main(["derive", "--activation", "tanh", "--loss", "bce"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[2].startswith("1. ")
    assert "Result: dE/dz = (1 + yhat)(yhat - y)/yhat" in out
    assert "yhat = 0 (z = 0)" in out
    assert "Domain conflict" in out


def test_json_parses(capsys):
    assert main(["derive", "--activation", "tanh", "--loss", "bce", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["result"] == "(1 + yhat)*(yhat - y)/yhat"
    assert data["singularities"][0]["input"] == "z = 0"
    assert len(data["warnings"]) == 2


def test_sigmoid_quotient_method(capsys):
    assert main(["derive", "sigmoid", "--method", "quotient"]) == 0
    out = capsys.readouterr().out
    assert "Quotient rule" in out
    assert "yhat(1 - yhat)" in out


@pytest.mark.parametrize("fmt", ["latex", "markdown"])
def test_other_formats(capsys, fmt):
    assert main(["derive", "x*sigmoid(x)", "--format", fmt]) == 0
    assert "sigma" in capsys.readouterr().out


def test_weights(capsys):
    assert main(["derive", "--activation", "sigmoid", "--loss", "bce", "--weights"]) == 0
    out = capsys.readouterr().out
    assert "Result: dE/dw = x(yhat - y)" in out
    assert "Δw = -η·x(yhat - y)" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["derive", "x +* 2"], "column"),
        (["derive", "__import__('os').system('echo hi')"], "column 1"),
        (["derive", "--activation", "tanhh", "--loss", "bce"], "activation 'tanhh'"),
        (["derive"], "Nothing to derive"),
        (["derive", "--activation", "softmax", "--loss", "ce_with_logits"],
         "apply the softmax twice"),
        (["derive", "--activation", "sigmoid", "--loss", "bce_with_logits"],
         "apply the sigmoid twice"),
        (["derive", "--activation", "sigmoid", "--loss", "bce", "--layer", "--wrt", "q"],
         "got --wrt 'q'"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, argv, needle):
    # an unreadable formula, an unknown name or options that contradict each other: bad usage
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert len(err.splitlines()) == 1
    assert needle in err


def test_bad_method_is_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["derive", "sigmoid", "--method", "product"])
    assert info.value.code == 2


# SymPy needs minutes for this derivative and its check on any machine, so no test ever
# finishes it and no cache (SymPy's, or the engine's memo of finished derivations) can hold it:
# a limit of 0.3 s stops it whatever ran before. A formula that takes a few seconds cold can
# finish within the limit once earlier tests have warmed the caches with its pieces.
RUNAWAY = "exp(exp(exp(exp(x))))*log(log(log(x)))"


def test_timeout_gives_up_in_one_line_and_leaves_nothing_behind(capsys):
    import signal

    before = signal.getsignal(signal.SIGALRM)
    for argv in (["derive", RUNAWAY], ["check", "--function", RUNAWAY, "1"]):
        assert main([*argv, "--timeout", "0.3"]) == 1
        err = capsys.readouterr().err
        assert "gave up after 0.3 s (--timeout)" in err
        assert len(err.strip().splitlines()) == 1
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    # the engine is still usable afterwards, and a generous limit changes nothing
    assert main(["derive", "sigmoid", "--timeout", "30"]) == 0
    assert "yhat(1 - yhat)" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["x*sigmoid(x)"], ["--activation", "tanh", "--loss", "bce"]])
def test_simplify_steps_say_simplify_once(argv, capsys):
    assert main(["derive", *argv]) == 0
    out = capsys.readouterr().out
    steps = [line for line in out.splitlines() if "Simplify" in line]
    assert steps  # the step is there, titled once
    assert all(line.lower().count("simplify") == 1 for line in steps), steps


def test_a_layer_by_its_inputs_prints_the_input_gradient(capsys):
    assert main(["derive", "--activation", "sigmoid", "--loss", "bce", "--layer",
                 "--wrt", "X"]) == 0
    out = capsys.readouterr().out
    result = out.split("Result:")[1]
    assert "∂E/∂X = Δ₁ W₁ᵀ / m" in result and "∂E/∂W₁" not in result


# The quotient rule written out with the actual u, u', v, v' before it is simplified.
_WRITTEN_OUT = {
    "sigmoid": "(0·(1 + e^(-x)) - 1·(-e^(-x)))/(1 + e^(-x))² = e^(-x)/(1 + e^(-x))²",
    "log(x)/x": "((1/x)·x - log(x)·1)/x² = (1 - log(x))/x²",
}


@pytest.mark.parametrize("expression", sorted(_WRITTEN_OUT))
def test_quotient_rule_is_written_out_before_it_is_simplified(capsys, expression):
    assert main(["derive", expression]) == 0
    out = capsys.readouterr().out
    assert "Substitute (Quotient rule)" in out
    assert _WRITTEN_OUT[expression] in out


@pytest.mark.parametrize("expression", sorted(_WRITTEN_OUT))
def test_json_holds_the_written_out_quotient_rule(capsys, expression):
    import sympy

    assert main(["derive", expression, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    steps = [s for top in data["steps"] for s in top["substeps"] if s["title"] == "Substitute"]
    assert len(steps) == 1
    x = sympy.Symbol("x")
    written = sympy.sympify(steps[0]["before"], locals={"x": x})
    truth = sympy.diff(sympy.sympify(expression.replace("sigmoid", "1/(1 + exp(-x))"),
                                     locals={"x": x}), x)
    assert sympy.simplify(written - truth) == 0


def test_every_face_shows_the_written_out_quotient_rule():
    from chainrule.derivation import derive

    d = derive("sigmoid")
    latex = r"0 \cdot \left(1 + e^{- x}\right) - 1 \cdot \left(- e^{- x}\right)"
    assert latex in d.to_latex()
    assert latex in d.to_markdown()
    html = d.to_html()
    assert "(0·(1 + e^(-x)) - 1·(-e^(-x)))/(1 + e^(-x))²" in html  # the alttext
    assert "<mfrac><mrow><mn>0</mn><mo>" in html


def test_a_formula_read_otherwise_than_typed_prints_its_reading(capsys):
    assert main(["derive", "2x(1 − x)"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "read as: 2*x*(1 - x)"


def test_a_formula_read_as_typed_prints_no_reading(capsys):
    assert main(["derive", "x * sigmoid(x)"]) == 0
    assert "read as" not in capsys.readouterr().out


def test_the_json_answer_carries_the_reading(capsys):
    assert main(["derive", "log yhat", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["read_as"] == "log(yhat)"


def test_the_python_result_carries_the_reading():
    from chainrule import derive

    d = derive("σ z (1 − σ z)")
    assert d.read_as == "sigmoid(z)*(1 - sigmoid(z))" and d.typed == "σ z (1 − σ z)"
    assert derive("sigmoid").read_as is None


def test_a_syntax_error_says_how_the_text_was_read(capsys):
    assert main(["derive", "2x +* y"]) == 2
    err = capsys.readouterr().err
    assert "it reads as '2*x+*y'" in err and len(err.strip().splitlines()) == 1
