"""What a matrix check says: the textbook gradient as text, the title of the problem, and the
sentence of each mistake. Only NumPy is imported here.
"""

from __future__ import annotations

import numpy as np

from chainrule.gradient_check.matrix.network import (
    Config,
    Spec,
    layer_name,
    size_symbols,
    target_name,
)
from chainrule.gradient_check.names import FUSED, MATRIX_LOSSES, MATRIX_OUTPUT_FORM

__all__ = [
    "factor_sentence",
    "gradient_text",
    "mistake_sentence",
    "other_node_sentence",
    "shape_symbols",
    "shape_table",
    "sizes_in_words",
    "title",
    "update_sentence",
]


def _derivative_texts(spec: Spec) -> list[str]:
    """The output delta and each hidden one, in the formula grammar: [D_L, ..., D_1].

    The deltas follow the derivation engine's convention, D_l = m·dE/dZ_l for the mean loss
    (dE/dZ_l itself for a sum): the 1/m of the batch mean sits in the weight and bias gradients,
    where the batch is summed, and D_L of a fused pair is Yhat - Y."""
    L = len(spec.acts)
    yhat, y = layer_name(spec, "H", L), target_name(spec)
    two = "" if spec.half or spec.loss != "mse" else "2 * "
    lines = []
    for layer in range(L, 0, -1):
        name = spec.acts[layer - 1]
        Z, H = layer_name(spec, "Z", layer), layer_name(spec, "H", layer)
        if layer == L:
            if (name, spec.loss) in FUSED:
                lines.append(f"{two}({yhat} - {y})" if two else f"{yhat} - {y}")
                continue
            upstream = {"mse": f"{two}({yhat} - {y})",
                        "bce": f"({yhat} - {y}) / ({yhat} * (1 - {yhat}))",
                        "ce": f"-{y} / {yhat}"}[spec.loss]
        else:
            D = layer_name(spec, "D", layer + 1)
            upstream = f"{D} @ {layer_name(spec, 'W', layer + 1)}.T"
        if name == "identity":
            lines.append(upstream)
        elif name == "softmax":
            lines.append(f"{H} * (G - sum(G * {H}, axis=1, keepdims=True)) with G = {upstream}")
        else:
            form = MATRIX_OUTPUT_FORM.get(name, f"{name}_prime({{Z}})").format(H=H, Z=Z)
            lines.append(f"({upstream}) * {form}")
    return lines


def _over_m(text: str, spec: Spec) -> str:
    """``text / m`` for the mean loss, bracketed where a sum or difference stands outside
    brackets; ``text`` itself for a sum over the batch."""
    if not spec.mean:
        return text
    depth, bare = 0, False
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        bare = bare or (depth == 0 and ch in "+-" and 0 < i and text[i - 1] == " ")
    return f"({text}) / m" if bare else f"{text} / m"


def gradient_text(spec: Spec, kind: str, layer: int) -> str:
    lines = _derivative_texts(spec)
    L = len(spec.acts)
    if kind == "H":
        if layer == L:
            up = {"mse": "2 * " if not spec.half else "", "bce": "", "ce": ""}[spec.loss]
            yhat, y = layer_name(spec, "H", L), target_name(spec)
            return _over_m({"mse": f"{up}({yhat} - {y})",
                            "bce": f"({yhat} - {y}) / ({yhat} * (1 - {yhat}))",
                            "ce": f"-{y} / {yhat}"}[spec.loss], spec)
        first = layer + 1
        head = _over_m(f"{layer_name(spec, 'D', first)} @ {layer_name(spec, 'W', first)}.T",
                       spec)
    else:
        first = layer
        D = layer_name(spec, "D", layer)
        head = _over_m({"W": f"{layer_name(spec, 'H', layer - 1)}.T @ {D}",
                        "b": f"sum({D}, axis=0)", "Z": D}[kind], spec)
    wheres = [f"{layer_name(spec, 'D', L - i)} = {text}" for i, text in enumerate(lines)
              if L - i >= first]
    wheres.reverse()
    if kind == "Z" and L == 1 and " with " not in lines[-1]:
        return _over_m(lines[-1], spec)
    return f"{head} where " + ", ".join(wheres)


