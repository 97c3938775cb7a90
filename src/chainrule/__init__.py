"""chainrule: backpropagation that people can read, check and trust.

The core (:mod:`chainrule.nn`, :mod:`chainrule.losses`, :mod:`chainrule.optim`) imports only
NumPy. The derivation engine (SymPy), the plots (matplotlib) and the scikit-learn estimators
load only when first used, so ``import chainrule`` stays fast.

Attributes
----------
__version__
    The version of the package, a string such as ``"0.1.0"``.
MISTAKES
    The one catalogue of gradient mistakes (:mod:`chainrule.gradient_check.catalogue`): kind
    -> ``Mistake(kind, meaning, fix)``. Every checker names what it finds by one of these kinds.

Examples
--------
>>> import numpy as np
>>> import chainrule
>>> from importlib.metadata import version
>>> chainrule.__version__ == version("chainrule")  # the installed distribution's version
True
>>> from chainrule import MISTAKES
>>> MISTAKES["sign_flipped"].meaning
'the whole gradient has the wrong sign (G = -T)'
>>> MISTAKES["sign_flipped"].fix
'd(-u) = -du; t - p is the update direction, p - t the gradient'
>>> report = chainrule.gradcheck(lambda w: np.sum(w ** 2), lambda w: -2 * w, np.array([0.5, -1.0]))
>>> report.kind in MISTAKES, report.kind
(True, 'sign_flipped')
"""

import importlib as _importlib

#: The version of chainrule, a string such as "0.1.0".
__version__ = "0.1.0"

# Attributes resolved on first access: name -> (module, attribute or None for the module).
_LAZY = {
    "nn": ("chainrule.nn", None),
    "losses": ("chainrule.losses", None),
    "optim": ("chainrule.optim", None),
    "data": ("chainrule.data", None),
    "download": ("chainrule.download", None),
    "load": ("chainrule.nn.model", "load"),
    "derive": ("chainrule.derivation", "derive"),
    "gradcheck": ("chainrule.gradient_check", "gradcheck"),
    "check_model": ("chainrule.gradient_check", "check_model"),
    "check_formula": ("chainrule.gradient_check", "check_formula"),
    "check_matrix": ("chainrule.gradient_check", "check_matrix"),
    "check_layer": ("chainrule.gradient_check", "check_layer"),
    "MISTAKES": ("chainrule.gradient_check", "MISTAKES"),
    "check_backward": ("chainrule.gradient_check", "check_backward"),
    "sklearn": ("chainrule.sklearn", None),  # needs the optional extra "sklearn"
}

__all__ = ["__version__", *_LAZY]

def __getattr__(name: str):
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'chainrule' has no attribute {name!r}") from None
    try:
        module = _importlib.import_module(module_name)
        value = module if attr is None else getattr(module, attr)
    except ModuleNotFoundError as exc:
        from chainrule._extras import EXTRAS, missing_extra

        if (exc.name or "").split(".")[0] not in EXTRAS:
            raise
        raise missing_extra(exc, f"chainrule.{name}") from None
    globals()[name] = value
    return value


def __dir__():
    # The public names only: not the helpers of this module, nor dunders other than __version__.
    return sorted(__all__)
