"""Dense, Dropout and the optimizers, against finite differences and hand-worked updates."""

import math
import warnings

import numpy as np
import pytest

import chainrule.nn as nn
from chainrule import losses, optim
from chainrule.nn import Dense, Dropout
from chainrule.nn.layers import INITIALIZERS, initialize


def central_diff(f, x, eps=1e-6):
    """float64 central differences of the scalar function f at x (x is perturbed in place)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


class TestDense:
    def test_forward_is_xw_plus_b(self):
        layer = Dense(2, 3, dtype="float64", seed=0)
        layer.W[...] = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
        layer.b[...] = [0.5, -0.5, 1.0]
        x = np.array([[1.0, -1.0]])
        # [1*1 - 4, 2 - 5, 3 - 6] + b = [-3, -3, -3] + [0.5, -0.5, 1] = [-2.5, -3.5, -2]
        np.testing.assert_array_equal(layer.forward(x), [[-2.5, -3.5, -2.0]])

    def test_backward_against_finite_differences(self, rng):
        layer = Dense(5, 4, dtype="float64", seed=1)
        x = rng.normal(size=(7, 5))
        upstream = rng.normal(size=(7, 4))

        def loss():
            return float(np.sum(layer.forward(x) * upstream))

        loss()
        dx = layer.backward(upstream)
        np.testing.assert_allclose(layer.dW, central_diff(loss, layer.W), rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(layer.db, central_diff(loss, layer.b), rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(dx, central_diff(loss, x), rtol=1e-7, atol=1e-9)

    def test_no_input_gradient_when_not_needed(self, rng):
        layer = Dense(3, 2, dtype="float64", seed=0)
        layer.forward(rng.normal(size=(4, 3)))
        assert layer.backward(np.ones((4, 2)), need_input_grad=False) is None
        np.testing.assert_allclose(layer.db, [4.0, 4.0])

    def test_float32_stays_float32(self, rng):
        layer = Dense(3, 2, seed=0)
        out = layer.forward(rng.normal(size=(4, 3)).astype(np.float32))
        assert out.dtype == np.float32
        assert layer.backward(np.ones((4, 2), np.float32)).dtype == np.float32
        assert layer.dW.dtype == np.float32

    def test_wrong_input_width_names_shapes(self):
        with pytest.raises(ValueError, match=r"expects input of shape \(m, 3\); got \(2, 4\)"):
            Dense(3, 2).forward(np.zeros((2, 4), np.float32))

    @pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
    def test_bad_sizes(self, bad):
        message = r"'in_features' parameter of Dense must be an integer in the range \[1, inf\)"
        with pytest.raises(ValueError, match=message):
            Dense(bad, 2)

    def test_unknown_initializer_lists_known(self):
        with pytest.raises(ValueError, match="he_normal"):
            Dense(2, 2, init="xavier")

    @pytest.mark.parametrize(
        ("name", "var"),
        [
            ("glorot_uniform", 2 / (400 + 300)),
            ("glorot_normal", 2 / (400 + 300)),
            ("he_uniform", 2 / 400),
            ("he_normal", 2 / 400),
            ("lecun_normal", 1 / 400),
        ],
    )
    def test_initializer_variance(self, name, var):
        w = INITIALIZERS[name](np.random.default_rng(0), 400, 300)
        assert abs(w.var() / var - 1.0) < 0.02
        assert abs(w.mean()) < 0.01 * math.sqrt(var) * 10

    def test_auto_initializer_follows_activation(self):
        assert initialize("auto", "relu") == "he_uniform"
        assert initialize("auto", "selu") == "lecun_normal"
        assert initialize("auto", "tanh") == "glorot_uniform"
        assert initialize("auto", None) == "glorot_uniform"

    def test_same_seed_same_weights(self):
        np.testing.assert_array_equal(Dense(4, 3, seed=5).W, Dense(4, 3, seed=5).W)
        assert not np.array_equal(Dense(4, 3, seed=5).W, Dense(4, 3, seed=6).W)


class TestDropout:
    def test_inverted_scaling_and_mask_in_backward(self):
        layer = Dropout(0.25, seed=0)
        x = np.ones((2000, 50))
        out = layer.forward(x)
        kept = out != 0
        # Kept units are scaled by 1/(1 - p) = 4/3 so the expectation is unchanged.
        np.testing.assert_allclose(out[kept], 4.0 / 3.0)
        assert abs(kept.mean() - 0.75) < 0.01
        grad = layer.backward(np.full_like(x, 2.0))
        np.testing.assert_allclose(grad, np.where(kept, 8.0 / 3.0, 0.0))

    def test_eval_is_identity(self, rng):
        layer = Dropout(0.5, seed=0)
        layer.training = False
        x = rng.normal(size=(3, 4))
        assert layer.forward(x) is x
        assert layer.backward(x) is x

    @pytest.mark.parametrize("p", [-0.1, 1.0, 2, "0.5"])
    def test_bad_p(self, p):
        with pytest.raises(ValueError, match=r"'p' parameter of Dropout .* range \[0, 1\)"):
            Dropout(p)


class TestOptimizers:
    def test_sgd_is_w_minus_eta_grad(self):
        w = np.array([1.0, -2.0, 3.0])
        g = np.array([0.5, 0.25, -1.0])
        optim.SGD(lr=0.1).step([w], [g.copy()])
        # w - 0.1 g = [1 - 0.05, -2 - 0.025, 3 + 0.1]
        np.testing.assert_allclose(w, [0.95, -2.025, 3.1])

    def test_sgd_momentum_by_hand(self):
        w = np.array([1.0])
        opt = optim.SGD(lr=0.1, momentum=0.9)
        opt.step([w], [np.array([1.0])])  # v = 1, w = 1 - 0.1 = 0.9
        opt.step([w], [np.array([1.0])])  # v = 0.9 + 1 = 1.9, w = 0.9 - 0.19 = 0.71
        np.testing.assert_allclose(w, [0.71])

    def test_sgd_nesterov_by_hand(self):
        w = np.array([1.0])
        opt = optim.SGD(lr=0.1, momentum=0.5, nesterov=True)
        opt.step([w], [np.array([2.0])])  # v = 2, step = g + mu v = 2 + 1 = 3, w = 0.7
        np.testing.assert_allclose(w, [0.7])

    def test_weight_decay_adds_lambda_w(self):
        w = np.array([2.0])
        optim.SGD(lr=0.5, weight_decay=0.1).step([w], [np.array([0.0])])
        np.testing.assert_allclose(w, [2.0 - 0.5 * 0.2])  # g = 0 + 0.1 * 2

    def test_adam_first_step_is_lr_times_sign(self):
        # After one step m_hat = g and v_hat = g^2, so the update is lr * g / (|g| + eps).
        w = np.array([1.0, 1.0, 1.0])
        optim.Adam(lr=0.01).step([w], [np.array([3.0, -0.2, 1e-3])])
        np.testing.assert_allclose(w, [0.99, 1.01, 0.99], rtol=1e-6)

    def test_adam_matches_reference_recurrence(self, rng):
        w = rng.normal(size=5)
        ref = w.copy()
        opt = optim.Adam(lr=0.05, beta1=0.8, beta2=0.95, eps=1e-6)
        m = np.zeros(5)
        v = np.zeros(5)
        for t in range(1, 6):
            g = rng.normal(size=5)
            opt.step([w], [g.copy()])
            m = 0.8 * m + 0.2 * g
            v = 0.95 * v + 0.05 * g * g
            ref -= 0.05 * (m / (1 - 0.8**t)) / (np.sqrt(v / (1 - 0.95**t)) + 1e-6)
        np.testing.assert_allclose(w, ref, rtol=1e-10)

    def test_adamw_decay_is_decoupled(self):
        w = np.array([2.0])
        optim.AdamW(lr=0.1, weight_decay=0.5).step([w], [np.array([0.0])])
        # zero gradient: only the decay acts, w = 2 (1 - 0.1 * 0.5) = 1.9
        np.testing.assert_allclose(w, [1.9])

    def test_rmsprop_by_hand(self):
        w = np.array([1.0])
        optim.RMSprop(lr=0.01, rho=0.9, eps=0.0 + 1e-12).step([w], [np.array([2.0])])
        # s = 0.1 * 4 = 0.4, w = 1 - 0.01 * 2 / sqrt(0.4)
        np.testing.assert_allclose(w, [1 - 0.02 / math.sqrt(0.4)], rtol=1e-9)

    def test_clip_grad_norm(self):
        g = [np.array([3.0]), np.array([4.0])]
        assert optim.clip_grad_norm(g, 1.0) == pytest.approx(5.0)
        np.testing.assert_allclose(np.hypot(g[0], g[1]), [1.0], rtol=1e-9)
        small = [np.array([0.3])]
        optim.clip_grad_norm(small, 1.0)
        np.testing.assert_array_equal(small[0], [0.3])

    def test_float32_parameters_stay_float32(self):
        for name in optim.OPTIMIZERS:
            w = np.ones(3, np.float32)
            optim.get(name).step([w], [np.ones(3, np.float32)])
            assert w.dtype == np.float32, name

    def test_registry_and_errors(self):
        assert isinstance(optim.get("adamw"), optim.AdamW)
        with pytest.raises(ValueError, match="sgd, rmsprop, adam, adamw"):
            optim.get("lbfgs")
        with pytest.raises(ValueError, match=r"'lr' parameter of SGD .* range \(0, inf\)"):
            optim.SGD(lr=-1)
        with pytest.raises(ValueError, match="momentum"):
            optim.SGD(momentum=1.5)
        with pytest.raises(ValueError, match="nesterov"):
            optim.SGD(nesterov=True)

    @pytest.mark.parametrize(
        ("get", "name", "cls", "kwargs"),
        [
            (nn.get, "Leaky-ReLU", nn.LeakyReLU, {"alpha": 0.2}),
            (losses.get, "Huber", losses.Huber, {"delta": 2.0}),
            (optim.get, "SGD", optim.SGD, {"lr": 0.5}),
            (optim.get_schedule, "StepLR", optim.StepLR, {"step_size": 3}),
        ],
    )
    def test_every_get_follows_one_rule(self, get, name, cls, kwargs):
        # a name (any case, class names too) or a class builds a fresh object with the keywords
        assert type(get(name, **kwargs)) is cls and type(get(cls, **kwargs)) is cls
        assert get(name) is not get(name)
        # an instance is returned as it is; keywords with it would be ignored, so they are refused
        instance = cls()
        assert get(instance) is instance
        with pytest.raises(ValueError, match=r"or the instance alone"):
            get(instance, **kwargs)
        with pytest.raises(ValueError, match=r"accepts only .*; got \['bogus'\]"):
            get(name, bogus=1)
        with pytest.raises(ValueError, match=r"Unknown .* 'nonesuch'\. Known"):
            get("nonesuch")
        with pytest.raises(ValueError, match=r"got int 3\."):
            get(3)


class TestSchedules:
    def test_values(self):
        assert optim.get_schedule(None).lr(7, 0.1) == 0.1
        assert optim.StepLR(step_size=2, gamma=0.5).lr(5, 1.0) == 0.25  # 0.5^(5 // 2)
        assert optim.ExponentialLR(gamma=0.9).lr(2, 1.0) == pytest.approx(0.81)
        cos = optim.CosineLR(t_max=10, eta_min=0.1)
        assert cos.lr(0, 1.0) == pytest.approx(1.0)
        assert cos.lr(5, 1.0) == pytest.approx(0.55)  # 0.1 + 0.45 (1 + cos(pi/2))
        assert cos.lr(10, 1.0) == pytest.approx(0.1)

    def test_reduce_on_plateau(self):
        sched = optim.ReduceLROnPlateau(factor=0.5, patience=1)
        lrs = [sched.lr(e, 1.0, m) for e, m in enumerate([None, 1.0, 0.9, 0.9, 0.9, 0.9, 0.9])]
        assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25]

    def test_unknown_schedule(self):
        with pytest.raises(ValueError, match="cosine"):
            optim.get_schedule("warmup")


# --- optimizers against the update rules written out from the papers ------------------------------


def _run(opt, w, grads):
    for g in grads:
        opt.step([w], [g.copy()])
    return w


def test_sgd_nesterov_with_weight_decay_matches_the_pytorch_recurrence(rng):
    w0, grads = rng.normal(size=6), rng.normal(size=(5, 6))
    lr, mu, wd = 0.1, 0.9, 0.01
    w, v = w0.copy(), np.zeros(6)
    for g in grads:  # torch.optim.SGD: d = g + wd w; v = mu v + d; step = d + mu v
        d = g + wd * w
        v = mu * v + d
        w = w - lr * (d + mu * v)
    got = _run(optim.SGD(lr=lr, momentum=mu, nesterov=True, weight_decay=wd), w0.copy(), grads)
    np.testing.assert_allclose(got, w, rtol=1e-13)


def test_rmsprop_with_weight_decay_matches_the_recurrence(rng):
    w0, grads = rng.normal(size=6), rng.normal(size=(5, 6))
    lr, rho, eps, wd = 0.01, 0.8, 1e-8, 0.1
    w, s = w0.copy(), np.zeros(6)
    for g in grads:
        d = g + wd * w
        s = rho * s + (1 - rho) * d * d
        w = w - lr * d / (np.sqrt(s) + eps)
    got = _run(optim.RMSprop(lr=lr, rho=rho, eps=eps, weight_decay=wd), w0.copy(), grads)
    np.testing.assert_allclose(got, w, rtol=1e-12)


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
def test_adam_and_adamw_with_weight_decay_match_the_papers(cls, rng):
    w0, grads = rng.normal(size=6), rng.normal(size=(6, 6))
    lr, b1, b2, eps, wd = 0.02, 0.85, 0.99, 1e-7, 0.3
    w, m, v = w0.copy(), np.zeros(6), np.zeros(6)
    for t, g in enumerate(grads, start=1):
        if cls is optim.AdamW:  # Loshchilov & Hutter: shrink w, the gradient is untouched
            w = w - lr * wd * w
        else:  # Kingma & Ba with L2: the decay joins the gradient
            g = g + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    opt = cls(lr=lr, beta1=b1, beta2=b2, eps=eps, weight_decay=wd)
    np.testing.assert_allclose(_run(opt, w0.copy(), grads), w, rtol=1e-11)


def test_clip_norm_inside_the_optimizer_clips_the_joint_norm():
    w1, w2 = np.zeros(1), np.zeros(1)
    # joint norm of (3, 4) is 5; clipped to 1 the gradient is (0.6, 0.8) and w = -lr g
    optim.SGD(lr=1.0, clip_norm=1.0).step([w1, w2], [np.array([3.0]), np.array([4.0])])
    np.testing.assert_allclose([w1[0], w2[0]], [-0.6, -0.8], rtol=1e-10)


@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optimizers_at_extreme_gradients(name, dtype):
    g = np.array([1e9, -1e9, 1e3, -1e3, 0.0, 1e-30], dtype=dtype)
    w = np.ones(6, dtype=dtype)
    opt = optim.get(name, lr=1e-6 if name == "sgd" else 1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step([w], [g.copy()])
    assert w.dtype == dtype and np.isfinite(w).all()
    assert np.all(np.sign(1.0 - w.astype(np.float64))[:4] == np.sign(g[:4]))  # downhill
    nan = np.array([np.nan, 1.0], dtype=dtype)
    w = np.ones(2, dtype=dtype)
    optim.get(name).step([w], [nan])
    assert np.isnan(w[0])  # a NaN gradient is never hidden


def test_every_schedule_by_name_and_cosine_holds_after_t_max():
    names = {"constant": optim.ConstantLR, "step": optim.StepLR, "exponential": optim.ExponentialLR,
             "cosine": optim.CosineLR, "plateau": optim.ReduceLROnPlateau}
    for name, cls in names.items():
        assert type(optim.get_schedule(name)) is cls
    assert optim.get_schedule("constant").lr(99, 0.3) == 0.3
    cos = optim.CosineLR(t_max=4, eta_min=0.01)
    assert cos.lr(4, 1.0) == cos.lr(40, 1.0) == pytest.approx(0.01)


def test_a_subclass_that_stores_its_parameters_otherwise_still_has_a_repr_and_trains(rng):
    # get_config reads each constructor argument back from the attribute of its name; a user's
    # subclass that keeps one under another name (or takes **kwargs) must not break repr or fit
    from chainrule.nn import mlp

    class WarmSGD(optim.SGD):
        def __init__(self, lr=0.1, warmup=3, **kwargs):
            super().__init__(lr=lr, **kwargs)
            self.n_warm = warmup

    opt = WarmSGD(lr=0.05, warmup=2)
    assert opt.get_config() == {"lr": 0.05}
    assert repr(opt) == "WarmSGD(lr=0.05)"
    X = rng.normal(size=(16, 3))
    y = rng.integers(0, 2, size=16)
    history = mlp([3, 4, 2], output="softmax", dtype="float64", seed=0).fit(
        X, y, loss="ce", optimizer=opt, epochs=2, batch_size=8, verbose=0)
    assert len(history.loss) == 2
