"""`chainrule train`, `predict` and `evaluate` through main(argv) and one real subprocess."""

import json
import subprocess
import sys

import numpy as np
import pytest

from chainrule.cli import main

pytest.importorskip("sklearn")  # the built-in datasets are the files scikit-learn ships


def test_default_train_reaches_95_percent_on_digits(capsys):
    assert main(["train", "--quiet"]) == 0
    out = capsys.readouterr().out
    line = next(s for s in out.splitlines() if s.startswith("Test accuracy:"))
    accuracy = float(line.split()[-1].rstrip("%")) / 100
    assert accuracy >= 0.95


@pytest.mark.parametrize(("argv", "threads"), [([], None), (["--threads", "2"], 2)])
def test_threads_option_reaches_fit(monkeypatch, capsys, argv, threads):
    from chainrule import training

    seen = {}
    real_fit = training.fit

    def spy(*args, **kwargs):
        seen["threads"] = kwargs["threads"]
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(training, "fit", spy)
    assert main(["train", "--data", "iris", "--epochs", "2", "--quiet", *argv]) == 0
    assert seen == {"threads": threads}


def test_json_summary(capsys):
    assert main(["train", "--data", "iris", "--layers", "8", "--epochs", "5", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in (
        "dataset",
        "architecture",
        "epochs_run",
        "train",
        "test",
        "seconds",
        "samples_per_second",
    ):
        assert key in summary
    assert summary["dataset"] == "iris" and summary["epochs_run"] == 5
    assert summary["architecture"]["sizes"] == [4, 8, 3]
    assert 0.0 <= summary["test"]["accuracy"] <= 1.0


def test_save_then_predict_and_evaluate(tmp_path, capsys):
    model = tmp_path / "wine.safetensors"
    assert main(["train", "--data", "wine", "--epochs", "20", "--quiet", "--out", str(model)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model), "--data", "wine", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["samples"] == 178 and metrics["accuracy"] > 0.9
    assert main(["predict", str(model), "--data", "wine"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 178 and set(lines) <= {"0", "1", "2"}


def test_binary_dataset_uses_sigmoid_and_bce(capsys):
    assert main(["train", "--data", "breast_cancer", "--epochs", "5", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["loss"] == "bce" and summary["architecture"]["sizes"][-1] == 1
    assert summary["test"]["accuracy"] > 0.9


def test_regression_dataset(capsys):
    assert main(["train", "--data", "diabetes", "--epochs", "5", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["task"] == "regression" and summary["loss"] == "mse"
    assert "accuracy" not in summary["test"]


def test_csv_with_named_target(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    label = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    path = tmp_path / "d.csv"
    rows = ["a,b,label,c"] + [f"{x[0]},{x[1]},{t},{x[2]}" for x, t in zip(X, label, strict=True)]
    path.write_text("\n".join(rows) + "\n")
    assert (
        main(["train", "--data", str(path), "--target", "label", "--epochs", "30", "--json"]) == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["test"]["accuracy"] > 0.8


def test_plot_writes_png(tmp_path, capsys):
    png = tmp_path / "curve.png"
    assert main(["train", "--data", "iris", "--epochs", "3", "--quiet", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["train", "--data", "no/such/file.csv"], 1, "no/such/file.csv"),
        (["train", "--layers", "a,b"], 2, "--layers"),
        (["train", "--activation", "sigmoidal"], 2, "invalid choice"),
        (["train", "--epochs", "0"], 1, "--epochs must be >= 1"),
        (["train", "--clip-norm", "-1"], 1, "--clip-norm must be a positive number"),
        (["train", "--threads", "0"], 1, "--threads must be >= 1; got 0"),
        (["train", "--threads", "two"], 2, "--threads"),
        (["evaluate", "missing.safetensors", "--data", "iris"], 1, "missing.safetensors"),
    ],
)
def test_errors_are_one_line_with_exit_codes(argv, code, message, capsys):
    if code == 2:
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    else:
        assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    if code == 1:
        assert len(err.strip().splitlines()) == 1


def test_help_on_every_command(capsys):
    for command in ("train", "predict", "evaluate", "derive", "check", "plot"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        assert "usage: chainrule " + command in capsys.readouterr().out


def test_real_subprocess():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "chainrule.cli",
            "train",
            "--data",
            "iris",
            "--epochs",
            "2",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Test accuracy:" in proc.stdout


def test_predict_on_a_csv_of_features_only(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 2))
    y = (X[:, 0] > 0).astype(int)
    train = tmp_path / "train.csv"
    train.write_text("a,b,y\n" + "".join(f"{a},{b},{t}\n" for (a, b), t in zip(X, y, strict=True)))
    features = tmp_path / "new.csv"
    features.write_text("a,b\n2.0,0.1\n-2.0,0.3\n")
    model = tmp_path / "m.safetensors"
    argv = ["train", "--data", str(train), "--epochs", "40", "--quiet", "--out", str(model)]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["predict", str(model), "--data", str(features)]) == 0
    assert capsys.readouterr().out.split() == ["1", "0"]


def test_clip_norm_reaches_the_optimizer(tmp_path, capsys):
    import chainrule

    out = tmp_path / "iris.safetensors"
    argv = ["train", "--data", "iris", "--epochs", "2", "--clip-norm", "0.5", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    capsys.readouterr()
    assert "clip_norm=0.5" in chainrule.load(out).training_config["optimizer"]
