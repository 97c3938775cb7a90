"""`chainrule check-backward FILE:NAME`: the user's own file imported, the report printed, exit 0
when every input passes, 1 otherwise, 2 on bad usage (one line naming the problem and the fix)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from chainrule.cli import main

LAYERS = textwrap.dedent("""
    import numpy as np

    def affine_forward(x, w, b):
        return x @ w + b, (x, w, b)

    def affine_backward(dout, cache):
        x, w, b = cache
        return dout @ w.T, x.T @ dout, dout.sum(axis=0)

    def affine_backward_mean(dout, cache):
        x, w, b = cache
        return dout @ w.T, x.T @ dout / len(dout), dout.sum(axis=0) / len(dout)

    def relu_forward(z):
        return np.maximum(z, 0.0)

    def relu_backward(dout, z):
        return dout

    def affine(x, w, b):
        return x @ w + b

    def wrong_backward(dout, x, w, b):
        return dout @ w.T, x.T @ dout * 1.5, dout.sum(axis=0)

    def broken_backward(dout, x, w, b):
        raise TypeError("unsupported operand")
""")


@pytest.fixture
def layers(tmp_path):
    path = tmp_path / "layers.py"
    path.write_text(LAYERS)
    return path


def test_a_correct_course_style_layer_exits_0(layers, capsys):
    code = main(["check-backward", f"{layers}:affine_forward,affine_backward", "--layer", "dense"])
    out = capsys.readouterr().out
    assert code == 0 and "passed" in out.splitlines()[0]


def test_a_mistake_exits_1_with_the_report(layers, capsys):
    code = main(["check-backward", f"{layers}:affine_forward,affine_backward_mean",
                 "--shapes", "4x3,3x5,5"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 1
    assert "FAILED" in out and "input 1 (w)" in out and "1/4 of the true gradient" in out


def test_a_layers_known_mistake_is_named(layers, capsys):
    code = main(["check-backward", f"{layers}:relu_forward,relu_backward", "--layer", "relu",
                 "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["kind"] == "derivative_missing"
    assert data["inputs"][0]["name"] == "z"


def test_the_report_names_flags_not_parameters(layers, capsys):
    code = main(["check-backward", f"{layers}:affine,wrong_backward", "--shapes", "4x3,3x5,5"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 1 and "--layer adds the known mistakes" in out and "layer=" not in out


def test_float32_and_a_seed(layers, capsys):
    argv = ["check-backward", f"{layers}:affine_forward,affine_backward", "--shapes",
            "4x3,3x5,5", "--dtype", "float32", "--seed", "3"]
    assert main(argv) == 0
    assert "float64 copies" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["{layers}:affine_forward,affine_backward"], "--shapes 4x3,3x5"),
    (["{layers}:affine_forward,affine_backward", "--shapes", "4y3"], "such as 4x3,3x5"),
    (["{layers}:nothing", "--shapes", "3"], "defines no 'nothing'"),
    (["missing.py:f,g", "--shapes", "3"], "no such file"),
    (["{layers}", "--shapes", "3"], "FILE:NAME"),
    (["{layers}:affine_forward,affine_backward", "--layer", "conv"], "--layer must be one of"),
    (["{layers}:affine_forward,affine_backward", "--layer", "dense", "--max-elements", "0"],
     "--max-elements"),
])
def test_bad_usage_is_one_line_and_exit_2(layers, capsys, argv, message):
    argv = [a.format(layers=layers) for a in argv]
    assert main(["check-backward", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert "layer=" not in err and "shapes=" not in err


def test_an_error_in_the_users_code_is_one_line_and_exit_1(layers, capsys):
    code = main(["check-backward", f"{layers}:affine,broken_backward", "--shapes",
                 "4x3,3x5,5"])
    err = capsys.readouterr().err
    assert code == 1 and "TypeError: unsupported operand" in err and err.count("\n") == 1


def test_help_says_the_file_is_imported_and_run():
    proc = subprocess.run([sys.executable, "-m", "chainrule", "check-backward", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert "IMPORTS AND RUNS THE GIVEN PYTHON FILE" in proc.stdout


def test_the_command_runs_in_a_real_process(layers):
    proc = subprocess.run([sys.executable, "-m", "chainrule", "check-backward",
                           f"{layers}:affine_forward,affine_backward_mean", "--shapes",
                           "4x3,3x5,5"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "mean_twice" not in proc.stderr
    assert "the 1/m of the mean is applied again" in " ".join(proc.stdout.split())
