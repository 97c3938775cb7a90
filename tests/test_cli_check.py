"""`chainrule check`: exit 1 with the diagnosis when the formula is wrong, 0 when it is right."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("sympy")

from chainrule._cli.check import fill
from chainrule.cli import main

BCE_SIGN_SLIP = "-(y/yhat + (1-y)/(1-yhat))"


def test_readme_sign_slip_prints_the_diagnosis_and_exits_1(capsys):
    code = main(["check", "--loss", "bce", "--wrt", "yhat", BCE_SIGN_SLIP])
    out = capsys.readouterr().out
    assert code == 1
    paragraph = " ".join(out.split())
    assert paragraph.startswith("Not correct: your dE/dyhat")
    assert "the second term has the wrong sign" in paragraph
    assert "d/dyhat log(1 - yhat) = -1/(1 - yhat): the chain rule's inner derivative is -1" \
        in paragraph
    assert "\n\n" not in out.strip()  # one paragraph


def test_correct_formula_exits_0(capsys):
    code = main(["check", "--loss", "bce", "(yhat - y)/(yhat*(1 - yhat))"])
    assert code == 0
    assert capsys.readouterr().out.startswith("Correct:")


def test_formula_starting_with_a_minus_and_no_spaces(capsys):
    assert main(["check", "--loss", "bce", "-(y/yhat-(1-y)/(1-yhat))"]) == 0
    assert main(["check", "-2*(y-yhat)", "--loss", "mse"]) == 0
    capsys.readouterr()


def test_activation_option_checks_dE_dz(capsys):
    assert main(["check", "--loss", "bce", "--activation", "tanh",
                 "(yhat + 1)*(yhat - y)/yhat"]) == 0
    assert "dE/dz" in capsys.readouterr().out


def test_function_option(capsys):
    assert main(["check", "--function", "x*sigmoid(x)", "sigmoid(x)*(1 - x*(1 - sigmoid(x)))"]) == 1
    assert "product rule" in " ".join(capsys.readouterr().out.split())


def test_json_format(capsys):
    code = main(["check", "--loss", "bce", "--format", "json", "t/p + (1-t)/(1-p)"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["correct"] is False and data["kind"] == "term_sign"
    assert [f["problem"] for f in data["findings"]] == ["leading minus dropped", "wrong sign"]


def test_bad_formula_is_one_line_error(capsys):
    code = main(["check", "--loss", "bce", "yhat +* 2"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("chainrule check: error: Cannot parse")


def test_bad_options_are_one_line_errors(capsys):
    assert main(["check", "yhat - y"]) == 2
    assert "--loss NAME" in capsys.readouterr().err
    assert main(["check", "--loss", "bce", "--activation", "tanh", "--wrt", "yhat", "y"]) == 2
    assert "formula is dE/dz" in capsys.readouterr().err


def test_loss_and_function_are_exclusive(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["check", "--loss", "bce", "--function", "x", "x"])
    assert excinfo.value.code == 2
    capsys.readouterr()


def test_fill_keeps_bracketed_formulas_together():
    text = "word " * 12 + "is -(y/yhat - (1 - y)/(1 - yhat)) and more words follow here"
    for line in fill(text, 40).splitlines():
        assert line.count("(") == line.count(")")


def test_real_process_exit_code():
    proc = subprocess.run(
        [sys.executable, "-m", "chainrule.cli", "check", "--loss", "bce", "--wrt", "yhat",
         BCE_SIGN_SLIP],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert "second term has the wrong sign" in " ".join(proc.stdout.split())
    assert proc.stderr == ""


def _readme_check_examples():
    import re
    import shlex
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    pages = [root / "README.md", *sorted((root / "docs" / "guide").glob("*.md"))]
    text = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        parts = re.split(r"^\$ ", block, flags=re.M)[1:]
        for part in parts:
            command, _, output = part.partition("\n")
            if command.startswith("uv run chainrule check "):
                yield shlex.split(command)[4:], output


@pytest.mark.parametrize(("argv", "expected"), list(_readme_check_examples()),
                         ids=lambda v: v[-1][:40] if isinstance(v, list) else None)
def test_readme_check_examples_print_what_the_readme_shows(argv, expected, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    code = main(["check", *argv])
    out = capsys.readouterr().out
    assert out == expected
    assert code == (0 if expected.startswith("Correct") else 1)


@pytest.mark.parametrize("argv", [
    ["check", "--layer", "--activation", "sigmoid", "--loss", "bce",
     'np.einsum("ij,ik->jk", X, Yhat - Y) / m'],
    ["check", "--layer", "--activation", "sigmoid", "--loss", "bce", "--wrt", "b",
     "np.ones((1, m)) @ (Yhat - Y) / m"],
    ["check", "--function", "relu(x)**2", "2*relu(x)"],
])
def test_einsum_ones_and_piecewise_functions_are_checked(argv, capsys):
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("Correct:")


def test_a_wrong_derivative_of_a_piecewise_function_exits_1(capsys):
    assert main(["check", "--function", "binary_step(x)*x", "0"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("Not correct:") and captured.err == ""


def test_the_sigmoid_bce_shortcut_after_tanh_names_its_kind(capsys):
    code = main(["check", "--loss", "bce", "--activation", "tanh", "--format", "json", "yhat - y"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["kind"] == "shortcut_wrong_activation"
    assert "Domain conflict" in data["sentence"]
    assert main(["check", "--loss", "bce", "--activation", "sigmoid", "yhat - y"]) == 0


def test_a_derivative_typed_as_on_paper_prints_how_it_was_read(capsys):
    from chainrule.cli import main

    assert main(["check", "--loss", "mse", "--half", "ŷ − y"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "read as: yhat - y"
    assert main(["check", "--loss", "mse", "--half", "yhat - y"]) == 0
    assert "read as" not in capsys.readouterr().out