def title(spec: Spec, bias: bool) -> str:
    mean = "mean " if spec.mean else ""
    over = " over m examples" if spec.mean else " summed over the examples"
    loss = MATRIX_LOSSES[spec.loss]
    if spec.loss == "mse" and spec.half:
        loss = "half squared error"
    if spec.lower:
        out = layer_name(spec, "H", 1)
        norm = f" and Σ_k {target_name(spec)}_k = 1" if spec.loss == "ce" else ""
        return (f"{mean}{loss}{over if spec.mean else ''} with {out} = {spec.acts[0]}(z) over k "
                f"outputs{norm}")
    plus = " + b" if bias else ""
    if spec.single:
        return (f"{mean}{loss}{over} of one dense layer, Z = X @ W{plus}, "
                f"Yhat = {spec.acts[0]}(Z)")
    layers = ", ".join(spec.acts)
    return f"{mean}{loss}{over} of a {len(spec.acts)}-layer network ({layers})"


def factor_sentence(label: str, spec: Spec, variable: str) -> str:
    if label in ("sign", "-1"):
        return ""
    sign = label.startswith("-")
    core = label.lstrip("-")
    parts = []
    if "m" in core and spec.mean:
        if core.startswith("1/") or core == "1/(2m)":
            parts.append("the 1/m is applied twice (your formula is divided by m once more than "
                         "the gradient of the mean loss)")
        else:
            parts.append("the 1/m of the mean over the batch is missing (your formula is m times "
                         "the gradient)")
    elif "m" in core:
        if core.startswith("1/") or core == "1/(2m)":
            parts.append("there is a 1/m too many: the loss is summed over the examples, not "
                         "averaged (pass mean=True to check the mean)")
        else:
            parts.append(f"there is an extra factor m: your formula is m times dE/d{variable}")
    if core.startswith("2") or core.endswith("2)") or core == "1/2":
        if "1/2" in core or "2m)" in core:
            parts.append("the 2 of the squared error is missing: d/dYhat (Yhat - Y)² = "
                         "2(Yhat - Y); only the loss ½(Yhat - Y)² (half=True) has none")
        else:
            parts.append("the factor 2 is extra: with ½(Yhat - Y)² the ½ cancels the 2 that the "
                         "power rule brings down" if spec.loss == "mse" and spec.half else
                         "a factor 2 is extra (a term counted twice)")
    if sign:
        parts.append("the sign is wrong as well")
    return "; ".join(parts)


def mistake_sentence(kind: str, layer: int, spec: Spec) -> tuple[str, str]:
    name = spec.acts[layer - 1]
    Z, H = layer_name(spec, "Z", layer), layer_name(spec, "H", layer)
    form = MATRIX_OUTPUT_FORM.get(name, f"{name}_prime({{Z}})").format(H=H, Z=Z)
    if kind == "softmax_diagonal":
        return "softmax_diagonal", (
            f"the softmax Jacobian was treated as diagonal: {H} * (1 - {H}) multiplies "
            "element-wise, but every output depends on every input, ∂p_i/∂z_j = p_i(δ_ij - p_j), "
            f"the matrix diag(p) - p pᵀ for each example; through it dE/d{Z} = "
            f"{H} * (G - sum(G * {H}, axis=1, keepdims=True)) for the upstream G = dE/d{H}"
            + (f" (with cross-entropy this collapses to {H} - {target_name(spec)})"
               if spec.loss == "ce" else ""))
    if kind == "derivative_missing" and name == "softmax":
        return "derivative_missing", (
            f"the softmax's Jacobian is missing: the chain rule through {H} = softmax({Z}) "
            f"multiplies dE/d{H} by diag(p) - p pᵀ for each example, which gives "
            f"{H} * (G - sum(G * {H}, axis=1, keepdims=True)) for the upstream G = dE/d{H}")
    if kind == "derivative_missing":
        extra = ""
        if (name, spec.loss) in FUSED and layer == len(spec.acts):
            extra = (f"; here the fused form (Yhat - Y) already contains it, so the formula "
                     f"stops at dE/d{H}")
        return "derivative_missing", (
            f"the element-wise factor {name}'({Z}) = {form} is missing: the chain rule through "
            f"{H} = {name}({Z}) multiplies by it, and since the Jacobian of an element-wise "
            f"function is diagonal it acts element-wise, (...) * {form}{extra}")
    if kind == "derivative_twice" and name == "softmax":
        return "derivative_twice", _softmax_diagonal_twice(spec, H)
    if kind == "derivative_twice":
        extra = ""
        if (name, spec.loss) in FUSED:
            extra = (f" ({'Yhat' if not spec.lower else H} - {target_name(spec)} of "
                     f"{name} + {MATRIX_LOSSES[spec.loss]} already contains it: it cancelled the "
                     "loss's denominator)")
        return "derivative_twice", (
            f"the derivative {name}'({Z}) = {form} is applied twice{extra}")
    return _wrong_form_sentence(kind, layer, spec, form)


