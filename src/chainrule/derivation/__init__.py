r"""The derivation engine: derivatives step by step, simplified, checked, with domains flagged.

SymPy is imported by this package only, never by the core, so ``import chainrule`` stays fast.

- :func:`derive` (in :mod:`chainrule.derivation.api`) derives a formula, a built-in activation
  or an activation + loss composition and returns a :class:`Derivation`;
- :mod:`~chainrule.derivation.parser` turns user text into SymPy through a whitelist;
- :mod:`~chainrule.derivation.library` holds the built-in activations and losses;
- :mod:`~chainrule.derivation.rules` builds the tree of steps;
- :mod:`~chainrule.derivation.compose` chains an activation and a loss;
- :mod:`~chainrule.derivation.domain` finds singular points and domain conflicts;
- :mod:`~chainrule.derivation.render` writes text, LaTeX, Markdown and JSON;
- :mod:`~chainrule.derivation.custom` compiles a formula into an activation layer;
- :mod:`~chainrule.derivation.plot` draws functions with their derivatives;
- :mod:`~chainrule.derivation.vector` derives the softmax and log-softmax Jacobians and a loss
  summed over K outputs; :mod:`~chainrule.derivation.network` one dense layer or a network of
  any depth in matrix form, with shapes; both start from the output delta of
  :mod:`~chainrule.derivation.delta`, write their formulas with
  :mod:`~chainrule.derivation.matrix` and check them with :mod:`~chainrule.derivation.vcheck`
  (finite differences) before returning a :class:`~chainrule.derivation.vresult.VectorDerivation`;
- :mod:`~chainrule.derivation.normalization` (batch and layer norm) and
  :mod:`~chainrule.derivation.attention` derive those layers stage by stage with the nodes of
  :mod:`~chainrule.derivation.layernodes`, each claim checked the same way;
  :mod:`~chainrule.derivation.conv` (2-D convolution), :mod:`~chainrule.derivation.pooling`
  (max and average pooling) and :mod:`~chainrule.derivation.recurrent` (RNN, LSTM) write their
  index forms beside NumPy expressions checked the same way;
  :mod:`~chainrule.derivation.layers` says which one a name asks for.
"""

from __future__ import annotations

import importlib

__all__ = ["Derivation", "FormulaError", "FormulaSyntaxError", "Step", "activation_from_formula",
           "derive", "parse_expression"]

_LAZY = {
    "derive": "chainrule.derivation.api",
    "Derivation": "chainrule.derivation.api",
    "Step": "chainrule.derivation.rules",
    "FormulaError": "chainrule.derivation.parser",
    "FormulaSyntaxError": "chainrule.derivation.parser",
    "parse_expression": "chainrule.derivation.parser",
    "activation_from_formula": "chainrule.derivation.custom",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'chainrule.derivation' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
