"""One vocabulary: the same planted mistake gets the same kind from every checker, every kind a
checker can name is an entry of MISTAKES, and the README lists the catalogue as it is.

The network of the planted mistakes is one dense layer, Z = X @ W, Yhat = sigmoid(Z), with the
binary cross-entropy averaged over m examples: dE/dW = Xᵀ(Yhat - Y)/m, dE/dZ = (Yhat - Y)/m.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from chainrule.gradient_check import (
    MISTAKES,
    CheckResult,
    check_matrix,
    check_model,
    gradcheck,
)
from chainrule.gradient_check.catalogue import describe, mistake
from chainrule.nn import Dense, Sequential, Sigmoid

ROOT = Path(__file__).resolve().parents[1]
CHECKERS = ROOT / "src" / "chainrule" / "gradient_check"

M, N = 6, 3  # examples, inputs (and outputs, so that W is square and a transpose runs)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture
def layer(rng):
    X = rng.normal(size=(M, N))
    W = rng.normal(size=(N, N)) / np.sqrt(N)
    Y = (rng.random((M, N)) > 0.5).astype(float)
    return X, W, Y


def _bce(P, Y):
    return -np.sum(Y * np.log(P) + (1 - Y) * np.log(1 - P)) / len(Y)


# --- the numeric check of a function: gradcheck ---------------------------------------------------


def _gradcheck_kind(mistake_name: str, X, W, Y) -> CheckResult:
    if mistake_name == "derivative_missing":  # dE/dYhat handed in as dE/dZ
        Z = X @ W
        return gradcheck(lambda z: _bce(_sigmoid(z), Y),
                         lambda z: (_sigmoid(z) - Y) / (_sigmoid(z) * (1 - _sigmoid(z))) / M,
                         Z, activation="sigmoid", z=Z, m=M)
    claimed = {
        "sign_flipped": lambda w: -X.T @ (_sigmoid(X @ w) - Y) / M,
        "mean_forgotten": lambda w: X.T @ (_sigmoid(X @ w) - Y),
        "transposed": lambda w: (X.T @ (_sigmoid(X @ w) - Y) / M).T,
    }[mistake_name]
    return gradcheck(lambda w: _bce(_sigmoid(X @ w), Y), claimed, W, m=M)


# --- the symbolic check of a scalar formula: check_formula ----------------------------------------

FORMULAS = {
    "sign_flipped": ("-(yhat - y)", {}),
    "mean_forgotten": ("yhat - y", {"mean": True}),
    "derivative_missing": ("(yhat - y)/(yhat*(1 - yhat))", {}),
    # A transpose has no scalar formula.
}

# --- the matrix check: check_matrix ---------------------------------------------------------------

MATRIX = {
    "sign_flipped": "-X.T @ (Yhat - Y) / m",
    "mean_forgotten": "X.T @ (Yhat - Y)",
    "derivative_missing": "X.T @ ((Yhat - Y) / (Yhat * (1 - Yhat))) / m",
    "transposed": "(Yhat - Y).T @ X / m",
}

# --- the model check: the mistake planted in a layer's backward -----------------------------------


class FlipsItsWeightGradient(Dense):
    def backward(self, grad, need_input_grad=True):
        out = super().backward(grad, need_input_grad)
        self.dW *= -1.0
        return out


class ForgetsTheMeanInItsWeightGradient(Dense):
    def backward(self, grad, need_input_grad=True):
        out = super().backward(grad, need_input_grad)
        self.dW *= grad.shape[0]
        return out


class TransposesItsWeightGradient(Dense):
    def backward(self, grad, need_input_grad=True):
        out = super().backward(grad, need_input_grad)
        self.dW = self.dW.T.copy()
        return out


class SigmoidWithoutItsDerivative(Sigmoid):
    def backward(self, grad):
        return grad


def _model_report(mistake_name: str, X, Y):
    dense, act = Dense, Sigmoid
    if mistake_name == "derivative_missing":
        act = SigmoidWithoutItsDerivative
    else:
        dense = {"sign_flipped": FlipsItsWeightGradient,
                 "mean_forgotten": ForgetsTheMeanInItsWeightGradient,
                 "transposed": TransposesItsWeightGradient}[mistake_name]
    model = Sequential([Dense(N, N), Sigmoid(), dense(N, N), act()], seed=0)
    return check_model(model, X, Y, "bce")


PLANTED = ["sign_flipped", "mean_forgotten", "derivative_missing", "transposed"]


@pytest.mark.parametrize("planted", PLANTED)
def test_the_same_planted_mistake_gets_the_same_kind_from_every_checker(planted, layer):
    X, W, Y = layer
    pytest.importorskip("sympy")
    from chainrule.gradient_check import check_formula

    results = {
        "gradcheck": _gradcheck_kind(planted, X, W, Y),
        "check_matrix": check_matrix(MATRIX[planted], activation="sigmoid", loss="bce"),
        "check_model": _model_report(planted, X, Y),
    }
    if planted in FORMULAS:
        formula, options = FORMULAS[planted]
        results["check_formula"] = check_formula(formula, loss="bce", activation="sigmoid",
                                                 **options)
    for checker, result in results.items():
        assert isinstance(result, CheckResult), checker
        assert not result.correct, checker
        assert result.kind == planted, f"{checker}: {result.kind}: {result.sentence}"
        assert result.sentence, checker


def test_check_model_says_where_the_planted_mistake_is(layer):
    X, _, Y = layer
    report = _model_report("transposed", X, Y)
    assert report.where.startswith("layer 2 (") and report.where.endswith(" W")
    report = _model_report("derivative_missing", X, Y)
    assert report.where.startswith("layer 3 (") and report.where.endswith("dE/dinput")


def test_a_correct_gradient_has_no_kind_in_any_checker(layer):
    X, W, Y = layer
    right = gradcheck(lambda w: _bce(_sigmoid(X @ w), Y),
                      lambda w: X.T @ (_sigmoid(X @ w) - Y) / M, W)
    model = check_model(Sequential([Dense(N, N), Sigmoid()], seed=0), X, Y, "bce")
    matrix = check_matrix("X.T @ (Yhat - Y) / m", activation="sigmoid", loss="bce")
    for result in (right, model, matrix):
        assert result.correct and result.kind is None and result.where is None


@pytest.mark.parametrize("scale", [1e3, 1e9, 0.0])
def test_extreme_inputs_still_give_a_catalogue_kind(scale, layer):
    X, W, Y = layer
    X = X * scale if scale else np.zeros_like(X)
    report = gradcheck(lambda w: np.sum((X @ w - Y) ** 2) / M,
                       lambda w: -2 * X.T @ (X @ w - Y) / M, W, m=M)
    if report.correct:  # X = 0: the gradient is 0 whatever its sign
        assert scale == 0.0 and report.kind is None
    else:
        assert report.kind == "sign_flipped"


def test_a_nan_gradient_is_named_non_finite(layer):
    X, W, Y = layer
    report = gradcheck(lambda w: _bce(_sigmoid(X @ w), Y), lambda w: np.full_like(w, np.nan), W)
    assert report.kind == "non_finite" and report.kind in MISTAKES


# --- every kind is an entry of the catalogue ------------------------------------------------------


def test_a_result_refuses_a_kind_outside_the_catalogue():
    with pytest.raises(ValueError, match="Unknown mistake kind 'mixed_sign'"):
        CheckResult(False, "mixed_sign", None, "a sentence", None)
    from chainrule.gradient_check import Diagnosis

    with pytest.raises(ValueError, match="Unknown mistake kind 'activation_missing'"):
        Diagnosis("activation_missing", "a sentence")


def test_every_entry_says_what_it_means_and_how_to_fix_it():
    for kind, entry in MISTAKES.items():
        assert entry.kind == kind and re.fullmatch(r"[a-z]+(_[a-z]+)*", kind)
        assert entry.meaning and entry.fix and entry.meaning != entry.fix
        assert describe(kind) == f"{kind}: {entry.meaning}"
        assert mistake(kind) is entry


def _constants(node) -> list[str]:
    """The string constants of an expression, dictionary keys left out."""
    found = []
    for child in ast.walk(node):
        if isinstance(child, ast.Dict):
            found += [v.value for v in child.values
                      if isinstance(v, ast.Constant) and isinstance(v.value, str)]
        elif isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) and \
                child.func.attr == "get":
            found += [a.value for a in child.args[1:]
                      if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        found.append(node.value)
    return found


def _says_a_sentence(value) -> bool:
    """Whether a returned value is ``(kind, sentence, ...)``: a tuple whose second item is text
    (an f-string, a string of several words, a sum of them, or a variable named for a
    sentence)."""
    if not isinstance(value, ast.Tuple) or len(value.elts) < 2:
        return False
    second = value.elts[1]
    return (isinstance(second, ast.JoinedStr | ast.BinOp)
            or (isinstance(second, ast.Constant) and isinstance(second.value, str)
                and " " in second.value.strip())
            or (isinstance(second, ast.Name) and "sentence" in second.id))


def _named_kinds(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, kind) of every kind the source names: the first argument of Diagnosis(...), an
    argument followed by a sentence in any call ``f(..., kind, sentence, ...)``, the
    kind of a ShapeMismatch, a ``kind=`` keyword, a value given to a variable ``kind`` or
    ``names``, the first item of a returned ``(kind, sentence, ...)``, and what a function
    ``..._kind`` returns."""
    found = []
    for func in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        for node in ast.walk(func):
            values = []
            if isinstance(node, ast.Return) and _says_a_sentence(node.value):
                values = _constants(node.value.elts[0])
            elif isinstance(node, ast.Return) and node.value is not None and \
                    func.name.endswith("_kind"):
                values = _constants(node.value)
            elif isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id in ("kind", "names") for t in node.targets):
                values = _constants(node.value)
            found += [(node.lineno, v) for v in values]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        if name == "Diagnosis" and node.args:
            found += [(node.lineno, v) for v in _constants(node.args[0])]
        for first, second in zip(node.args, node.args[1:], strict=False):
            if _says_a_sentence(ast.Tuple(elts=[first, second])):
                found += [(node.lineno, v) for v in _constants(first)]
        if name == "ShapeMismatch" and len(node.args) >= 2:
            found += [(node.lineno, v) for v in _constants(node.args[1])]
        for kw in node.keywords:
            if kw.arg == "kind":
                found += [(node.lineno, v) for v in _constants(kw.value)]
    return [(line, v) for line, v in found if re.fullmatch(r"[a-z]{3,}(_[a-z]+)*", v)]


