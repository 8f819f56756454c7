"""The network's arithmetic: a hand-worked step, finite differences of whole networks, and
several train_on_batch steps of each optimizer against an independent float64 reference."""

from __future__ import annotations

import numpy as np
import pytest

from logitnet import Sequential, losses, optimizers, regularizers
from logitnet.layers import Dense, Input


def test_hand_worked_forward_loss_and_sgd_step():
    # x (1, 2) -> Dense(2, softmax); W = [[1, 0], [0, 1]], b = [0, 0]; x = [1, 2], y = 1.
    model = Sequential([Input((2,)), Dense(2, activation="softmax")], dtype="float64")
    model.compile(optimizer=optimizers.SGD(learning_rate=0.5), loss="sparse_categorical_crossentropy")
    model.set_weights([np.eye(2), np.zeros(2)])
    x, y = np.array([[1.0, 2.0]]), np.array([1])
    p = np.exp([1.0, 2.0]) / np.exp([1.0, 2.0]).sum()  # softmax of z = x·W = [1, 2]
    np.testing.assert_allclose(model.predict(x, verbose=0), [p], rtol=1e-15)
    loss = model.train_on_batch(x, y)
    assert loss == pytest.approx(-np.log(p[1]), rel=1e-15)  # the loss before the update
    grad_z = p - [0, 1]  # dL/dz for one sample
    W, b = model.get_weights()
    np.testing.assert_allclose(W, np.eye(2) - 0.5 * np.outer([1.0, 2.0], grad_z), rtol=1e-15)
    np.testing.assert_allclose(b, -0.5 * grad_z, rtol=1e-15)


def _network_gradient_check(model, x, y, h=1e-6, rtol=1e-5, atol=1e-8):
    """Compare the model's backprop gradient of the batch loss with central differences."""
    xb, yb, wb = model._prepare(x, y)
    z = model._logits(xb)
    _, grad_z = model._batch_loss(z, yb, wb, need_grad=True)
    model._backward(grad_z)
    analytic = model.grads.copy()
    numeric = np.zeros_like(analytic)
    for i in range(model.params.size):
        keep = model.params[i]
        model.params[i] = keep + h
        up = model._batch_loss(model._logits(xb), yb, wb, need_grad=False)[0]
        model.params[i] = keep - h
        down = model._batch_loss(model._logits(xb), yb, wb, need_grad=False)[0]
        model.params[i] = keep
        numeric[i] = (up - down) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol)


@pytest.mark.parametrize("hidden", ["relu", "tanh", "sigmoid", "linear"])
@pytest.mark.parametrize("head", ["sparse_logits", "sparse_softmax", "categorical_smoothed",
                                  "binary", "multilabel_l2"])
def test_finite_differences_of_whole_networks(hidden, head):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 4))
    if head == "sparse_logits":
        out, loss, y = Dense(3), losses.SparseCategoricalCrossentropy(from_logits=True), rng.integers(0, 3, 7)
    elif head == "sparse_softmax":
        out, loss, y = Dense(3, "softmax"), "sparse_categorical_crossentropy", rng.integers(0, 3, 7)
    elif head == "categorical_smoothed":
        out, loss = Dense(3, "softmax"), losses.CategoricalCrossentropy(label_smoothing=0.2)
        y = np.eye(3)[rng.integers(0, 3, 7)]
    elif head == "binary":
        out, loss, y = Dense(1, "sigmoid"), "binary_crossentropy", rng.integers(0, 2, 7)
    else:
        out, loss = Dense(3, kernel_regularizer=regularizers.l2(0.05)), losses.BinaryCrossentropy(from_logits=True)
        y = rng.integers(0, 2, (7, 3))
    model = Sequential([Dense(5, hidden, kernel_regularizer=regularizers.l1_l2(0.01, 0.02)),
                        Dense(4, hidden), out], seed=0, dtype="float64")
    model.compile(optimizer="sgd", loss=loss)
    _network_gradient_check(model, x, y)


