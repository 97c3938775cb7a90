"""The tests' own oracles: float64 central differences, written apart from the code they check."""

import numpy as np


def numeric_grad(f, x, eps=1e-6):
    """float64 central differences of the scalar f() with respect to x (perturbed in place)."""
    g = np.zeros_like(x, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def numeric_vjp(f, arrays, G, h=1e-6):
    """d sum(f() * G) / d array for each of ``arrays`` (perturbed in place): the vector-Jacobian
    product a backward pass must give for the output cotangent G."""
    return [numeric_grad(lambda: np.sum(f() * G), a, h) for a in arrays]


def assert_model_gradients(model, X, y):
    """Every parameter gradient of ``model`` (its last layer, a softmax, fused into the loss)
    against central differences of the cross-entropy of its logits."""
    from chainrule.losses import CrossEntropyWithLogits

    loss = CrossEntropyWithLogits()
    body = model.layers[:-1]

    def value():
        h = X
        for layer in body:
            h = layer.forward(h)
        return loss._forward(h, y)

    value()
    g = loss._backward()
    for layer in reversed(body):
        g = layer.backward(g)
    for param, grad in zip(model.parameters(), model.gradients(), strict=True):
        np.testing.assert_allclose(grad, numeric_grad(value, param), rtol=1e-5, atol=1e-8)


def sigmoid(z):
    """1/(1 + e^-z), naively: the reference forward passes' gate."""
    return 1.0 / (1.0 + np.exp(-z))


def rnn_forward(x, W_ih, W_hh, b_ih, b_hh):
    """An Elman RNN (tanh) over (batch, time, features), PyTorch's layout, one step at a time:
    the reference forward of the hand-written backward passes the checker is tried on."""
    h, out = np.zeros((len(x), len(W_hh))), []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        out.append(h)
    return np.stack(out, axis=1)
