"""Hypothesis properties of the ops and finite-difference checks of every gradient (float64)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from logitnet import losses, ops

settings.register_profile("logitnet", max_examples=60, deadline=None)
settings.load_profile("logitnet")

# Logits on a grid of 1/8 so that adding an integer shift is exact.
grid_values = st.integers(-400, 400).map(lambda k: k / 8)


@st.composite
def logits_and_labels(draw, dtype=np.float64, max_classes=12):
    n = draw(st.integers(1, 6))
    c = draw(st.integers(1, max_classes))
    z = draw(hnp.arrays(dtype, (n, c), elements=grid_values))
    y = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    return z, y


@st.composite
def soft_rows(draw, n, c):
    w = draw(hnp.arrays(np.float64, (n, c), elements=st.floats(0, 1)))
    w[:, 0] += 1e-3
    return w / w.sum(axis=1, keepdims=True)


@given(logits_and_labels(np.float64), st.integers(-1000, 1000))
def test_shift_invariance_float64(zy, shift):
    z, y = zy
    eps = np.finfo(np.float64).eps
    np.testing.assert_allclose(ops.softmax(z + shift), ops.softmax(z), rtol=8 * eps, atol=0)
    np.testing.assert_allclose(ops.log_softmax(z + shift), ops.log_softmax(z), rtol=8 * eps, atol=0)
    loss_a, grad_a = ops.softmax_cross_entropy(z + shift, y)
    loss_b, grad_b = ops.softmax_cross_entropy(z, y)
    np.testing.assert_allclose(loss_a, loss_b, rtol=8 * eps, atol=0)
    np.testing.assert_allclose(grad_a, grad_b, rtol=8 * eps, atol=0)


@given(logits_and_labels(np.float32), st.integers(-100, 100))
def test_shift_invariance_float32(zy, shift):
    # Each result is correctly rounded from the same true value, so they agree to 1 ulp.
    z, y = zy
    eps = np.finfo(np.float32).eps
    loss_a, grad_a = ops.softmax_cross_entropy(z + np.float32(shift), y)
    loss_b, grad_b = ops.softmax_cross_entropy(z, y)
    np.testing.assert_allclose(loss_a, loss_b, rtol=eps, atol=0)
    np.testing.assert_allclose(grad_a, grad_b, rtol=eps, atol=0)


@given(logits_and_labels(np.float32, max_classes=200))
def test_probabilities_sum_to_one_and_gradient_rows_to_zero(zy):
    z, y = zy
    c = z.shape[1]
    eps = np.finfo(np.float32).eps
    p = ops.softmax(z).astype(np.float64)
    assert np.all(np.abs(p.sum(axis=1) - 1) <= c * eps)
    _, grad = ops.softmax_cross_entropy(z, y)
    assert np.all(np.abs(grad.astype(np.float64).sum(axis=1)) <= c * eps)
    assert np.all((grad >= -1) & (grad <= 1))


@given(logits_and_labels(np.float64))
def test_loss_identities(zy):
    z, y = zy
    loss, _ = ops.softmax_cross_entropy(z, y)
    rows = np.arange(len(y))
    np.testing.assert_allclose(loss, -ops.log_softmax(z)[rows, y], rtol=1e-15, atol=1e-300)
    # The plain formula's log(1 + s) is off by up to a few ulps of 1 where the result is near 0
    # (logitnet's log1p is right there: [0, -4.875] gives 0.007606094404334004, as mpmath does).
    m = np.max(z, 1)
    plain = m + np.log(np.exp(z - m[:, None]).sum(1))
    np.testing.assert_allclose(ops.logsumexp(z), plain, rtol=1e-14, atol=1e-15 * (1 + np.abs(m).max()))


@given(hnp.arrays(np.float64, (7,), elements=grid_values), hnp.arrays(np.int64, (7,), elements=st.integers(0, 1)))
def test_two_class_softmax_equals_sigmoid_bce(d, y):
    # CE([0, d], y) = BCE(d, y): the binary case of the same formula.
    z = np.stack([np.zeros_like(d), d], axis=1)
    ce_loss, ce_grad = ops.softmax_cross_entropy(z, y)
    bce_loss, bce_grad = ops.sigmoid_binary_cross_entropy(d, y)
    np.testing.assert_allclose(ce_loss, bce_loss, rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(ce_grad[:, 1], bce_grad, rtol=1e-15, atol=1e-300)


@given(hnp.arrays(np.float64, (9,), elements=st.floats(-60, 60)))
def test_bce_hard_labels_are_softplus_forms(z):
    np.testing.assert_allclose(ops.sigmoid_binary_cross_entropy(z, 1.0)[0], -ops.log_sigmoid(z), rtol=1e-15)
    np.testing.assert_allclose(ops.sigmoid_binary_cross_entropy(z, 0.0)[0], ops.softplus(z), rtol=1e-15)
    np.testing.assert_allclose(ops.sigmoid(z) + ops.sigmoid(-z), 1.0, rtol=2.5 * np.finfo(np.float64).eps)


@given(logits_and_labels(np.float32))
def test_functional_and_class_forms_agree(zy):
    z, y = zy
    per_sample = losses.sparse_categorical_crossentropy(y, z, from_logits=True)
    value = losses.SparseCategoricalCrossentropy(from_logits=True)(y, z)
    assert value.dtype == np.float32
    np.testing.assert_allclose(value, per_sample.astype(np.float64).mean(), rtol=1e-6)
    onehot = np.eye(z.shape[1], dtype=np.float32)[y]
    np.testing.assert_array_equal(losses.categorical_crossentropy(onehot, z, from_logits=True), per_sample)
    total = losses.CategoricalCrossentropy(from_logits=True, reduction="sum")(onehot, z)
    np.testing.assert_allclose(total, per_sample.astype(np.float64).sum(), rtol=1e-6)


def _central_difference(f, z, h=1e-6):
    g = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += h
        down[idx] -= h
        g[idx] = (f(up) - f(down)).sum() / (2 * h)  # unaffected entries cancel exactly
    return g


@given(st.data())
def test_finite_differences_softmax_cross_entropy(data):
    n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(2, 6))
    z = data.draw(hnp.arrays(np.float64, (n, c), elements=st.floats(-15, 15)))
    y = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    _, grad = ops.softmax_cross_entropy(z, y)
    fd = _central_difference(lambda v: ops.softmax_cross_entropy(v, y)[0], z)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)
    soft = data.draw(soft_rows(n, c))
    _, grad = ops.softmax_cross_entropy(z, soft)
    fd = _central_difference(lambda v: ops.softmax_cross_entropy(v, soft)[0], z)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)


@given(st.data())
def test_finite_differences_bce(data):
    z = data.draw(hnp.arrays(np.float64, (3, 4), elements=st.floats(-30, 30)))
    y = data.draw(hnp.arrays(np.float64, (3, 4), elements=st.floats(0, 1)))
    w = data.draw(hnp.arrays(np.float64, (4,), elements=st.floats(0, 5)))
    _, grad = ops.sigmoid_binary_cross_entropy(z, y, w)
    fd = _central_difference(lambda v: ops.sigmoid_binary_cross_entropy(v, y, w)[0], z)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)
