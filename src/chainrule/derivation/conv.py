r"""Two-dimensional convolution, derived step by step and checked (Goodfellow, Bengio &
Courville, *Deep Learning*, 2016, section 9.5; Dumoulin & Visin, arXiv:1603.07285).

Images are ``(N, C, h, w)`` and the weight ``(O, C, kh, kw)``, PyTorch's layout and the names
of :class:`chainrule.nn.Conv2D`. With the input zero-padded by ``pad`` (:math:`X^p`) and a
stride :math:`s`,

.. math::
    Y_{n,o,i,j} = b_o + \sum_{c,p,q} W_{o,c,p,q}\, X^p_{n,c,\,si+p,\,sj+q}, \qquad
    h' = \lfloor (h + 2\,\mathrm{pad} - k_h)/s \rfloor + 1 .

Given :math:`dY`: :math:`db` sums :math:`dY`; :math:`dW` is the correlation of :math:`X^p` with
:math:`dY`; :math:`dX`, at stride 1 without padding, is the *full* convolution of :math:`dY`
with the kernel rotated by 180 degrees. A stride :math:`s` puts :math:`s - 1` zeros between the
entries of :math:`dY` first (the gradient of the stride-1 output, of which the stride keeps
every :math:`s`-th entry); padding crops ``pad`` rows and columns off each border of the result.
Every formula is a NumPy expression (the ``python`` form of :class:`~chainrule.derivation.
layernodes.Code`) evaluated on random arrays and compared with central differences of a forward
pass written apart from :mod:`chainrule.nn.conv` (:func:`chainrule._oracle.conv2d_forward`).
"""

from __future__ import annotations

import functools

import numpy as np

from chainrule._oracle import conv2d_forward
from chainrule.derivation.layernodes import Code, numeric, verify_claims
from chainrule.derivation.vresult import Claim, VectorDerivation, VStep

__all__ = ["derive_conv2d"]

# (N, C, h, w, O, kh, kw, s, pad): two at stride 1 without padding (where the plain full
# convolution holds), then strides 2 and 3 with padding 1, one leaving a row no window reaches.
_CASES = ((2, 2, 5, 4, 3, 3, 2, 1, 0), (1, 3, 4, 4, 2, 2, 2, 1, 0),
          (1, 2, 6, 5, 2, 3, 3, 2, 1), (2, 1, 7, 6, 2, 2, 3, 3, 1))

_WIN = "np.lib.stride_tricks.sliding_window_view({}, (kh, kw), axis=(2, 3))"
_PAD_X = "np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad)))"
_FULL = "np.pad({}, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))"
_DILATE = ("np.einsum('noij,ia,jb->noab', dY, np.eye(X.shape[2] + 2 * pad - kh + 1)[::s], "
           "np.eye(X.shape[3] + 2 * pad - kw + 1)[::s])")

_X, _W, _B = ("N", "C", "h", "w"), ("O", "C", "kh", "kw"), ("O",)
_DY, _XP = ("N", "O", "h'", "w'"), ("N", "C", "h+2pad", "w+2pad")
_DYD = ("N", "O", "h₁", "w₁")


def _forward(xp: str = "Xp") -> str:
    return (f"np.einsum('ncijpq,ocpq->noij', {_WIN.format(xp)}[:, :, ::s, ::s], W) "
            "+ b[:, None, None]")


def _dW(xp: str = "Xp") -> str:
    return f"np.einsum('noij,ncijpq->ocpq', dY, {_WIN.format(xp)}[:, :, ::s, ::s])"


def _full(dyd: str) -> str:
    return (f"np.einsum('nohwpq,ocpq->nchw', {_WIN.format(_FULL.format(dyd))}, "
            "W[:, :, ::-1, ::-1])")


def _crop(dxp: str = "dXp") -> str:
    return f"({dxp})[:, :, pad:pad + X.shape[2], pad:pad + X.shape[3]]"


def _lhs(text: str, latex: str, py: str) -> tuple[str, str, str]:
    return (text, latex, py)


_SUM_NIJ = r"\sum_{n,i,j}"


def _forward_step() -> VStep:
    return VStep("definition", "Forward, in index form",
                 "Xᵖ is X with pad zeros on each border; output (i, j) reads the kh × kw window "
                 "whose corner is (s·i, s·j), so h' = ⌊(h + 2pad - kh)/s⌋ + 1 (a cross-"
                 "correlation, as PyTorch computes it)", [
                     Claim(_lhs("Xᵖ", "X^p", "Xp"), Code(
                         "pad(X, pad)", r"\operatorname{pad}(X, \mathrm{pad})", _PAD_X, _XP),
                         "Xp"),
                     Claim(_lhs("Y[n,o,i,j]", "Y_{n,o,i,j}", "Y"), Code(
                         "b[o] + Σ_{c,p,q} W[o,c,p,q] Xᵖ[n,c,s·i+p,s·j+q]",
                         r"b_o + \sum_{c,p,q} W_{o,c,p,q}\, X^p_{n,c,\,si+p,\,sj+q}",
                         _forward(), _DY), "Y")])


