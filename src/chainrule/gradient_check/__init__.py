r"""A gradient checker that names the mistake.

Every checker that exists answers "pass" or "fail" (or prints a norm). This one also compares
the claimed gradient :math:`G` with the true one :math:`T` and states the relation between
them when one holds at every checked point: a flipped sign, a factor :math:`m` (the forgotten
:math:`1/m`), a transpose, a missing or doubled activation derivative, one term with the wrong
sign, ...

- :func:`gradcheck` checks a function and its claimed gradient with float64 central differences
  (Richardson extrapolation, adaptive step) and returns a :class:`GradcheckReport`;
- :func:`check_model` checks every layer of a chainrule model and names the first layer whose
  backward disagrees (:class:`ModelCheckReport`);
- :func:`diagnose` is the numerical diagnosis on its own; a :class:`Hints` (or its fields as
  keywords of :func:`gradcheck` and :func:`diagnose`) gives it the context: the activation and
  its input, the batch size, the targets, the terms;
- :func:`check_formula` checks a hand-derived formula symbolically (SymPy, loaded on first use)
  and says which term has the wrong sign and which rule gives the right one;
- :func:`check_matrix` checks a hand-written matrix gradient of a dense layer or network
  (``X.T @ (Yhat - Y) / m``) against finite differences and names the mistake;
  :func:`check_layer` does the same for batch norm, layer norm and attention.
- :func:`check_backward` checks a hand-written backward pass (NumPy, a
  ``torch.autograd.Function``, a ``jax.custom_vjp``) input by input and names the mistake.

Every checker names a mistake by a ``kind`` of :data:`MISTAKES`, the one catalogue (kind ->
:class:`Mistake`: what it means, and the rule that fixes it), and answers a
:class:`CheckResult` (``correct``, ``kind``, ``where``, ``sentence``, ``expected``,
``to_json()``), each checker's report adding its own details.

The modules, one job each: :mod:`.catalogue` (the mistakes and the result), :mod:`.names` (how
activations and losses are written in the sentences), :mod:`.diagnosis` (the numerical
relations), :mod:`.numeric` (:func:`gradcheck`), :mod:`.model` (:func:`check_model`),
:mod:`.verdict` (the result of a formula check), :mod:`.matrix` and :mod:`.symbolic` (the
matrix and the scalar formula checks, each a subpackage split by job). The finite differences of
the matrix checks live in :mod:`chainrule._oracle`. Only NumPy is imported here;
:mod:`chainrule.gradient_check.symbolic` imports SymPy.
"""

from __future__ import annotations

from chainrule.gradient_check.catalogue import MISTAKES, CheckResult, Mistake
from chainrule.gradient_check.diagnosis import Diagnosis, Hints, diagnose
from chainrule.gradient_check.model import LayerCheck, ModelCheckReport, check_model
from chainrule.gradient_check.numeric import GradcheckReport, PrecisionWarning, gradcheck
from chainrule.gradient_check.verdict import Finding, FormulaCheck

__all__ = [
    "MISTAKES",
    "BackwardCheck",
    "CheckResult",
    "Diagnosis",
    "Finding",
    "FormulaCheck",
    "GradcheckReport",
    "Hints",
    "LayerCheck",
    "MatrixCheck",
    "Mistake",
    "ModelCheckReport",
    "PrecisionWarning",
    "check_backward",
    "check_formula",
    "check_layer",
    "check_matrix",
    "check_model",
    "diagnose",
    "gradcheck",
]


def __getattr__(name: str):
    if name == "check_formula":
        from chainrule.gradient_check import symbolic

        value = getattr(symbolic, name)
        globals()[name] = value
        return value
    if name in ("check_matrix", "check_layer", "MatrixCheck"):
        from chainrule.gradient_check import matrix

        value = getattr(matrix, name)
        globals()[name] = value
        return value
    if name in ("check_backward", "BackwardCheck"):
        from chainrule.gradient_check import backward

        value = getattr(backward, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'chainrule.gradient_check' has no attribute {name!r}")