# --- an independent float64 reference: forward, backward and Keras' update rules, by hand ---
def _ref_forward(ws, x):
    acts = [x]
    for i in range(0, len(ws) - 2, 2):
        acts.append(np.maximum(acts[-1] @ ws[i] + ws[i + 1], 0))
    return acts, acts[-1] @ ws[-2] + ws[-1]


def _ref_grads(ws, x, y):
    acts, z = _ref_forward(ws, x)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y]).mean()
    g = p.copy()
    g[np.arange(len(y)), y] -= 1
    g /= len(y)
    grads = [None] * len(ws)
    for i in range(len(ws) - 2, -1, -2):
        grads[i], grads[i + 1] = acts[i // 2].T @ g, g.sum(0)
        if i:
            g = (g @ ws[i].T) * (acts[i // 2] > 0)
    return loss, grads


def _ref_optimizer(name, **kw):
    state = {}

    def step(ws, grads, t):
        out = []
        for j, (w, g) in enumerate(zip(ws, grads)):
            s = state.setdefault(j, {k: np.zeros_like(w) for k in ("m", "v", "vhat", "mg")})
            if name == "sgd":
                mu, lr = kw.get("momentum", 0.0), kw["lr"]
                if mu == 0:
                    w = w - lr * g
                else:
                    s["m"] = mu * s["m"] - lr * g
                    w = w + (mu * s["m"] - lr * g if kw.get("nesterov") else s["m"])
            elif name == "adam":
                b1, b2, eps, lr = 0.9, 0.999, 1e-7, kw["lr"]
                s["m"] = s["m"] + (g - s["m"]) * (1 - b1)
                s["v"] = s["v"] + (g * g - s["v"]) * (1 - b2)
                v = s["v"]
                if kw.get("amsgrad"):
                    s["vhat"] = np.maximum(s["vhat"], s["v"])
                    v = s["vhat"]
                alpha = lr * np.sqrt(1 - b2 ** (t + 1)) / (1 - b1 ** (t + 1))
                w = w - alpha * s["m"] / (np.sqrt(v) + eps)
            else:  # rmsprop
                rho, eps, lr, mu = 0.9, 1e-7, kw["lr"], kw.get("momentum", 0.0)
                s["v"] = rho * s["v"] + (1 - rho) * g * g
                denom = s["v"] + eps
                if kw.get("centered"):
                    s["mg"] = rho * s["mg"] + (1 - rho) * g
                    denom = s["v"] - s["mg"] ** 2 + eps
                inc = lr * g / np.sqrt(denom)
                if mu:
                    s["m"] = mu * s["m"] + inc
                    inc = s["m"]
                w = w - inc
            out.append(w)
        return out

    return step


OPTIMIZER_CASES = [
    ("sgd", dict(lr=0.1), lambda: optimizers.SGD(0.1)),
    ("sgd", dict(lr=0.1, momentum=0.9), lambda: optimizers.SGD(0.1, momentum=0.9)),
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True), lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True)),
    ("adam", dict(lr=0.01), lambda: optimizers.Adam(0.01)),
    ("adam", dict(lr=0.01, amsgrad=True), lambda: optimizers.Adam(0.01, amsgrad=True)),
    ("rmsprop", dict(lr=0.01), lambda: optimizers.RMSprop(0.01)),
    ("rmsprop", dict(lr=0.01, centered=True, momentum=0.5), lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True)),
]


@pytest.mark.parametrize("name,kw,make", OPTIMIZER_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(OPTIMIZER_CASES)])
def test_train_on_batch_steps_match_the_reference(name, kw, make):
    rng = np.random.default_rng(4)
    model = Sequential([Input((4,)), Dense(6, "relu"), Dense(5, "relu"), Dense(3, "softmax")],
                       seed=2, dtype="float64")
    model.compile(optimizer=make(), loss="sparse_categorical_crossentropy")
    ws = model.get_weights()
    ref_step = _ref_optimizer(name, **kw)
    for t in range(5):
        x, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
        ref_loss, grads = _ref_grads(ws, x, y)
        assert model.train_on_batch(x, y) == pytest.approx(ref_loss, rel=1e-12)
        ws = ref_step(ws, grads, t)
    for got, want in zip(model.get_weights(), ws):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
