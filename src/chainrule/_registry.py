"""Lookup by name for the registries of activations, losses, optimizers and schedules, and
the configs that rebuild their objects.

Every ``get`` of the core (:func:`chainrule.nn.get`, :func:`chainrule.losses.get`,
:func:`chainrule.optim.get`, :func:`chainrule.optim.get_schedule`) follows one rule:

- a **name** (case-insensitive; ``-`` and spaces read as ``_``), an alias or a class name,
  lower-cased, builds a fresh object with the keyword arguments;
- a **subclass** of the base class builds a fresh object with the keyword arguments;
- an **instance** is returned as it is, and keyword arguments with it are an error (they would
  be silently ignored otherwise);
- anything else, an unknown name, or keywords the constructor does not take raise ValueError
  naming what was received and what is accepted.

The activations a model file may hold that ``chainrule.nn`` does not define (a formula
activation) are built by a module of a higher layer, which registers its builder with
``chainrule.nn.activations.CUSTOM_BUILDERS`` when it is imported; :data:`OPTIONAL_BUILDERS`
is the fixed list of those modules, which :func:`load_optional_builder` imports by name, as
the package root maps each public name to its module. ``nn`` thus never imports them.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import TypeVar

import numpy as np

__all__ = [
    "OPTIONAL_BUILDERS",
    "build",
    "canonical",
    "config_repr",
    "constructor_config",
    "load_optional_builder",
    "normalize",
]

T = TypeVar("T")

#: The key of an activation config that a builder outside ``chainrule.nn`` reads -> the module
#: that registers that builder when imported (the only modules :func:`load_optional_builder`
#: imports; a model file cannot name others).
OPTIONAL_BUILDERS: dict[str, str] = {"formula": "chainrule.derivation.custom"}


def normalize(name: str) -> str:
    """``name`` as a registry key: stripped, lower-case, ``-`` and spaces as ``_``."""
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def canonical(name: str, registry: dict[str, type], aliases: dict[str, str]) -> str | None:
    """The key of ``registry`` that ``name`` means (itself, an alias or a class name), or None."""
    key = normalize(name)
    key = aliases.get(key, key)
    if key in registry:
        return key
    for known, cls in registry.items():
        if key == cls.__name__.lower():
            return known
    return None


def build(
    spec,
    kwargs: dict,
    *,
    kind: str,
    base: type[T],
    registry: dict[str, type[T]],
    aliases: dict[str, str],
    example: str,
) -> T:
    """An instance of ``base`` from a name, a subclass or an instance (see the module docstring).

    ``kind`` names the family in messages ("activation", "loss"), ``example`` is a valid name.
    """
    if isinstance(spec, base):
        if kwargs:
            raise ValueError(
                f"get() received the {kind} instance {spec!r} and also the parameters "
                f"{sorted(kwargs)}; pass a name with parameters, or the instance alone."
            )
        return spec
    if isinstance(spec, type) and issubclass(spec, base):
        return _construct(spec, kwargs)
    if not isinstance(spec, str):
        raise ValueError(
            f"Expected a {kind} name such as {example!r}, or a subclass or instance of "
            f"{base.__name__}; got {type(spec).__name__} {spec!r}."
        )
    key = canonical(spec, registry, aliases)
    if key is None:
        raise _unknown(spec, kind, registry, aliases)
    return _construct(registry[key], kwargs)


def _unknown(name: str, kind: str, registry: dict, aliases: dict) -> ValueError:
    close = difflib.get_close_matches(normalize(name), [*registry, *aliases], n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    also = f" (aliases: {', '.join(aliases)})" if aliases else ""
    return ValueError(f"Unknown {kind} {name!r}.{hint} Known {kind}s: {', '.join(registry)}{also}.")


def _construct(cls: type[T], kwargs: dict) -> T:
    """``cls(**kwargs)``, a ValueError naming the accepted parameters when they do not fit."""
    if kwargs:
        signature = inspect.signature(cls)
        try:
            signature.bind(**kwargs)
        except TypeError as exc:
            accepted = list(signature.parameters)
            takes = f"accepts only {', '.join(accepted)}" if accepted else "takes no parameters"
            raise ValueError(f"{cls.__name__} {takes}; got {sorted(kwargs)}. ({exc})") from None
    return cls(**kwargs)


def constructor_config(obj) -> dict:
    """The keyword arguments that rebuild ``obj``: ``type(obj)(**constructor_config(obj))``.

    Each constructor parameter is read back from the attribute of the same name (every class
    of the registries stores its arguments so, as scikit-learn's estimators do), in the order of
    the signature; arrays become lists, so that the config is JSON-able. A parameter stored
    under another name (a user's subclass may do that) and ``*args``/``**kwargs`` are left out:
    such a class writes its own ``get_config`` to be rebuilt from one.
    """
    config = {}
    for name, param in inspect.signature(type(obj)).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or not hasattr(obj, name):
            continue
        value = getattr(obj, name)
        config[name] = value.tolist() if isinstance(value, np.ndarray) else value
    return config


def config_repr(obj) -> str:
    """``Name(key=value, ...)`` from ``obj.get_config()``: a repr that rebuilds the object."""
    args = ", ".join(f"{k}={v!r}" for k, v in obj.get_config().items())
    return f"{type(obj).__name__}({args})"


def load_optional_builder(key: str) -> None:
    """Import the module of :data:`OPTIONAL_BUILDERS` that registers the builder of ``key``.

    A key not in that list does nothing (the config is then an ordinary one). A missing optional
    package gives one line naming the extra to install, not a traceback.
    """
    module = OPTIONAL_BUILDERS.get(key)
    if module is None:
        return
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        from chainrule._extras import EXTRAS, missing_extra

        if (exc.name or "").split(".")[0] not in EXTRAS:
            raise
        raise missing_extra(exc, f"an activation from its {key!r} config") from None