def _wrong_form_sentence(kind: str, layer: int, spec: Spec, form: str) -> tuple[str, str]:
    """The sentence of a derivative taken of the wrong array or the wrong activation, of the
    activation used as its derivative, or of the pre-activation used as the next input."""
    name = spec.acts[layer - 1]
    Z, H = layer_name(spec, "Z", layer), layer_name(spec, "H", layer)
    if kind == "derivative_at_output":
        return "derivative_wrong_array", (
            f"the derivative g' is applied to the wrong array: {name}_prime({H}) instead of "
            f"{name}_prime({Z}); "
            f"the derivative is taken at the activation's input {Z}"
            + (f", or in output form {form}" if name in ("sigmoid", "tanh") else ""))
    if kind.startswith("other:"):
        other = kind.split(":", 1)[1]
        return "derivative_wrong_activation", (
            f"the derivative of the wrong activation: {other}'({Z}) where layer {layer}'s "
            f"activation is {name}, whose derivative is {form}")
    if kind.startswith("other_output:"):
        other = kind.split(":", 1)[1]
        wrong = MATRIX_OUTPUT_FORM[other].format(H=H, Z=Z)
        return "derivative_wrong_activation", (
            f"the derivative of the wrong activation, in output form: {wrong} is {other}' "
            f"written through its output, where layer {layer}'s activation is {name}, whose "
            f"derivative is {form}")
    if kind == "activation_for_derivative":
        return "activation_for_derivative", (
            f"the activation is used as its own derivative: {name}({Z}) where the chain rule "
            f"through {H} = {name}({Z}) multiplies by {name}'({Z}) = {form}")
    if kind == "preactivation_input":
        below = layer - 1
        Zb, Hb = layer_name(spec, "Z", below), layer_name(spec, "H", below)
        W, D = layer_name(spec, "W", layer), layer_name(spec, "D", layer)
        return "preactivation_for_activation", (
            f"the pre-activation {Zb} is used where the activation {Hb} belongs: layer {layer} "
            f"computes {Z} = {Hb} @ {W} + b from {Hb} = {spec.acts[below - 1]}({Zb}), so "
            f"dE/d{W} = {_over_m(f'{Hb}.T @ {D}', spec)}, not {_over_m(f'{Zb}.T @ {D}', spec)}")
    if kind == "output_form_at_input":
        wrong = f"{Z} * (1 - {Z})" if name == "sigmoid" else f"1 - {Z}**2"
        return "derivative_wrong_array", (
            f"the derivative g' is applied to the wrong array: the output form of {name}' was "
            f"fed the input, "
            f"{wrong}, where it takes the output, {form}")
    raise AssertionError(kind)  # pragma: no cover


def _softmax_diagonal_twice(spec: Spec, H: str) -> str:
    """What ``(P - T) * P * (1 - P)`` is: softmax has no element-wise derivative; P * (1 - P)
    is the diagonal of its Jacobian, multiplied in after a delta that holds the whole of it."""
    diagonal = (f"softmax has no element-wise derivative: {H} * (1 - {H}) is the diagonal of its "
                "Jacobian diag(p) - p pᵀ, and it is multiplied in after ")
    if spec.loss == "ce":
        y = target_name(spec)
        yhat = "Yhat" if not spec.lower else H
        return diagonal + (f"the fused delta {yhat} - {y} of softmax + cross-entropy, which "
                           "already holds the whole Jacobian (it cancelled the loss's "
                           "denominator): leave the product out")
    return diagonal + (f"the whole Jacobian was already applied, {H} * (G - sum(G * {H}, "
                       "axis=1, keepdims=True)): leave the product out")


