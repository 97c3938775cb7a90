r"""Check a hand-derived derivative symbolically and say, term by term, what is wrong.

:func:`check_formula` parses the formula with the derivation engine's whitelist parser (never
``eval`` or ``sympify``), differentiates the loss, the activation or the function with SymPy,
and decides equality symbolically or, where SymPy cannot reduce the difference to 0, at random
points (a counterexample is conclusive). When the formula is wrong it looks for, in order:

1. one relation for the whole formula: the opposite sign (a leading minus dropped), a constant
   factor (2 versus 1/2 in a squared error, :math:`m`), an activation derivative missing or
   extra, or the gradient of the wrong variable (dE/dz written for dE/dyhat);
2. term by term against the terms of the loss: which term has the wrong sign, which factor is
   missing or extra, which term is missing or extra, and the rule that gives the right one
   ("d/dyhat log(1 - yhat) = -1/(1 - yhat): the chain rule's inner derivative is -1").

The classic sign slip in the binary cross-entropy's derivative:

>>> print(check_formula("-(y/yhat + (1-y)/(1-yhat))", loss="bce").findings[0].problem)
wrong sign

The work is split by job: :mod:`.target` (what the formula is the derivative of, and the
rules), :mod:`.equality` (symbolic and numeric equality), :mod:`.relations` (the relations of
the whole formula), :mod:`.terms` (term by term), :mod:`.text` (how expressions are written)
and :mod:`.check` (the driver). SymPy is imported by this subpackage only.
"""

from __future__ import annotations

from chainrule.gradient_check.symbolic.check import check_formula
from chainrule.gradient_check.verdict import Finding, FormulaCheck

__all__ = ["Finding", "FormulaCheck", "check_formula"]
