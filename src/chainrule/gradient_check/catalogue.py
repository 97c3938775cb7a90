r"""The one catalogue of gradient mistakes, and the one shape of a checker's answer.

Every checker of chainrule (:func:`~chainrule.gradient_check.gradcheck`,
:func:`~chainrule.gradient_check.check_formula`, :func:`~chainrule.gradient_check.check_matrix`,
:func:`~chainrule.gradient_check.check_model`, :func:`~chainrule.gradient_check.check_backward`)
names a mistake by a ``kind`` that is a key of :data:`MISTAKES`, and the same mistake has the same
``kind`` in every checker: a flipped sign is ``sign_flipped`` whether it was found in a formula,
a matrix expression, a gradient function or a hand-written backward pass.

Each entry says what the mistake is (``meaning``) and the rule that fixes it (``fix``). A layer
or a checker that learns a new mistake adds one entry here, never a table of its own.

>>> MISTAKES["mean_forgotten"].fix
'the gradient of a mean over m examples carries the 1/m of the mean: divide by m once'
>>> describe("sign_flipped")
'sign_flipped: the whole gradient has the wrong sign (G = -T)'

Only the standard library is imported here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["MISTAKES", "CheckResult", "Mistake", "describe", "mistake"]


@dataclass(frozen=True)
class Mistake:
    """One kind of mistake: its ``kind`` (the name every checker uses), what it ``meaning``\\ s
    in one line, and the rule that ``fix``\\ es it."""

    kind: str
    meaning: str
    fix: str


def _entries(*rows: tuple[str, str, str]) -> dict[str, Mistake]:
    return {kind: Mistake(kind, meaning, fix) for kind, meaning, fix in rows}


#: kind -> :class:`Mistake`; the single list of the mistakes the checkers can name.
MISTAKES: dict[str, Mistake] = _entries(
    # --- the gradient as a whole -----------------------------------------------------------------
    ("shape", "the gradient does not have the shape of the variable",
     "a gradient has exactly the shape of what it differentiates"),
    ("non_finite", "the gradient is NaN or infinite where the true one is finite",
     "use the stable form (from logits, output form) or guard the division"),
    ("zero", "the gradient is zero where the true one is not",
     "every path from the variable to the loss contributes; none is cut"),
    ("sign_flipped", "the whole gradient has the wrong sign (G = -T)",
     "d(-u) = -du; t - p is the update direction, p - t the gradient"),
    ("scaled", "the gradient is off by a constant factor c (G = cT)",
     "keep every constant of the chain rule: the 2 of a square, the 1/2 of a half square"),
    ("wrong_factor", "the gradient is off by a factor that depends on the variable: a factor is "
     "missing or extra", "write the chain rule's product link by link; each link contributes its "
     "factor once"),
    ("mean_forgotten", "the 1/m of a mean over m examples is missing (G = mT)",
     "the gradient of a mean over m examples carries the 1/m of the mean: divide by m once"),
    ("mean_twice", "the 1/m of the mean is applied twice (G = T/m)",
     "divide by m once: where the delta already carries 1/m, the weight gradient does not"),
    ("transposed", "the gradient is transposed (G = Tᵀ)",
     "for Z = XW, dE/dW = Xᵀ·dE/dZ keeps the (in, out) layout of W"),
    ("transpose_missing", "a transpose is missing: the shapes of a product do not fit",
     "write each factor's shape under the formula; the inner sizes must match"),
    ("transpose_extra", "a transpose is extra: the shapes of a product do not fit",
     "write each factor's shape under the formula; the inner sizes must match"),
    ("factor_order", "the factors of a product are in the wrong order",
     "matrix products do not commute: dE/dW = Xᵀ·D, not D·Xᵀ"),
    # --- the activation's derivative --------------------------------------------------------------
    ("derivative_missing", "the activation's derivative g'(z) is missing",
     "the chain rule through yhat = g(z) multiplies by g'(z), element-wise"),
    ("derivative_twice", "the activation's derivative is applied twice",
     "a fused delta (sigmoid + BCE, softmax + CE) already holds g'(z): do not multiply again"),
    ("derivative_wrong_array", "g' is taken of the wrong array: g'(output) for g'(input), "
     "or the output form fed the input",
     "take g' at the activation's input z, or write it in output form through yhat = g(z)"),
    ("derivative_wrong_activation", "the derivative of another activation is used",
     "use the derivative of the layer's own activation"),
    ("activation_for_derivative", "the activation g(z) is used in place of its derivative g'(z)",
     "multiply by g'(z): relu'(z) = [z > 0], not relu(z); sigmoid'(z) = σ(z)(1 - σ(z))"),
    ("softmax_diagonal", "the softmax Jacobian is treated as diagonal: p(1 - p) instead of "
     "diag(p) - p pᵀ",
     "softmax couples its outputs: dE/dz = p ⊙ (g - (g·p)), or p - t with cross-entropy"),
    # --- which gradient ---------------------------------------------------------------------------
    ("wrong_variable", "the gradient of another variable is given (dE/dz for dE/dW, say)",
     "follow the chain rule to the variable asked for"),
    ("wrong_layer", "the gradient of another layer is given",
     "index each layer's arrays by that layer: X for layer 1, H1 for layer 2, ..."),
    ("preactivation_for_activation", "the pre-activation z = Wx + b is used where the "
     "activation h = g(z) belongs", "a layer's input is the previous layer's activation: "
     "dE/dW_l = H_(l-1)ᵀ·Δ_l with H_(l-1) = g(Z_(l-1)), not Z_(l-1)ᵀ·Δ_l"),
    ("bias_not_summed", "the bias gradient is not summed over the batch",
     "a bias is broadcast over the batch, so its gradient sums over the batch axis"),
    ("bias_wrong_axis", "the bias gradient is summed over the wrong axis",
     "sum over the batch axis (axis 0), keeping one entry per unit"),
    # --- one term of a formula --------------------------------------------------------------------
    ("term_sign", "one term has the wrong sign",
     "differentiate each term with its own sign: d/dyhat log(1 - yhat) = -1/(1 - yhat)"),
    ("term_missing", "a term is missing", "every term of the loss contributes its derivative"),
    ("term_factor", "one term has a wrong factor",
     "differentiate each term with its own constant factors"),
    ("factor_twice", "a factor of the chain rule is applied twice",
     "each link of the chain contributes its factor once"),
    ("inner_derivative_dropped", "the derivative of an inner function is dropped",
     "the chain rule: (f(g(x)))' = f'(g(x))·g'(x)"),
    # --- batch and layer normalization -----------------------------------------------------------
    ("norm_mean_path_dropped", "the path through the mean μ is dropped: the term "
     "-mean(dY) inside the bracket is missing",
     "X reaches the loss directly, through μ and through σ²: dX = γ/√(σ² + ε) ⊙ (dY - mean(dY) "
     "- X̂ ⊙ mean(dY ⊙ X̂))"),
    ("norm_variance_path_dropped", "the path through the variance σ² is dropped: the term "
     "-X̂ ⊙ mean(dY ⊙ X̂) is missing",
     "σ² depends on X too; its path gives -X̂ ⊙ mean(dY ⊙ X̂) inside the bracket"),
    ("norm_both_paths_dropped", "the statistics are treated as constants: dX = γ ⊙ dY/√(σ² + ε), "
     "the paths through μ and σ² both dropped",
     "in training μ and σ² are computed from the batch, so both paths add their terms: "
     "dX = γ/√(σ² + ε) ⊙ (dY - mean(dY) - X̂ ⊙ mean(dY ⊙ X̂))"),
    ("norm_unbiased_variance", "the unbiased variance (divided by m - 1) is used where training "
     "divides by m",
     "batch and layer normalization standardize with the biased variance, mean((X - μ)²), in "
     "training; the variance path carries 1/m, not 1/(m - 1)"),
    ("norm_eps_outside_sqrt", "ε is added outside the square root: √σ² + ε for √(σ² + ε)",
     "the layer divides by √(σ² + ε): ε goes under the square root"),
    ("norm_wrong_axis", "the statistics or sums run over the wrong axis (the batch for the "
     "features, or the reverse)",
     "batch normalization averages over the batch (axis 0), layer normalization over the "
     "features (axis 1, keepdims=True); γ and β always sum over the batch"),
    ("norm_gamma_forgotten", "the scale γ is forgotten: dY is used where dX̂ = γ ⊙ dY belongs",
     "Y = γ ⊙ X̂ + β, so dX̂ = γ ⊙ dY before the paths into X"),
    ("norm_gamma_outside_means", "γ is taken out of the means of layer normalization, where "
     "it varies along the features the means run over",
     "with D = dY ⊙ γ, dX = (D - mean(D) - X̂ ⊙ mean(D ⊙ X̂))/√(σ² + ε): γ stays inside the "
     "means (it comes out only in batch normalization)"),
    ("norm_sum_for_mean", "a sum is written where a mean belongs (a factor m too many in the "
     "mean's or the variance's term)",
     "the two path terms are means over the group: mean(dY) = sum(dY)/m"),
    # --- attention -----------------------------------------------------------------------------
    ("attention_softmax_elementwise", "the softmax of each row is treated as element-wise: "
     "dS = dP ⊙ P ⊙ (1 - P)",
     "every P_ij of a row shares its denominator: dS = P ⊙ (dP - rowsum(dP ⊙ P))"),
    ("attention_scale_forgotten", "the scale 1/√d of the scores is forgotten in dQ or dK",
     "S = Q Kᵀ/√d, so dQ = dS K/√d and dK = dSᵀ Q/√d"),
    ("attention_dk_transpose_missing", "dK = dS Q: the transpose of dS is missing (S is "
     "square, so the shapes still fit)",
     "S = Q Kᵀ/√d gives dK = dSᵀ Q/√d: key j collects the scores of column j"),
    ("attention_dv_transpose_missing", "dV = P dO: the transpose of P is missing (P is square, "
     "so the shapes still fit)",
     "O = P V gives dV = Pᵀ dO: value j collects the weights of column j"),
    ("attention_mask_ignored", "the causal mask is ignored: the softmax of the unmasked scores "
     "is used",
     "the masked P has zeros above the diagonal; use it (not softmax(Q Kᵀ/√d)) in every "
     "gradient, and the masked scores get no gradient"),
)


# --- a hand-written backward pass (check_backward) ------------------------------------------------
MISTAKES.update(_entries(
    ("gradients_swapped", "the gradients of two inputs are returned in each other's place",
     "return the gradients in the order of the forward's inputs"),
    ("path_missing", "an input used more than once in the forward gets the gradient of only "
     "some of its uses",
     "an input used twice gets the sum of the gradients through both uses (x * x: 2x)"),
    ("wrong_dtype", "the gradient has another dtype than its input",
     "return each gradient in its input's dtype (a float64 constant promotes float32 arrays)"),
    ("gradient_none", "no gradient (None) for an input the output depends on",
     "return a gradient for every input that needs one; None only where none is needed"),
    ("inputs_modified", "the backward changes its inputs or saved arrays in place",
     "never modify saved arrays in the backward: compute into new arrays (dx = dout * mask, "
     "not dout *= mask)"),
    ("nondeterministic", "the backward gives different gradients for the same inputs and dout",
     "draw random numbers (a dropout mask) in the forward and save them for the backward"),
))


# --- convolution, pooling and recurrent layers ------------------------------------------------
MISTAKES.update(_entries(
    ("conv_kernel_not_flipped", "dX of a convolution uses the kernel as it is, not rotated 180 "
     "degrees",
     "dX is the full convolution of dY (dilated by the stride) with W[:, :, ::-1, ::-1], "
     "summed over the output channels and cropped by the padding"),
    ("conv_valid_not_full", "dX of a convolution is a valid convolution, not a full one: the "
     "pixels near the border, which fewer windows reach, get no gradient",
     "pad the dilated dY with k - 1 zeros on each side (a full convolution), then crop the "
     "padding p of the forward"),
    ("conv_stride_ignored", "the stride is ignored in the backward: dY is used as if the windows "
     "were one pixel apart",
     "window (y, x) starts at pixel (s·y, s·x): dilate dY by the stride (s - 1 zeros between "
     "entries) for dX, and correlate X with dY at the stride for dW"),
    ("pool_max_to_every_entry", "the max-pool gradient goes to every entry of the window, not "
     "only to its maximum",
     "only the arg-max of each window (the first, on a tie) receives dY; the other entries get "
     "zero"),
    ("pool_average_not_divided", "the average-pool gradient is not divided by the window size",
     "each entry of a k_h x k_w window receives dY / (k_h k_w)"),
    ("bptt_truncated", "backpropagation through time is cut to one step: h_t gets the gradient "
     "of its own output but none from step t + 1",
     "dE/dh_t = dY_t + dE/dz_(t+1) · W_hh: add the gradient the next step sends back, from the "
     "last step to the first"),
    ("lstm_cell_path_dropped", "the LSTM cell state's own path is dropped: dE/dc_t gets nothing "
     "from c_(t+1) = f ⊙ c_t + ...",
     "dE/dc_t = dE/dh_t ⊙ o ⊙ (1 - tanh² c_t) + dE/dc_(t+1) ⊙ f_(t+1): carry the cell "
     "gradient back through the forget gate"),
    ("shortcut_wrong_activation", "the fused shortcut of another output activation is used: "
     "yhat - y is dE/dz of sigmoid + BCE, handed in for tanh + BCE",
     "the shortcut holds only for its own pair, where the activation's derivative cancels the "
     "loss's denominator; for any other activation write dE/dz = dE/dyhat·dyhat/dz and check "
     "that its outputs lie in the loss's domain"),
))


# --- more convolution, pooling and recurrent mistakes -----------------------------------------
MISTAKES.update(_entries(
    ("lstm_tanh_derivative_of_raw_cell", "the LSTM's tanh' is applied to the cell state c_t "
     "itself: 1 - c_t², not 1 - tanh²(c_t)",
     "h_t = o ⊙ tanh(c_t), so dE/dc_t = dE/dh_t ⊙ o ⊙ (1 - tanh²(c_t)): the output form "
     "1 - y² needs y = tanh(c_t), not c_t (save tanh(c_t) in the forward)"),
    ("lstm_forget_gate_new_cell", "the LSTM forget gate's gradient uses the new cell state: "
     "dE/df_t = dE/dc_t ⊙ c_t, not ⊙ c_(t-1)",
     "c_t = f_t ⊙ c_(t-1) + i_t ⊙ g_t, so dE/df_t = dE/dc_t ⊙ c_(t-1): save the previous cell "
     "state of each step for the backward"),
    ("pool_max_to_every_tie", "the max-pool gradient goes to every entry that ties for the "
     "window's maximum (a mask x == max), so a tie passes dY on several times",
     "send dY to one arg-max per window (the first, as np.argmax and PyTorch do), so that each "
     "window passes dY on exactly once"),
))

def mistake(kind: str) -> Mistake:
    """The catalogue entry of ``kind``; a ValueError naming the known kinds otherwise."""
    try:
        return MISTAKES[kind]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown mistake kind {kind!r}; the kinds are {', '.join(sorted(MISTAKES))}."
        ) from None


def describe(kind: str) -> str:
    """``kind: meaning``, one line."""
    return f"{kind}: {mistake(kind).meaning}"


@dataclass
class CheckResult:
    """What every checker answers, whatever it checked.

    ``correct`` is the verdict; ``kind`` the :data:`MISTAKES` key of the mistake found (None when
    correct, or when no single mistake explains the difference); ``where`` what the finding is
    about (``"dE/dW1"``, ``"input 0 (x)"``, ``"second term"``, ``"elements (0, 2)"``; None for
    the whole); ``sentence`` the explanation to a person; ``expected`` the right form, where
    one exists as text. Each checker's report subclasses it and adds its own details; ``str()``
    is the sentence and :meth:`to_json` gives every field.
    """

    correct: bool
    kind: str | None
    where: str | None
    sentence: str
    expected: str | None

    def __post_init__(self) -> None:
        if self.kind is not None:
            mistake(self.kind)

    @property
    def passed(self) -> bool:
        """The verdict, :attr:`correct` (the word of a numerical check)."""
        return self.correct

    @property
    def diagnosis(self) -> str | None:
        """The sentence naming the mistake found; None when correct or when none is named."""
        return None if self.correct or self.kind is None else self.sentence

    @property
    def mistake(self) -> Mistake | None:
        """The catalogue entry of :attr:`kind`, or None."""
        return None if self.kind is None else MISTAKES[self.kind]

    def __str__(self) -> str:
        return self.sentence

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=_plain)


def _plain(value):
    """An array (or a NumPy number) as plain lists and numbers for JSON; anything else as text."""
    return value.tolist() if hasattr(value, "tolist") else str(value)