def test_every_kind_named_in_the_checkers_source_is_in_the_catalogue():
    named = {}
    for path in sorted(CHECKERS.rglob("*.py")):
        for line, kind in _named_kinds(ast.parse(path.read_text(encoding="utf-8"))):
            named.setdefault(kind, f"{path.relative_to(ROOT)}:{line}")
    # Not vacuous: the scan finds the kinds of every checker.
    assert {"sign_flipped", "mean_forgotten", "mean_twice", "derivative_missing",
            "derivative_wrong_array", "bias_wrong_axis", "transpose_extra", "term_sign",
            "wrong_factor", "inner_derivative_dropped", "shape", "non_finite"} <= set(named)
    unknown = {kind: where for kind, where in named.items() if kind not in MISTAKES}
    assert not unknown, f"kinds missing from MISTAKES: {unknown}"


# --- the README lists the catalogue ---------------------------------------------------------------


def _readme_catalogue() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("| kind | meaning |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        kind, meaning = (cell.strip() for cell in line.strip("|").split("|", 1))
        rows[kind.strip("`")] = meaning.replace("\\|", "|")
    return rows


def test_the_readme_lists_every_mistake_of_the_catalogue_with_its_meaning():
    listed = _readme_catalogue()
    assert list(listed) == list(MISTAKES)
    assert listed == {kind: entry.meaning for kind, entry in MISTAKES.items()}


@pytest.mark.parametrize("module", ["catalogue", "diagnosis", "numeric", "matrix", "symbolic"])
def test_the_docstring_examples_of_the_checkers_hold(module):
    import doctest
    import importlib

    if module == "symbolic":
        pytest.importorskip("sympy")
    found = importlib.import_module(f"chainrule.gradient_check.{module}")
    result = doctest.testmod(found, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
