"""Which layer derivation a name asks for: ``batchnorm``, ``layernorm`` or ``attention``.

``derive("batchnorm")`` and ``derive(layer="batchnorm")`` give the same derivation; ``layer=True``
(or ``"dense"``) stays the dense layer of :mod:`chainrule.derivation.network`.
"""

from __future__ import annotations

import copy

__all__ = ["LAYER_DERIVATIONS", "derive_layer", "layer_name"]

#: Each layer a derivation exists for, with the other spellings it is known by.
LAYER_DERIVATIONS = {
    "batchnorm": ("batchnorm", "batch_norm", "batchnormalization", "batch_normalization"),
    "layernorm": ("layernorm", "layer_norm", "layernormalization", "layer_normalization"),
    "attention": ("attention", "self_attention", "scaled_dot_product_attention"),
}


def layer_name(text) -> str | None:
    """The layer ``text`` names (any spelling, any case), or None."""
    if not isinstance(text, str):
        return None
    key = text.strip().lower().replace("-", "_").replace(" ", "_")
    for name, spellings in LAYER_DERIVATIONS.items():
        if key in spellings:
            return name
    return None


def derive_layer(name: str, **others):
    """The derivation of the layer ``name``; ``others`` are derive's other arguments, which these
    layers do not take: one given is refused by its name."""
    given = {k: v for k, v in others.items() if v not in (None, False)}
    if given:
        key, value = next(iter(given.items()))
        raise ValueError(
            f"The {name} derivation takes no other option; got {key}={value!r}. Leave it out: "
            "the derivation gives every gradient of the layer, with its shapes.")
    if name == "attention":
        from chainrule.derivation.attention import derive_attention

        return copy.deepcopy(derive_attention())
    from chainrule.derivation.normalization import derive_normalization

    return copy.deepcopy(derive_normalization(name))
