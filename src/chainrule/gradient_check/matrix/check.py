"""The driver of a matrix check: :func:`check_matrix` and its verdict.

It reads the formula through the grammar, draws the network's random matrices, compares the
formula with the true gradient on each set, and names the mistake that reproduces it: the
gradient up to a factor or a transpose, a learner's backward pass, another node's gradient.
Only NumPy is imported here.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field

import numpy as np

from chainrule.gradient_check.matrix.grammar import (
    Replace,
    ShapeMismatch,
    evaluate_formula,
    parse_formula,
    read_notation,
    uses_bias,
)
from chainrule.gradient_check.matrix.network import (
    MatrixFormulaError,
    Spec,
    backward_pass,
    canonical_activation,
    canonical_loss,
    draw_configs,
    finite_difference,
    layer_name,
    learner_mistakes,
    size_symbols,
    wrt_node,
)
from chainrule.gradient_check.matrix.sentences import (
    factor_sentence,
    gradient_text,
    mistake_sentence,
    other_node_sentence,
    shape_symbols,
    shape_table,
    sizes_in_words,
    title,
    update_sentence,
)
from chainrule.gradient_check.verdict import Finding, FormulaCheck

__all__ = ["MatrixCheck", "build_spec", "check_matrix"]


@dataclass
class MatrixCheck(FormulaCheck):
    """The outcome of :func:`check_matrix`; ``str()`` is the one-paragraph explanation.

    The keys are those of the scalar :class:`~chainrule.gradient_check.FormulaCheck` plus
    ``shapes`` (name -> shape in symbols, e.g. ``"W": "n×k"``) and ``checked`` (the sizes of
    every random set of matrices the formula was evaluated on)."""

    shapes: dict = field(default_factory=dict)
    checked: list = field(default_factory=list)


_FACTORS = [
    ("", lambda m: 1.0), ("sign", lambda m: -1.0),
    ("m", lambda m: float(m)), ("-m", lambda m: -float(m)),
    ("1/m", lambda m: 1.0 / m), ("-1/m", lambda m: -1.0 / m),
    ("2", lambda m: 2.0), ("1/2", lambda m: 0.5), ("-2", lambda m: -2.0), ("-1/2", lambda m: -0.5),
    ("2m", lambda m: 2.0 * m), ("1/(2m)", lambda m: 0.5 / m),
]


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-12)
    return bool(np.all(np.abs(a - b) <= 1e-6 * scale + 1e-9))


def _match(G_all, configs, candidates) -> tuple[str, bool] | None:
    """(factor label, transposed?) when the formula is a factor of ``candidates`` (one array per
    set of matrices) on every set, possibly transposed; else None."""
    for transposed in (False, True):
        for label, f in _FACTORS:
            if all(_close(G.T if transposed else G, f(c.m) * V)
                   for G, c, V in zip(G_all, configs, candidates, strict=True)):
                if transposed and all(np.shape(G) == np.shape(G.T) for G in G_all):
                    continue
                return label, transposed
    return None


def _with_extras(spec, variable, kind_name, sentence, label, transposed) -> tuple[str, str]:
    """The sentence of a mistake, with the factor and the transpose that come on top of it."""
    extras = []
    if transposed:
        extras.append(f"the result is transposed (a gradient has the shape of what it "
                      f"differentiates: dE/d{variable} has the shape of {variable})")
    factor = factor_sentence(label, spec, variable)
    if factor:
        extras.append(factor)
    if label == "sign":
        extras.append("the sign is wrong")
    return kind_name, sentence + ("; and " + "; and ".join(extras) if extras else "")


def _whole_relation(spec, configs, right, kind, variable, found) -> tuple[str, str]:
    """(kind, sentence) when the formula is the gradient itself up to a factor or a transpose."""
    label, transposed = found
    if label == "" and transposed:
        return "transposed", (
            f"your formula is the transpose of dE/d{variable}: a gradient has the shape of "
            f"what it differentiates, {shape_symbols(spec, configs, right)}"
            + ("; X.T @ D, not D.T @ X" if kind == "W" else ""))
    if label == "sign":
        sentence = update_sentence(spec, variable)
        return "sign_flipped", sentence + ("; and the result is transposed"
                                           if transposed else "")
    names = {"m": "mean_forgotten", "1/m": "mean_twice"} if spec.mean else {}
    name = "transposed" if transposed else names.get(label.lstrip("-"), "scaled")
    sentence = factor_sentence(label, spec, variable)
    if transposed:
        sentence = (f"your formula is the transpose of dE/d{variable} (a gradient has the "
                    f"shape of what it differentiates); and {sentence}")
    return name, sentence


def _diagnose(G_all, spec, configs, truths, kind, layer) -> tuple[str, str] | None:
    """(kind, sentence) of the one mistake that reproduces the formula at every point: the
    gradient up to a factor or a transpose, a learner's backward pass, another node's
    gradient, the bias summed over the wrong axis."""
    node = f"{kind}{layer}"
    variable = layer_name(spec, kind, layer)
    right = [t[node] for t in truths]
    flat = [_flat_row(G, r) for G, r in zip(G_all, right, strict=True)]
    found = _match(flat, configs, right)
    if found is not None:
        return _whole_relation(spec, configs, right, kind, variable, found)
    for mistake in learner_mistakes(spec):
        variants = [backward_pass(spec, c, mistake)[node] for c in configs]
        if all(_close(v, t) for v, t in zip(variants, right, strict=True)):
            continue  # the mistake changes nothing here
        found = _match(flat, configs, variants)
        if found is not None:
            return _with_extras(spec, variable, *mistake_sentence(*mistake, spec), *found)
    for other in [n for n in truths[0] if n != node and n != "H0"]:
        found = _match(G_all, configs, [t[other] for t in truths])
        if found is not None:
            return _with_extras(spec, variable, *other_node_sentence(spec, other, kind, layer),
                                *found)
    for keepdims in (False, True) if kind == "b" else ():
        found = _match(G_all, configs, [np.sum(t[f"Z{layer}"], axis=1, keepdims=keepdims)
                                        for t in truths])
        if found is not None:
            return _with_extras(spec, variable, "bias_wrong_axis", (
                "the sum runs over the wrong axis: axis=1 adds up the outputs of each example; "
                "the bias gradient sums over the batch, axis=0"), *found)
    return None


def build_spec(activation, loss, network, wrt, mean, half, lower) -> Spec:
    if loss is None:
        raise MatrixFormulaError("say which loss the gradient is of: loss='mse', 'bce' or 'ce'.")
    loss = canonical_loss(loss)
    if network is not None:
        names = network.split(",") if isinstance(network, str) else list(network)
        names = [n.strip() for n in names if n.strip()]
        if not names:
            raise MatrixFormulaError(
                f"network= needs the activation of every layer, e.g. 'relu,sigmoid'; got "
                f"{network!r}.")
        acts = tuple(canonical_activation(n) for n in names)
        if activation is not None and canonical_activation(activation) != acts[-1]:
            raise MatrixFormulaError(
                f"activation={activation!r} disagrees with the last layer of "
                f"network={network!r}; leave out activation= (the last name is the output's).")
    else:
        acts = (canonical_activation(activation or "identity"),)
    if "softmax" in acts[:-1]:
        raise MatrixFormulaError("softmax is an output activation here; put it last in network=.")
    if loss == "bce" and acts[-1] not in ("sigmoid", "softmax"):
        raise MatrixFormulaError(
            f"bce needs outputs in (0, 1), and {acts[-1]} gives other values; use a sigmoid "
            "output (activation='sigmoid', or sigmoid last in network=).")
    if loss == "ce" and acts[-1] not in ("softmax", "sigmoid"):
        raise MatrixFormulaError(
            f"ce needs probabilities, and {acts[-1]} gives other values; use a softmax output "
            "(activation='softmax', or softmax last in network=).")
    if half and loss != "mse":
        raise MatrixFormulaError("half=True applies to the squared error only (loss='mse').")
    return Spec(acts, loss, bool(half), bool(mean), network is None, bool(lower))


def check_matrix(
    formula: str,
    *,
    loss: str | None = None,
    activation: str | None = None,
    network=None,
    wrt: str | None = None,
    mean: bool = True,
    half: bool = False,
    seed: int = 0,
    _vector: bool = False,
    _depth: int = 0,
) -> MatrixCheck:
    r"""Check the hand-written matrix gradient ``formula`` and name the mistake.

    The steps: read the formula through the whitelist; draw random matrices of three sets of
    sizes and compute the true gradient on each (checked against finite differences); evaluate
    the formula on them; then the verdict: shapes that cannot fit (with the fix, and what the
    fixed formula still gets wrong), correct, or the learner's mistake that reproduces it.

    Parameters
    ----------
    formula
        The gradient in NumPy notation: ``X.T @ (Yhat - Y) / m``. Names: ``X`` (m×n input),
        ``Y`` or ``T`` (m×k targets), ``Yhat``, ``P`` or ``O`` (m×k output), ``m``; for one
        layer ``W`` (n×k), ``b`` (k), ``Z`` (m×k); in a network ``W1``, ``b1``, ``Z1``,
        ``H1`` (m×h1), ... Operations: ``@``, ``.T``, element-wise ``+ - * /``, ``**`` with a
        number, comparisons such as ``(Z > 0)``, ``sum`` and ``mean`` (``axis=0``, also as
        ``.sum(axis=0)``), ``exp``, ``log``, ``sqrt``, ``abs``, every built-in activation
        (``sigmoid(Z)``, ``softmax(Z)`` row by row) and its derivative (``sigmoid_prime(Z)``).
    loss
        ``"mse"``, ``"bce"`` or ``"ce"``; summed over the k outputs of an example.
    activation
        The output activation of one dense layer (default identity).
    network
        Instead of ``activation``: the activation of every layer, first to last
        (``"relu,sigmoid"`` or a list); names then carry the layer's number.
    wrt
        The variable: ``"W"`` (default), ``"b"``, ``"Z"``, ``"X"``, ``"Yhat"``; in a network
        ``"W1"``, ``"b2"``, ``"Z1"``, ``"H1"``, ...
    mean
        The loss is the mean over the m examples (default; the gradient carries 1/m); False:
        the sum.
    half
        With ``loss="mse"``: the loss is ½(Yhat - Y)².
    seed
        The random matrices are drawn from ``numpy.random.default_rng(seed)``.

    Returns
    -------
    MatrixCheck
        ``correct``, ``kind`` (a key of :data:`~chainrule.gradient_check.MISTAKES`),
        ``sentence``, the expected gradient and the shapes.

    Raises
    ------
    MatrixFormulaError
        (a ValueError) for syntax outside the whitelist, unknown names, shapes that cannot
        multiply, or options that contradict each other; one line naming the problem.

    Examples
    --------
    >>> result = check_matrix("X.T @ (Yhat - Y)", loss="mse", half=True)
    >>> result.correct, result.kind
    (False, 'mean_forgotten')
    >>> check_matrix("X.T @ (Yhat - Y) / m", loss="mse", half=True).correct
    True
    """
    formula = read_notation(formula)  # Xᵀ, Ŷ, W₁ as the page prints them
    tree = parse_formula(formula)
    spec = build_spec(activation, loss, network, wrt, mean, half, _vector)
    problem = _Problem.make(spec, tree, formula, wrt, seed)
    try:
        G_all = problem.evaluate(tree)
    except ShapeMismatch as exc:

        def recheck(fixed: str) -> MatrixCheck:
            return check_matrix(fixed, loss=loss, activation=activation, network=network,
                                wrt=wrt, mean=mean, half=half, seed=seed, _vector=_vector,
                                _depth=_depth + 1)

        return _shape_verdict(problem, tree, exc, recheck if _depth < 3 else None)
    return _verdict(problem, G_all)


@dataclass
class _Problem:
    """What a formula is checked against: the variable, the random sets of matrices, the true
    gradient on each, and the texts of the verdict."""

    spec: Spec
    shown: str
    kind: str
    layer: int
    bias: bool
    configs: list
    truths: list
    symbols: dict

    @classmethod
    def make(cls, spec: Spec, tree, formula: str, wrt: str | None, seed: int) -> _Problem:
        L = len(spec.acts)
        default_wrt = "z" if spec.lower else ("W" if spec.single else f"W{L}")
        kind, layer = wrt_node(spec, wrt or default_wrt)
        bias = (uses_bias(tree) or kind == "b") and not spec.lower
        configs = draw_configs(spec, bias, seed)
        truths = [backward_pass(spec, c) for c in configs]
        node = f"{kind}{layer}"
        for c, t in zip(configs, truths, strict=True):  # the backward pass meets the oracle
            if not _close(t[node], finite_difference(spec, c, node)):  # pragma: no cover
                raise RuntimeError(f"the backward pass disagrees with finite differences for "
                                   f"{node}; please report this with the formula.")
        return cls(spec, " ".join(formula.split()), kind, layer, bias, configs, truths,
                   size_symbols(spec, configs[0]))

    @property
    def node(self) -> str:
        return f"{self.kind}{self.layer}"

    @property
    def variable(self) -> str:
        return layer_name(self.spec, self.kind, self.layer)

    @property
    def subject(self) -> str:
        return f"dE/d{self.variable}"

    @functools.cached_property
    def derivative(self) -> str:
        return gradient_text(self.spec, self.kind, self.layer)

    @functools.cached_property
    def of(self) -> str:
        return title(self.spec, self.bias)

    def evaluate(self, tree) -> list[np.ndarray]:
        """The formula on every set of matrices (shapes in symbols on the first)."""
        return [evaluate_formula(tree, self.shown, self.spec, c, self.symbols if i == 0 else None)
                for i, c in enumerate(self.configs)]

    def result(self, correct: bool, kind: str | None, findings: list, paragraph: str):
        return MatrixCheck(
            correct=correct, kind=kind, where=None if correct else self.subject,
            sentence=paragraph, expected=self.derivative, formula=self.shown,
            derivative=self.derivative, simplified=self.derivative, variable=self.variable,
            of=self.of, method="numeric", findings=findings,
            shapes=shape_table(self.spec, self.configs[0], self.symbols, self.bias),
            checked=[{"m": c.m, "sizes": list(c.sizes)} for c in self.configs],
        )

    def wrong(self, kind: str | None, problem: str, sentence: str, paragraph: str) -> MatrixCheck:
        """A verdict of one finding."""
        return self.result(False, kind, [Finding(self.shown, problem, self.derivative, sentence)],
                           paragraph)


def _shape_verdict(problem: _Problem, tree, exc: ShapeMismatch, recheck) -> MatrixCheck:
    """Shapes that cannot multiply or add: the mistake, and what its fix leaves wrong."""
    message = str(exc)
    sentence = f"It has {message[0].lower()}{message[1:]}"
    if exc.replacement is not None and recheck is not None:
        fixed = ast.unparse(Replace(exc.target, exc.replacement).visit(tree))
        try:
            again = recheck(fixed)
        except MatrixFormulaError:
            again = None
        if again is not None and again.correct:
            sentence += f" With that change, {fixed}, the gradient is right."
        elif again is not None and again.findings and again.findings[0].rule:
            rest = again.findings[0].rule
            sentence += (f" With that change, {fixed}, it is still wrong: "
                         f"{rest[:1].lower()}{rest[1:]}")
    p = problem
    return p.wrong(exc.kind, exc.kind.replace("_", " "), sentence,
                   f"Not correct: your {p.subject}, {p.shown}, cannot be the gradient of the "
                   f"{p.of}, which is {p.derivative}. {sentence}")


def _flat_row(G: np.ndarray, T: np.ndarray) -> np.ndarray:
    """A bias gradient kept as a 1×k row (``keepdims=True``, ``ones((1, m)) @ D``) read as the
    k entries of the bias."""
    if G.shape != T.shape and G.size == T.size and T.ndim == 1 and G.ndim == 2 and 1 in G.shape:
        return G.reshape(T.shape)
    return G


def _same(G: np.ndarray, T: np.ndarray) -> bool:
    return _close(_flat_row(G, T), T)


def _verdict(p: _Problem, G_all: list[np.ndarray]) -> MatrixCheck:
    """Correct, the mistake of the catalogue that reproduces the formula, or what differs."""
    for G, c in zip(G_all, p.configs, strict=True):
        if not np.all(np.isfinite(G)):
            raise MatrixFormulaError(
                f"{p.shown!r} gives NaN or infinite values on finite matrices (m = {c.m}): a "
                "log or a division of 0 somewhere.")
    bias_note = "" if p.bias or p.spec.lower else " (no bias: your formula does not use b)"
    if all(_same(G, t[p.node]) for G, t in zip(G_all, p.truths, strict=True)):
        sizes_text = "; ".join(sizes_in_words(p.spec, c) for c in p.configs)
        what = "vectors" if p.spec.lower and not p.spec.mean else "sets of matrices"
        return p.result(True, None, [], (
            f"Correct: {p.shown} is {p.subject} of the {p.of}{bias_note}: {p.derivative}. "
            f"Checked against float64 central finite differences on {len(p.configs)} random "
            f"{what} ({sizes_text})."))
    head = (f"Not correct: your {p.subject}, {p.shown}, is not the gradient of the "
            f"{p.of}{bias_note}, which is {p.derivative}.")
    found = _diagnose(G_all, p.spec, p.configs, p.truths, p.kind, p.layer)
    if found is not None:
        kind_name, sentence = found
        sentence = sentence[:1].upper() + sentence[1:]
        return p.wrong(kind_name, kind_name.replace("_", " "), f"{sentence}.",
                       f"{head} {sentence}.")
    return _unexplained(p, G_all[0], head)


def _unexplained(p: _Problem, G0: np.ndarray, head: str) -> MatrixCheck:
    """No mistake of the catalogue: the shapes that differ, or the worst element."""
    T0 = p.truths[0][p.node]
    if G0.shape != T0.shape:
        want = "×".join(p.symbols.get(s, str(s)) for s in T0.shape) or "a number"
        got = "×".join(p.symbols.get(s, str(s)) for s in G0.shape) or "a number"
        gives = "a number" if G0.ndim == 0 else f"an array of shape {got}"
        sentence = (f"Your formula gives {gives}, but {p.subject} has the shape of "
                    f"{p.variable}, {want}; no single mistake of the catalogue explains the rest.")
        return p.wrong("shape", "shape", sentence, f"{head} {sentence}")
    idx = np.unravel_index(int(np.argmax(np.abs(G0 - T0))), T0.shape)
    where = ", ".join(str(int(i)) for i in idx)
    sentence = (f"No single mistake of the catalogue explains it (a transpose, the order of "
                f"the factors, the 1/m, g'(Z), the sign, the softmax Jacobian, another layer): "
                f"at [{where}] with m = {p.configs[0].m} your formula gives {G0[idx]:.6g}, the "
                f"gradient is {T0[idx]:.6g}.")
    return p.wrong(None, problem="different", sentence=sentence, paragraph=f"{head} {sentence}")