def _node_label(spec: Spec, node: str) -> str:
    kind, layer = node[:1], int(node[1:])
    if kind == "H" and layer == len(spec.acts):
        return layer_name(spec, "H", layer)
    return layer_name(spec, kind, layer)


def other_node_sentence(spec: Spec, node: str, kind: str, layer: int) -> tuple[str, str]:
    other_kind, other_layer = node[:1], int(node[1:])
    label = _node_label(spec, node)
    wrt = layer_name(spec, kind, layer)
    if other_kind == kind and other_layer != layer:
        if other_layer > layer:
            return "wrong_layer", (
                f"this is dE/d{label}, the gradient of layer {other_layer}, not of layer {layer}: "
                f"carry the delta back through the layers above, D{other_layer - 1} = "
                f"(D{other_layer} @ W{other_layer}.T) * g'(Z{other_layer - 1}), and use "
                f"{layer_name(spec, 'H', layer - 1)} for layer {layer}" if kind in "WbZ" else
                f"this is dE/d{label}, the gradient of layer {other_layer}, not of layer {layer}")
        return "wrong_layer", (f"this is dE/d{label}, the gradient of layer {other_layer}, not "
                               f"of layer {layer}")
    if other_kind == "Z" and other_layer == layer and kind == "W":
        return "wrong_variable", (
            f"this is dE/d{label} (the layer's delta), not dE/d{wrt}: the chain rule through "
            f"{label} = {layer_name(spec, 'H', layer - 1)} @ {wrt} + b still multiplies by "
            f"{layer_name(spec, 'H', layer - 1)}.T on the left")
    if other_kind == "Z" and other_layer == layer and kind == "b":
        return "bias_not_summed", (
            f"the sum over the batch is missing: this is dE/d{label}, one row per example; the "
            f"bias is added to every row, so its gradient sums the rows: sum(..., axis=0)")
    if other_kind == "H" and other_layer == layer and kind == "Z":
        return "derivative_missing", (
            f"this is dE/d{label}, not dE/d{wrt}: the element-wise factor g'({wrt}) is missing")
    return "wrong_variable", f"this is dE/d{label}, not dE/d{wrt}"


def shape_symbols(spec, configs, arrays) -> str:
    symbols = size_symbols(spec, configs[0])
    shape = np.shape(arrays[0])
    return "×".join(symbols.get(s, str(s)) for s in shape) or "a number"


def update_sentence(spec: Spec, variable: str) -> str:
    y, yhat = target_name(spec), layer_name(spec, "H", len(spec.acts))
    return (f"this is -dE/d{variable}, the negative gradient: the direction of the "
            f"gradient-descent update, {variable} ← {variable} - η·dE/d{variable} = {variable} + "
            f"η·(your formula). Many tutorials write this {y} - {yhat} form and call it the "
            f"gradient; the gradient itself has {yhat} - {y}")


def sizes_in_words(spec: Spec, cfg: Config) -> str:
    if spec.lower:
        return f"k = {cfg.sizes[-1]}" + (f", m = {cfg.m}" if spec.mean else "")
    names = ["n", *[f"h{i}" for i in range(1, len(cfg.sizes) - 1)], "k"]
    return ", ".join([f"m = {cfg.m}", *(f"{n} = {s}" for n, s in zip(names, cfg.sizes,
                                                                      strict=True))])


def shape_table(spec: Spec, cfg: Config, symbols, bias) -> dict:
    """name -> shape in symbols ("m×n"), for every array a formula may use."""
    if spec.lower:
        return {"z": "k", layer_name(spec, "H", 1): "k", target_name(spec): "k"}

    def sym(shape):
        return "×".join(symbols.get(s, str(s)) for s in shape)

    shapes = {"X": sym(cfg.X.shape)}
    for layer_i in range(1, len(spec.acts) + 1):
        for k in ("W", "b", "Z", "H"):
            if k == "b" and not bias:
                continue
            label = layer_name(spec, k, layer_i)
            shapes[label] = sym(cfg.nodes[f"{k}{layer_i}"].shape)
    shapes["Y"] = sym(cfg.Y.shape)
    return shapes
