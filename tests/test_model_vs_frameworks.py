"""Optional: the same network and weights in PyTorch / Keras give the same outputs, losses and
updated weights (rtol 1e-5 forward, 1e-4 after 5 steps). Needs the `compare` extra (tests/frameworks.py)."""

from __future__ import annotations

import numpy as np
import pytest

from frameworks import need
from logitnet import Sequential, losses, optimizers
from logitnet.layers import Dense, Input

# Keras 3 on torch converts tensors through NumPy 2's deprecated __array__ path.
pytestmark = [pytest.mark.compare, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
STEPS = 5


def _data(seed=0, n=16):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(n, 6)).astype(np.float32), rng.integers(0, 4, n)) for _ in range(STEPS)]


def _ours(opt):
    model = Sequential([Input((6,)), Dense(8, "relu"), Dense(7, "tanh"), Dense(4)], seed=1)
    model.compile(optimizer=opt, loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


TORCH_CASES = {
    "sgd": (lambda: optimizers.SGD(0.1), lambda p, t: t.optim.SGD(p, lr=0.1)),
    "momentum": (lambda: optimizers.SGD(0.1, momentum=0.9), lambda p, t: t.optim.SGD(p, lr=0.1, momentum=0.9)),
    "nesterov": (lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                 lambda p, t: t.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    # Keras and PyTorch place Adam's epsilon differently; a tiny epsilon hides it. RMSprop is
    # not compared here: Keras divides by sqrt(v + eps), PyTorch by sqrt(v) + eps, and for a
    # weight whose gradients are ~1e-6 the two steps differ whatever eps is (the Keras test
    # below checks RMSprop exactly).
    "adam": (lambda: optimizers.Adam(0.01, epsilon=1e-12), lambda p, t: t.optim.Adam(p, lr=0.01, eps=1e-12)),
}


@pytest.mark.parametrize("case", sorted(TORCH_CASES))
def test_same_trajectory_as_pytorch(case):
    torch = need("torch")
    ours_opt, torch_opt = TORCH_CASES[case]
    model = _ours(ours_opt())
    ws = model.get_weights()
    layers = [torch.nn.Linear(6, 8), torch.nn.Linear(8, 7), torch.nn.Linear(7, 4)]
    with torch.no_grad():
        for i, lin in enumerate(layers):  # torch keeps W as (out, in)
            lin.weight.copy_(torch.tensor(ws[2 * i].T))
            lin.bias.copy_(torch.tensor(ws[2 * i + 1]))
    net = torch.nn.Sequential(layers[0], torch.nn.ReLU(), layers[1], torch.nn.Tanh(), layers[2])
    opt = torch_opt(net.parameters(), torch)
    for step, (x, y) in enumerate(_data()):
        logits_t = net(torch.tensor(x))
        loss_t = torch.nn.functional.cross_entropy(logits_t, torch.tensor(y))
        if step == 0:
            np.testing.assert_allclose(model(x), logits_t.detach().numpy(), rtol=1e-5, atol=1e-6)
        assert model.train_on_batch(x, y) == pytest.approx(loss_t.item(), rel=1e-5)
        opt.zero_grad()
        loss_t.backward()
        opt.step()
    theirs = [a for lin in layers for a in (lin.weight.detach().numpy().T, lin.bias.detach().numpy())]
    for got, want in zip(model.get_weights(), theirs):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", ["sgd", "momentum", "nesterov", "adam", "amsgrad", "rmsprop"])
def test_same_trajectory_as_keras(case):
    keras = need("keras")
    make = {"sgd": lambda o: o.SGD(0.1), "momentum": lambda o: o.SGD(0.1, momentum=0.9),
            "nesterov": lambda o: o.SGD(0.1, momentum=0.9, nesterov=True), "adam": lambda o: o.Adam(0.01),
            "amsgrad": lambda o: o.Adam(0.01, amsgrad=True), "rmsprop": lambda o: o.RMSprop(0.01)}[case]
    model = _ours(make(optimizers))
    ref = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, "relu"), keras.layers.Dense(7, "tanh"),
                            keras.layers.Dense(4)])
    ref.compile(optimizer=make(keras.optimizers), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ref.set_weights(model.get_weights())
    for step, (x, y) in enumerate(_data()):
        if step == 0:
            np.testing.assert_allclose(model(x), keras.ops.convert_to_numpy(ref(x)), rtol=1e-5, atol=1e-6)
        ours = model.train_on_batch(x, y)
        theirs = ref.train_on_batch(x, y)
        ref.reset_metrics()  # Keras 3 would otherwise report a running mean over calls
        assert ours == pytest.approx(float(np.asarray(theirs).ravel()[0]), rel=1e-5)
    for got, want in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
