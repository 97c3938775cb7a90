"""chainrule: backpropagation that people can read, check and trust.

The core (:mod:`chainrule.nn`, :mod:`chainrule.losses`, :mod:`chainrule.optim`) imports only
NumPy. The derivation engine (SymPy), the plots (matplotlib) and the scikit-learn estimators
load only when first used, so ``import chainrule`` stays fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Attributes resolved on first access: name -> (module, attribute or None for the module).
_LAZY = {
    "nn": ("chainrule.nn", None),
    "losses": ("chainrule.losses", None),
    "optim": ("chainrule.optim", None),
    "data": ("chainrule.data", None),
    "load": ("chainrule.nn.model", "load"),
    "derive": ("chainrule.derivation", "derive"),
    "gradcheck": ("chainrule.gradient_check", "gradcheck"),
    "check_model": ("chainrule.gradient_check", "check_model"),
    "check_formula": ("chainrule.gradient_check", "check_formula"),
    "check_matrix": ("chainrule.gradient_check", "check_matrix"),
    "sklearn": ("chainrule.sklearn", None),  # needs scikit-learn: pip install chainrule[sklearn]
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'chainrule' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