def _parameter_step() -> VStep:
    return VStep("parameters", "The bias and the weights",
                 "b[o] is added to every output of channel o, so db sums dY over the batch and "
                 "the positions; W[o,c,p,q] multiplies Xᵖ[n,c,s·i+p,s·j+q] in every output "
                 "(n, o, i, j), so dW is the correlation of Xᵖ with dY (at the stride)", [
                     Claim(_lhs("db[o]", "db_o", "db"), Code(
                         "Σ_{n,i,j} dY[n,o,i,j]", _SUM_NIJ + " dY_{n,o,i,j}",
                         "np.sum(dY, axis=(0, 2, 3))", _B), "db"),
                     Claim(_lhs("dW[o,c,p,q]", "dW_{o,c,p,q}", "dW"), Code(
                         "Σ_{n,i,j} dY[n,o,i,j] Xᵖ[n,c,s·i+p,s·j+q]",
                         _SUM_NIJ + r" dY_{n,o,i,j}\, X^p_{n,c,\,si+p,\,sj+q}", _dW(), _W),
                         "dW")])


def _plain_steps() -> list[VStep]:
    """dX at stride 1 without padding: checked on those cases only."""
    rotated = ("Σ_o pad(dY, kh - 1, kw - 1) ⋆ rot180(W)",
               r"\sum_o \operatorname{pad}(dY, k_h - 1, k_w - 1) \star "
               r"\operatorname{rot}_{180}(W)")
    return [
        VStep("chain", "The input, at stride 1 without padding",
              "X[n,c,r,t] meets W[o,c,p,q] in the output (i, j) = (r - p, t - q) when that "
              "output exists; dY is zero outside its h' × w' entries", [
                  Claim(_lhs("dX[n,c,r,t]", "dX_{n,c,r,t}", "dX"), Code(
                      "Σ_{o,p,q} dY[n,o,r-p,t-q] W[o,c,p,q]",
                      r"\sum_{o,p,q} dY_{n,o,\,r-p,\,t-q}\, W_{o,c,p,q}", _full("dY"), _X),
                      "dX")]),
        VStep("rewrite", "A full convolution with the rotated kernel",
              "with p' = kh - 1 - p the sum reads dY at r - kh + 1 + p': a correlation of dY, "
              "padded by kh - 1 rows and kw - 1 columns of zeros on each side (the full "
              "convolution: every overlap of the kernel with dY, h' + kh - 1 = h rows), with "
              "the kernel rotated by 180 degrees, rot180(W)[o,c,p,q] = W[o,c,kh-1-p,kw-1-q]",
              [Claim(_lhs("dX", "dX", "dX"), Code(*rotated, _full("dY"), _X), "dX")]),
    ]


def _stride_steps() -> list[VStep]:
    return [
        VStep("chain", "What the stride changes",
              "the stride-s output is the stride-1 output Y₁ (h₁ = h + 2pad - kh + 1 rows) at "
              "every s-th entry, so ∂E/∂Y₁ is dY with s - 1 zeros between its entries, zero on "
              "the rows no window starts at (the dilated dY)", [
                  Claim(_lhs("dYᵈ[n,o,s·i,s·j]", "dY^d_{n,o,\\,si,\\,sj}", "dYd"), Code(
                      "dY[n,o,i,j], 0 elsewhere", r"dY_{n,o,i,j},\ 0 \text{ elsewhere}",
                      _DILATE, _DYD), "dYd")]),
        VStep("chain", "The full convolution of the dilated dY",
              "the stride-1 rule on Xᵖ and dYᵈ: h₁ + kh - 1 = h + 2pad rows", [
                  Claim(_lhs("dXᵖ", "dX^p", "dXp"), Code(
                      "Σ_o pad(dYᵈ, kh - 1, kw - 1) ⋆ rot180(W)",
                      r"\sum_o \operatorname{pad}(dY^d, k_h - 1, k_w - 1) \star "
                      r"\operatorname{rot}_{180}(W)", _full("dYd"), _XP), "dXp")]),
        VStep("chain", "What the padding changes",
              "the zeros of the border are not inputs: crop pad rows and columns off each "
              "border of dXᵖ", [
                  Claim(_lhs("dX", "dX", "dX"), Code(
                      "dXᵖ[:, :, pad : pad + h, pad : pad + w]",
                      r"dX^p_{:,\,:,\,\mathrm{pad}:\mathrm{pad}+h,\,\mathrm{pad}:\mathrm{pad}+w}",
                      _crop(), _X), "dX")]),
    ]


