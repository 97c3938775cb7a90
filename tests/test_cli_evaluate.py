"""`chainrule evaluate` and `predict` on a model saved from Python: a model file that records no
preprocessing and no split says so, and only --all scores the rows it may have been trained on;
a model saved with what `prepare_dataset` records is scored like one from `chainrule train`."""

from __future__ import annotations

import json

import numpy as np
import pytest

import chainrule
from chainrule.cli import main
from chainrule.data import load_dataset, prepare_dataset, train_test_split
from chainrule.nn import Dense, ReLU, Sequential, Softmax


def _fit(X, y):
    model = Sequential([Dense(64, 16), ReLU(), Dense(16, 10), Softmax()], seed=0)
    model.fit(X, y, loss="ce", epochs=3, seed=0, verbose=0)
    return model


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def python_model(digits, tmp_path_factory):
    """Trained on X/16 from Python and saved without a record of that or of its split."""
    X, _, y, _ = train_test_split(digits.X / 16, digits.y, test_size=0.2, seed=0)
    path = tmp_path_factory.mktemp("python") / "digits.safetensors"
    _fit(X, y).save(path)
    return path


def test_a_model_without_a_record_is_not_scored_on_its_training_rows(python_model, capsys):
    assert main(["evaluate", str(python_model), "--data", "digits"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("chainrule evaluate: error: ")
    assert "records no preprocessing and no split" in err and "--all" in err


def test_all_scores_every_row_and_warns_that_features_are_fed_as_read(python_model, capsys):
    assert main(["evaluate", str(python_model), "--data", "digits", "--json", "--all"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["samples"] == 1797
    warning, = captured.err.strip().splitlines()
    assert warning.startswith("chainrule evaluate: warning: ")
    assert "records no preprocessing" in warning and "fed as read, unscaled" in warning


def test_predict_warns_about_a_model_without_a_record(python_model, capsys):
    assert main(["predict", str(python_model), "--data", "iris"]) == 1  # 4 features, not 64
    capsys.readouterr()
    assert main(["predict", str(python_model), "--data", "digits"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1797
    assert captured.err.startswith("chainrule predict: warning: ")
    assert "records no preprocessing" in captured.err


def test_a_model_saved_with_prepare_datasets_record_is_scored_on_its_held_out_rows(
        digits, tmp_path, capsys):
    prepared = prepare_dataset(digits, test_size=0.2, scale="auto", seed=0)
    model = _fit(prepared["X"], prepared["y"])
    model.classes_, model.preprocessing = prepared["classes"], prepared["preprocessing"]
    model.save(tmp_path / "m.safetensors")
    assert main(["evaluate", str(tmp_path / "m.safetensors"), "--data", "digits", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    result = json.loads(captured.out)
    assert result["rows"] == "held-out test rows" and result["samples"] == 360
    # the same figure as the model's own evaluate on the prepared test rows
    expected = chainrule.load(tmp_path / "m.safetensors").evaluate(prepared["X_test"],
                                                                    prepared["y_test"])
    assert np.isclose(result["accuracy"], expected["accuracy"])
    assert np.isclose(result["loss"], expected["loss"])
