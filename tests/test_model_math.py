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


# --- whole networks: the model's backprop against central differences of a loss written here ---
# The loss below is the test's own float64 formula (forward pass, activations, cross-entropies and
# penalties), not the model's: a wrong forward pass or head in the model shows up as a loss that
# disagrees with it, a wrong backward pass as a gradient that disagrees with its differences.
_HIDDEN = {
    "relu": lambda v: np.maximum(v, 0.0),
    "tanh": np.tanh,
    "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
    "linear": lambda v: v,
}
_PENALTIES = {  # per layer index: (l1, l2), Keras' l1 * Σ|W| + l2 * ΣW² on the kernel
    "default": {0: (0.01, 0.02)},
    "multilabel_l2": {0: (0.01, 0.02), 2: (0.0, 0.05)},
}


def _cross_entropy_rows(z, t):
    """−Σ_j t_j log softmax(z)_j per row: log-sum-exp with the max shifted out."""
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return (t * (lse[:, None] - z)).sum(axis=1)


def _independent_loss(ws, x, y, hidden, head):
    """The batch loss of the Dense stack with weights ws = [W1, b1, ..., Wk, bk], in float64."""
    a = x
    for i in range(0, len(ws) - 2, 2):
        a = _HIDDEN[hidden](a @ ws[i] + ws[i + 1])
    z = a @ ws[-2] + ws[-1]
    n, c = z.shape
    if head in ("sparse_logits", "sparse_softmax"):
        per = _cross_entropy_rows(z, np.eye(c)[y])
    elif head == "categorical_smoothed":
        per = _cross_entropy_rows(z, y * (1 - 0.2) + 0.2 / c)
    else:  # sigmoid BCE from logits, log(1 + e^z) − y·z, the mean over the labels
        t = y.reshape(n, c)
        per = (np.logaddexp(0.0, z) - t * z).mean(axis=1)
    penalty = sum(l1 * np.abs(ws[2 * k]).sum() + l2 * np.square(ws[2 * k]).sum()
                  for k, (l1, l2) in _PENALTIES.get(head, _PENALTIES["default"]).items())
    return per.mean() + penalty


def _central_differences(loss_of, ws, h=1e-6):
    grads = []
    for w in ws:
        g = np.zeros_like(w)
        for idx in np.ndindex(w.shape):
            keep = w[idx]
            w[idx] = keep + h
            up = loss_of(ws)
            w[idx] = keep - h
            down = loss_of(ws)
            w[idx] = keep
            g[idx] = (up - down) / (2 * h)
        grads.append(g)
    return grads


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
    # With SGD(1) one step is w − g, so the gradient the model's backward pass computed is
    # w_before − w_after (to ~1e-16 absolute in float64); the step reports the loss before it.
    model.compile(optimizer=optimizers.SGD(learning_rate=1.0), loss=loss)
    model.build((4,))
    ws = model.get_weights()
    reported = model.train_on_batch(x, y)
    analytic = [before - after for before, after in zip(ws, model.get_weights())]
    mine = _independent_loss(ws, x, y, hidden, head)
    assert reported == pytest.approx(mine, rel=1e-13)
    numeric = _central_differences(lambda w: _independent_loss(w, x, y, hidden, head), ws)
    for got, want in zip(analytic, numeric):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


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
