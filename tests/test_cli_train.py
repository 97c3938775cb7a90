"""`chainrule train`, `predict` and `evaluate` through main(argv) and one real subprocess."""

import json
import subprocess
import sys

import numpy as np
import pytest

import chainrule
from chainrule.cli import main
from chainrule.nn import mlp

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
    # The rows train held out (20% of 178, stratified), not the ones it was trained on.
    assert metrics["samples"] == 36 and metrics["accuracy"] > 0.9
    assert metrics["rows"] == "held-out test rows"
    assert main(["evaluate", str(model), "--data", "wine", "--json", "--all"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["samples"] == 178 and metrics["rows"] == "all rows"
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
        (["train", "--epochs", "0"], 2, "argument --epochs: expected an integer >= 1; got 0"),
        (["train", "--clip-norm", "-1"], 2, "argument --clip-norm: expected a positive number"),
        (["train", "--threads", "0"], 2, "argument --threads: expected an integer >= 1; got 0"),
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
    # An extra column (an id in front) is not guessed away as a target: it is refused, where
    # dropping the last column would predict from the wrong features with exit 0.
    extra = tmp_path / "extra.csv"
    extra.write_text("id,a,b\n7,2.0,0.1\n8,-2.0,0.3\n")
    assert main(["predict", str(model), "--data", str(extra)]) == 1
    err = capsys.readouterr().err
    assert "extra.csv has 3 features but the model" in err and "--target" in err
    # Named with --target, a column is ignored.
    assert main(["predict", str(model), "--data", str(extra), "--target", "id"]) == 0
    assert capsys.readouterr().out.split() == ["1", "0"]


def test_clip_norm_reaches_the_optimizer(tmp_path, capsys):
    import chainrule

    out = tmp_path / "iris.safetensors"
    argv = ["train", "--data", "iris", "--epochs", "2", "--clip-norm", "0.5", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    capsys.readouterr()
    assert "clip_norm=0.5" in chainrule.load(out).training_config["optimizer"]


# --- every invalid option value is bad usage: exit 2, argparse's one-line message -----------------


@pytest.mark.parametrize(
    "option, value",
    [("--epochs", "0"), ("--epochs", "-3"), ("--epochs", "2.5"), ("--batch-size", "0"),
     ("--lr", "0"), ("--lr", "-1e-3"), ("--lr", "nan"), ("--lr", "inf"), ("--clip-norm", "0"),
     ("--dropout", "1"), ("--dropout", "-0.1"), ("--validation-split", "1.5"),
     ("--early-stopping", "0"), ("--test-size", "0"), ("--test-size", "1"), ("--seed", "-1"),
     ("--layers", "0"), ("--layers", "64,-1"), ("--scale", "robust"), ("--loss", "hinge")],
)
def test_every_invalid_option_value_exits_2(option, value, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", option, value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert option in err and "Traceback" not in err


def test_one_epoch_is_singular(capsys):
    assert main(["train", "--data", "iris", "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert ": 1 epoch in " in out and "1 epochs" not in out


# --- defaults a user would choose ---------------------------------------------------------------


def test_regression_targets_are_standardised_and_the_model_predicts_in_their_units(
        tmp_path, capsys):
    from chainrule import load
    from chainrule.data import load_dataset

    model_file = tmp_path / "diabetes.safetensors"
    assert main(["train", "--data", "diabetes", "--json", "--out", str(model_file)]) == 0
    summary = json.loads(capsys.readouterr().out)
    y = load_dataset("diabetes").y
    # Better than predicting the mean (R^2 > 0, MSE below the variance 5,930): unscaled
    # targets in the hundreds gave a test MSE of 15,118 with the same network.
    assert summary["test"]["r2"] > 0.3 and summary["test"]["loss"] < 0.7 * y.var()
    assert summary["train"]["r2"] > 0.3
    model = load(model_file)
    scaling = model.preprocessing["target_scaling"]
    assert abs(scaling["mean"][0] - y.mean()) < 20  # the training rows' mean, near y's
    # The saved model predicts in the targets' units, with no extra step.
    assert main(["predict", str(model_file), "--data", "diabetes"]) == 0
    pred = np.array(capsys.readouterr().out.split(), dtype=float)
    assert len(pred) == len(y) and abs(pred.mean() - y.mean()) < 20 and pred.std() > 30
    assert main(["evaluate", str(model_file), "--data", "diabetes"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("diabetes (held-out test rows): 89 samples") and "R^2 " in line
    r2 = float(line.rsplit("R^2 ", 1)[1])
    assert abs(r2 - summary["test"]["r2"]) < 1e-3


def test_r2_is_one_minus_sse_over_sst():
    from chainrule._cli._metrics import with_r2

    class Fixed:  # predicts 1, 2, 3 for targets 1, 2, 4: SSE = 1, SST = 14/3
        task = "regression"

        def evaluate(self, X, y):
            return {"loss": 1 / 3, "samples": 3}

        def predict(self, X):
            return np.array([[1.0], [2.0], [3.0]])

    metrics = with_r2(Fixed(), np.zeros((3, 1)), np.array([1.0, 2.0, 4.0]))
    assert metrics["r2"] == pytest.approx(1 - 1 / (14 / 3))


def test_fold_target_scaling_is_exact():
    from chainrule._cli.train import fold_target_scaling, standardise_targets
    from chainrule.nn import mlp

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.normal(50, 7, size=(20, 2))
    z, (mean, scale) = standardise_targets(y)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-12)
    model = mlp([3, 4, 2], output="identity", seed=0, dtype=np.float64)
    before = model.predict(X)
    fold_target_scaling(model, mean, scale)
    np.testing.assert_allclose(model.predict(X), before * scale + mean, rtol=1e-12)


@pytest.mark.parametrize(
    "X, expected",
    [(np.array([[0.0, 0.5], [1.0, 0.25]]), "none"),   # images, already divided by 255
     (np.array([[0.0, 16.0], [3.0, 8.0]]), "standard"),  # digits' 0-16 pixel counts
     (np.array([[-0.5, 0.2], [0.1, 0.3]]), "standard")],
)
def test_scale_auto_leaves_unit_interval_data_and_standardises_the_rest(X, expected):
    from chainrule.data import resolve_scale

    assert resolve_scale("auto", X) == expected
    assert resolve_scale("minmax", X) == "minmax"


def test_scale_auto_is_the_default_and_recorded(capsys):
    assert main(["train", "--data", "iris", "--epochs", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scale"] == "standard"


# --- divergence, refused pairings, every option, NPZ and IDX data, one-line errors ----------------


def _one_line_error(capsys, code, argv, *fragments):
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


def test_cli_divergence_is_one_line_exit_1(capsys):
    _one_line_error(capsys, 1, ["train", "--data", "iris", "--optimizer", "sgd", "--lr", "1e30",
                                "--epochs", "3", "--quiet"],
                    "diverged", "Lower the learning rate")


def test_cli_refuses_tanh_with_bce_and_bce_on_three_classes(capsys):
    _one_line_error(capsys, 1, ["train", "--data", "breast_cancer", "--output-activation", "tanh",
                                "--epochs", "1", "--quiet"], "Sigmoid", "bce_with_logits")
    # an option that does not fit the data: bad usage
    _one_line_error(capsys, 2, ["train", "--data", "iris", "--loss", "bce", "--epochs", "1"],
                    "--loss bce is for two classes")


def test_cli_options_reach_the_model_and_the_summary(tmp_path, capsys):
    argv = ["train", "--data", "iris", "--layers", "8,6", "--activation", "tanh",
            "--output-activation", "softmax", "--loss", "ce", "--optimizer", "sgd", "--lr", "0.05",
            "--epochs", "6", "--batch-size", "16", "--validation-split", "0.2",
            "--early-stopping", "50", "--seed", "3", "--json", "--out", str(tmp_path / "m.st")]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["architecture"]["sizes"] == [4, 8, 6, 3]
    assert first["architecture"]["activation"] == "tanh"
    assert first["architecture"]["layers"][1] == "Tanh()"
    assert first["optimizer"] == "sgd" and first["lr"] == 0.05 and first["loss"] == "ce"
    assert first["epochs_run"] == 6 and first["validation"] is not None
    assert first["samples"] == {"train": 120, "test": 30}
    model = chainrule.load(tmp_path / "m.st")
    assert model.training_config["batch_size"] == 16 and model.training_config["seed"] == 3
    assert model.training_config["optimizer"].startswith("SGD(lr=0.05")
    # same seed, same data: the same numbers again
    assert main(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["train"] == first["train"] and second["test"] == first["test"]


def test_cli_trains_on_an_npz_and_an_idx_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--epochs", "3", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["architecture"]["sizes"][0] == 3 and summary["samples"]["test"] == 12

    folder = tmp_path / "idx"
    folder.mkdir()
    for stem, n in (("train", 20), ("t10k", 10)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for kind, arr, code in (("images-idx3", images, 3), ("labels-idx1", labels, 1)):
            head = bytes([0, 0, 0x08, code]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
            (folder / f"{stem}-{kind}-ubyte").write_bytes(head + arr.tobytes())
    model = tmp_path / "m.safetensors"
    assert main(["train", "--data", str(folder), "--layers", "8", "--epochs", "1", "--json",
                 "--out", str(model)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["architecture"]["sizes"] == [784, 8, 10]
    assert summary["samples"] == {"train": 20, "test": 10}
    assert main(["evaluate", str(model), "--data", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 10


def test_cli_predict_and_evaluate_errors_are_one_line(tmp_path, capsys):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"not a model at all, just text\n")
    _one_line_error(capsys, 1, ["predict", str(path), "--data", "iris"], "junk.safetensors")
    model = mlp([5, 2], output="softmax", seed=0)
    model.task = "classification"
    good = model.save(tmp_path / "five.safetensors")
    np.savez(tmp_path / "three.npz", X=np.zeros((4, 3)), y=np.zeros(4, dtype=int))
    _one_line_error(capsys, 1, ["evaluate", str(good), "--data", str(tmp_path / "three.npz")],
                    "expects 5")


def test_cli_real_subprocess_exit_codes(tmp_path):
    for argv, code in ((["train", "--layers", "x"], 2), (["evaluate", "nope.st", "--data", "iris"],
                                                         1)):
        proc = subprocess.run([sys.executable, "-m", "chainrule.cli", *argv], capture_output=True,
                              text=True, timeout=60, cwd=tmp_path)
        assert proc.returncode == code, proc.stderr
        assert "Traceback" not in proc.stderr


def test_a_learning_rate_far_too_large_is_named_in_one_warning_line(capsys):
    assert main(["train", "--lr", "100", "--epochs", "5", "--quiet"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "warning" in line]
    assert len(lines) == 1 and lines[0].startswith("chainrule train: warning: The training loss")
    assert "lr=100 is most likely too large for Adam" in lines[0]


# --- convolutions and pools in --layers -------------------------------------------------------


def test_train_a_cnn_on_digits_save_it_and_evaluate_it(tmp_path, capsys):
    out = tmp_path / "cnn.safetensors"
    argv = ["train", "--data", "digits", "--layers", "c4k3,p2,16", "--epochs", "2",
            "--batch-size", "64", "--json", "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    # digits are 8 x 8 pixels: conv 3x3 -> 6x6 x 4 channels, pool 2 -> 3x3, 36 features
    assert summary["architecture"]["sizes"] == ["1x8x8", "c4k3", "p2", 16, 10]
    assert summary["architecture"]["layers"][:4] == ["Conv2D(1, 4, kernel_size=3)", "ReLU()",
                                                     "MaxPool2D(2)", "Flatten()"]
    # 4*9 + 4 = 40; 36*16 + 16 = 592; 16*10 + 10 = 170
    assert summary["architecture"]["parameters"] == 40 + 592 + 170
    assert chainrule.load(out).input_shape == (1, 8, 8)
    assert main(["evaluate", str(out), "--data", "digits", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["accuracy"] == pytest.approx(summary["test"]["accuracy"])


@pytest.mark.parametrize(("layers", "bad"), [("c32k3,q2", "'q2'"), ("c32", "'c32'"),
                                             ("c8k3,,16", "''")])
def test_a_bad_layer_token_is_a_usage_error_naming_it_and_the_grammar(capsys, layers, bad):
    with pytest.raises(SystemExit) as info:
        main(["train", "--data", "digits", "--layers", layers])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"--layers {bad}: not a layer; the grammar is <n> (a dense layer of n units), " in err
    assert "c<out>k<kernel>[s<stride>][p<pad>] (a convolution), p<k> (max pooling)" in err


def test_convolutions_on_data_that_are_not_square_images_are_refused(capsys):
    assert main(["train", "--data", "wine", "--layers", "c4k3,8"]) == 2
    assert "need square images; the data has 13 features" in capsys.readouterr().err


def test_images_smaller_than_the_layers_need_are_refused(capsys):
    assert main(["train", "--data", "iris", "--layers", "c4k3,8"]) == 2  # 4 features: 2 x 2
    assert ("--layers: c4k3 gets images of 2 x 2 pixels, smaller than its window"
            in capsys.readouterr().err)


def test_help_documents_the_layer_grammar(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "cOUTkK[sS][pP] a convolution" in text and "pK max pooling, aK average pooling" in text
    assert "c32k3,p2,c64k3,p2,128" in text