def _results() -> dict[str, Claim]:
    """dX, dW, db as NumPy expressions of X, W, dY, s, pad, kh, kw only."""
    dX = _crop(_full(f"({_DILATE})"))
    return {
        "dX": Claim(_lhs("dX", "dX", "dX"), Code(
            "crop_pad(Σ_o pad(dilate_s(dY), kh - 1, kw - 1) ⋆ rot180(W))",
            r"\operatorname{crop}_{\mathrm{pad}}\left(\sum_o \operatorname{pad}"
            r"(\operatorname{dilate}_s(dY), k_h - 1, k_w - 1) \star "
            r"\operatorname{rot}_{180}(W)\right)", dX, _X), "dX"),
        "dW": Claim(_lhs("dW", "dW", "dW"), Code(
            "Σ_{n,i,j} dY[n,o,i,j] Xᵖ[n,c,s·i+p,s·j+q]",
            _SUM_NIJ + r" dY_{n,o,i,j}\, X^p_{n,c,\,si+p,\,sj+q}", _dW(_PAD_X), _W), "dW"),
        "db": Claim(_lhs("db", "db", "db"), Code(
            "Σ_{n,i,j} dY[n,o,i,j]", _SUM_NIJ + " dY_{n,o,i,j}", "np.sum(dY, axis=(0, 2, 3))", _B),
            "db"),
    }


def _draws() -> list:
    rng = np.random.default_rng(41)
    return [_draw(rng, *case) for case in _CASES]


def _draw(rng, N, C, h, w, O, kh, kw, s, pad):
    """The arrays of one case, the central differences by each, and where."""
    X, W = rng.normal(0.0, 1.0, (N, C, h, w)), rng.normal(0.0, 1.0, (O, C, kh, kw))
    b = rng.normal(0.0, 1.0, O)
    Y = conv2d_forward(X, W, b, s, pad)
    G = rng.normal(0.0, 1.0, Y.shape)
    Xp = np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Y1 = conv2d_forward(Xp, W, b, 1, 0)  # the stride-1 output, of which Y keeps every s-th

    def loss(X=X, W=W, b=b, pad=pad):
        return float(np.sum(conv2d_forward(X, W, b, s, pad) * G))

    truths = {"Xp": Xp, "Y": Y, "db": numeric(lambda v: loss(b=v), b),
              "dW": numeric(lambda v: loss(W=v), W), "dX": numeric(lambda v: loss(X=v), X),
              "dYd": numeric(lambda v: float(np.sum(v[:, :, ::s, ::s] * G)), Y1),
              "dXp": numeric(lambda v: loss(X=v, pad=0), Xp)}
    env = {"X": X, "W": W, "b": b, "dY": G, "s": s, "pad": pad, "kh": kh, "kw": kw}
    return env, truths, (f"N, C, h, w = {N}, {C}, {h}, {w}; O = {O}, kernel {kh} × {kw}, "
                        f"s = {s}, pad = {pad}")


def derive_conv2d() -> VectorDerivation:
    """The derivation of a two-dimensional convolution layer, every claim checked."""
    return _derive()


@functools.lru_cache(maxsize=1)
def _derive() -> VectorDerivation:
    plain, strided = _plain_steps(), _stride_steps()
    steps = [_forward_step(), _parameter_step(), *plain, *strided]
    draws = _draws()
    verify_claims([c for s in (steps[0], steps[1], *strided) for c in s.claims], draws)
    verify_claims([c for s in plain for c in s.claims],
                  [d for d in draws if (d[0]["s"], d[0]["pad"]) == (1, 0)])
    result = _results()
    verify_claims(list(result.values()), draws)
    return VectorDerivation(
        kind="conv2d", title="Backpropagation through a 2-D convolution", steps=steps,
        result=result,
        shapes={"X": _X, "W": _W, "b": _B, "Y": _DY, "dY": _DY, "Xp": _XP, "dYd": _DYD,
                "dXp": _XP, "s": (), "pad": (), "kh": (), "kw": ()},
        symbols=[("X", "N × C × h × w", "the input images (batch, channels, height, width)"),
                 ("W", "O × C × kh × kw", "the kernels (weight, PyTorch's layout)"),
                 ("b", "O", "the bias, one per output channel"),
                 ("dY", "N × O × h' × w'", "∂E/∂Y, the gradient from the layer above"),
                 ("s, pad", "", "the stride and the zero padding of each border"),
                 ("⋆", "", "cross-correlation over the two image axes, summed over C or O")],
        variable="X, W, b", function="Y = Xᵖ ⋆ W + b (Conv2D)",
        checked=("every formula against float64 central differences of a forward pass "
                 "written apart from the layer, on random arrays (4 cases: stride 1 without "
                 "padding twice, where the plain full convolution is checked; stride 2 with "
                 "padding 1; stride 3 with padding 1 and a row no window reaches)"),
        assumptions=["square stride and padding (the same along both image axes); a "
                     "different pair applies each rule along its own axis"],
    )
