"""Which layer derivation a name asks for: ``batchnorm``, ``layernorm``, ``attention``,
``conv2d``, ``maxpool``, ``avgpool``, ``rnn`` or ``lstm``.

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
    "conv2d": ("conv2d", "conv_2d", "convolution", "convolution2d", "convolution_2d"),
    "maxpool": ("maxpool", "max_pool", "maxpool2d", "max_pool2d", "max_pooling"),
    "avgpool": ("avgpool", "avg_pool", "avgpool2d", "avg_pool2d", "average_pooling"),
    "rnn": ("rnn", "elman", "tanh_rnn"),
    "lstm": ("lstm",),
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
    if name == "conv2d":
        from chainrule.derivation.conv import derive_conv2d

        return copy.deepcopy(derive_conv2d())
    if name in ("maxpool", "avgpool"):
        from chainrule.derivation.pooling import derive_pooling

        return copy.deepcopy(derive_pooling(name))
    if name in ("rnn", "lstm"):
        from chainrule.derivation.recurrent import derive_recurrent

        return copy.deepcopy(derive_recurrent(name))
    from chainrule.derivation.normalization import derive_normalization

    return copy.deepcopy(derive_normalization(name))
