"""Exit codes and usage errors of every command, as docs/guide/training.md states them: 0
success, 1 the command ran and the answer is no or it failed, 2 bad usage (an unknown option, a
missing argument, any invalid option value, a formula that cannot be read), always in one line."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

pytest.importorskip("sympy")

from chainrule.cli import COMMANDS, main

README = Path(__file__).resolve().parents[1] / "README.md"


def _run(argv):
    """The exit code of ``main(argv)``, argparse's exit included."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    return code


# One bad usage of each command: an invalid option value, an unknown name or a missing input.
BAD_USAGE = {
    "train": ["train", "--activation", "tahn"],
    "predict": ["predict", "model.safetensors"],
    "evaluate": ["evaluate", "--data", "digits"],
    "derive": ["derive", "--activation", "tahn"],
    "check": ["check", "--loss", "bse", "yhat - y"],
    "plot": ["plot", "sigmoid", "--range", "1", "0"],
    "data": ["data", "download", "nosuch"],
    "serve": ["serve", "--workers", "0"],
    "check_backward": ["check-backward", "no_such_file.py:forward,backward", "--shapes", "3"],
}

# More of the usage errors a user makes: each one is 2 as well, never 1.
MORE_BAD_USAGE = [
    ["derive", "--loss", "bse"],
    ["derive"],
    ["derive", "x +* 2"],
    ["derive", "--actvation", "tanh"],
    ["check", "--loss", "mse", "--wrt", "yhta", "yhat - y"],
    ["check", "yhat - y"],
    ["check", "--loss", "bse", "--wrt", "yhta", "yhat"],
    ["train", "--epochs", "0"],
    ["train", "--data", "iris", "--loss", "bce", "--epochs", "1"],
    ["serve", "--port", "70000"],
    ["nosuch"],
]


def _failing(name, tmp_path):
    """A valid command line of ``name`` that runs and fails or answers no (exit 1)."""
    missing = str(tmp_path / "missing.safetensors")
    return {
        "train": ["train", "--data", str(tmp_path / "missing.csv")],
        "predict": ["predict", missing, "--data", "iris"],
        "evaluate": ["evaluate", missing, "--data", "iris"],
        "derive": ["derive", "exp(exp(exp(exp(x))))*log(log(log(x)))", "--timeout", "0.3"],
        "check": ["check", "--loss", "bce", "--wrt", "yhat", "-(y/yhat + (1-y)/(1-yhat))"],
        "plot": ["plot", "sigmoid", "--out", str(tmp_path / "nowhere" / "a.png")],
        "check_backward": ["check-backward", f"{_doubled_backward(tmp_path)}:forward,backward",
                           "--shapes", "4x3,3x5"],
    }.get(name)


def _doubled_backward(tmp_path):
    """A file whose backward pass doubles dW: a valid command whose answer is no."""
    path = tmp_path / "doubled.py"
    path.write_text("def forward(x, w):\n    return x @ w\n\n\n"
                    "def backward(dout, x, w):\n    return dout @ w.T, 2 * (x.T @ dout)\n")
    return path


def test_the_readme_states_the_exit_codes_these_tests_check():
    guide = README.parent / "docs" / "guide" / "training.md"  # where the README links for them
    text = " ".join(guide.read_text(encoding="utf-8").split())
    assert re.search(r"Exit codes: 0 success; 1 the command ran and the answer is no or it "
                     r"failed [^;]*; 2 bad usage, in one line: an unknown option, a missing "
                     r"argument, any invalid option value .* or a formula that cannot be read\.",
                     text)


def test_every_command_has_a_bad_usage_case():
    assert set(BAD_USAGE) == set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_bad_usage_exits_2_in_one_line(name, capsys):
    argv = BAD_USAGE[name]
    assert _run(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    command = name.replace("_", "-")  # check_backward is the command check-backward
    prog = "chainrule data download" if name == "data" else f"chainrule {command}"
    assert lines[0].startswith(f"{prog}: error: "), lines
    assert "usage:" not in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize("argv", MORE_BAD_USAGE, ids=" ".join)
def test_other_usage_errors_exit_2_in_one_line(argv, capsys):
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("chainrule") and "usage:" not in err


@pytest.mark.parametrize("name", [n for n in COMMANDS if n not in ("data", "serve")])
def test_a_valid_command_that_fails_exits_1(name, tmp_path, capsys):
    assert _run(_failing(name, tmp_path)) == 1
    err = capsys.readouterr().err
    if name not in ("check", "check_backward"):  # these say no on stdout: the diagnosis
        assert len(err.strip().splitlines()) == 1 and err.startswith(f"chainrule {name}: error:")


def test_serve_on_a_port_in_use_exits_1(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        assert _run(["serve", "--port", str(taken.getsockname()[1])]) == 1
    assert "is in use" in capsys.readouterr().err


def test_a_runaway_formula_is_a_limit_reached_not_bad_usage(capsys):
    assert _run(["derive", "sin(" * 41 + "x" + ")" * 41]) == 1
    assert "nested too deeply" in capsys.readouterr().err


def test_train_prints_one_line_not_its_usage(capsys):
    assert _run(["train", "--activation", "tahn"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule train: error: argument --activation: invalid choice: "
                          "'tahn'")
    assert len(err.strip().splitlines()) == 1


def test_a_misspelt_option_is_named_by_its_command_with_the_nearest_option(capsys):
    assert _run(["derive", "--actvation", "tanh"]) == 2
    assert capsys.readouterr().err == ("chainrule derive: error: unrecognized arguments: "
                                       "--actvation; did you mean --activation?\n")
    assert _run(["check", "--loss", "mse", "--wrtt", "yhat", "yhat - y"]) == 2
    assert "chainrule check: error: unrecognized arguments: --wrtt" in capsys.readouterr().err


@pytest.mark.parametrize("formula", ["-y/yhat", "-yhat", "-y", "-(yhat - y)", "-2*(y - yhat)"])
def test_a_formula_starting_with_a_minus_is_the_formula(formula, capsys):
    # the right answer -2(y - yhat) with each formula: a diagnosis (0 or 1), never usage
    for argv in (["check", formula, "--loss", "mse"], ["check", "--loss", "mse", formula]):
        code = _run(argv)
        out = " ".join(capsys.readouterr().out.split())
        assert code == (0 if formula == "-2*(y - yhat)" else 1)
        assert f"your dE/dyhat, {formula}," in out or out.startswith("Correct")


def test_a_derive_formula_starting_with_a_minus_is_the_formula(capsys):
    assert _run(["derive", "-hat*x"]) == 2  # read as the formula: an unknown name, not -h
    assert "Unknown name 'hat'" in capsys.readouterr().err
    assert _run(["derive", "-x*sigmoid(x)"]) == 0
    assert "Result:" in capsys.readouterr().out
