"""The naive twins (activation first, then log) against the exact ops: the seed's lesson."""

from __future__ import annotations

import numpy as np

import regimes
from logitnet import ops
from logitnet.ops import naive


def test_naive_and_exact_agree_on_ordinary_logits():
    z, y = regimes.softmax_regimes(np.float64)["normal_1"]
    np.testing.assert_allclose(naive.naive_softmax_cross_entropy(z, y)[0],
                               ops.softmax_cross_entropy(z, y)[0], rtol=1e-13)
    np.testing.assert_allclose(naive.naive_softmax(z), ops.softmax(z), rtol=1e-13)
    t = np.linspace(-5, 5, 11)
    np.testing.assert_allclose(naive.naive_sigmoid_binary_cross_entropy(t, t > 0)[0],
                               ops.sigmoid_binary_cross_entropy(t, t > 0)[0], rtol=1e-12)


def test_naive_loses_confident_predictions_in_float32():
    z, y = regimes.softmax_regimes(np.float32)["confident_correct"]
    naive_loss, naive_grad = naive.naive_softmax_cross_entropy(z, y)
    loss, grad = ops.softmax_cross_entropy(z, y)
    rows = np.arange(len(y))
    assert (naive_loss == 0).all() and (naive_grad[rows, y] == 0).all()  # stops learning
    assert (loss > 0).all() and (grad[rows, y] < 0).all()  # still pushes the right way
    # Confidently wrong by more than float32's range: the naive loss is inf, the truth ~120.
    z = np.array([[0.0, 120.0]], np.float32)
    with np.errstate(divide="ignore"):
        assert naive.naive_softmax_cross_entropy(z, [0])[0][0] == np.inf
    assert ops.softmax_cross_entropy(z, [0])[0][0] == np.float32(120.0)


def test_naive_sigmoid_saturates():
    z = np.array([20.0, 100.0], np.float32)
    naive_loss, _ = naive.naive_sigmoid_binary_cross_entropy(z, np.array([1.0, 0.0], np.float32))
    loss, _ = ops.sigmoid_binary_cross_entropy(z, [1.0, 0.0])
    assert naive_loss[0] == 0 and naive_loss[1] == np.inf
    np.testing.assert_allclose(loss, [np.log1p(np.exp(-20.0)), 100.0], rtol=1e-7)
