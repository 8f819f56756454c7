"""Hypothesis properties of the ops and finite-difference checks of every gradient (float64)."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import reference as ref
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


def _ulps(computed, refs, dtype) -> float:
    return ref.max_ulp_error(computed, refs, dtype)


@given(logits_and_labels(np.float64))
def test_loss_log_softmax_and_logsumexp_match_mpmath(zy):
    # The loss, −log_softmax at the label and logsumexp, each against its own mpmath value
    # (not against one another), within the float64 target.
    z, y = zy
    loss, _ = ops.softmax_cross_entropy(z, y)
    rows = np.arange(len(y))
    neg_log_p = -ops.log_softmax(z)[rows, y]
    lse = ops.logsumexp(z)
    for i in rows:
        true_loss = ref.softmax_xent(z[i], int(y[i]))[0]
        assert ref.ulp_error(loss[i], true_loss, np.float64) <= ref.F64_ULPS
        assert ref.ulp_error(neg_log_p[i], -ref.log_softmax(z[i])[y[i]], np.float64) <= ref.F64_ULPS
        assert ref.ulp_error(lse[i], ref.logsumexp(z[i]), np.float64) <= ref.F64_ULPS


@given(hnp.arrays(np.float64, (7,), elements=grid_values), hnp.arrays(np.int64, (7,), elements=st.integers(0, 1)))
def test_two_class_softmax_and_sigmoid_bce_match_mpmath(d, y):
    # CE([0, d], y) = BCE(d, y): both forms against the one mpmath value.
    z = np.stack([np.zeros_like(d), d], axis=1)
    ce_loss, ce_grad = ops.softmax_cross_entropy(z, y)
    bce_loss, bce_grad = ops.sigmoid_binary_cross_entropy(d, y)
    for i in range(7):
        true_loss, true_grad = ref.bce(d[i], y[i])
        for got_loss, got_grad in ((ce_loss[i], ce_grad[i, 1]), (bce_loss[i], bce_grad[i])):
            assert ref.ulp_error(got_loss, true_loss, np.float64) <= ref.F64_ULPS
            assert ref.ulp_error(got_grad, true_grad, np.float64) <= ref.F64_ULPS


@given(hnp.arrays(np.float64, (9,), elements=st.floats(-60, 60)))
def test_bce_hard_labels_and_softplus_forms_match_mpmath(z):
    # BCE(z, 1) = softplus(−z) = −log σ(z) and BCE(z, 0) = softplus(z): each against mpmath.
    tol = ref.F64_ULPS
    softplus_neg, softplus_pos = [ref.softplus(-v) for v in z], [ref.softplus(v) for v in z]
    assert _ulps(ops.sigmoid_binary_cross_entropy(z, 1.0)[0], softplus_neg, np.float64) <= tol
    assert _ulps(-ops.log_sigmoid(z), softplus_neg, np.float64) <= tol
    assert _ulps(ops.sigmoid_binary_cross_entropy(z, 0.0)[0], softplus_pos, np.float64) <= tol
    assert _ulps(ops.softplus(z), softplus_pos, np.float64) <= tol
    assert _ulps(ops.sigmoid(z), [ref.sigmoid(v) for v in z], np.float64) <= tol
    np.testing.assert_allclose(ops.sigmoid(z) + ops.sigmoid(-z), 1.0, rtol=2.5 * np.finfo(np.float64).eps)


@example((np.array([[39.0, -50.0]], np.float32), np.array([0])))  # a subnormal mean loss
@given(logits_and_labels(np.float32))
def test_functional_and_class_forms_match_mpmath(zy):
    # The functions (integer and one-hot labels) and the Loss classes (mean and sum), each against
    # mpmath. Every per-sample loss is >= 0, so rounding each one (0.5 ulp) moves their mean or
    # sum by at most 2^-24 relative; the float64 reduction and the final rounding add 2^-24 more.
    z, y = zy
    n = len(y)
    truth = [ref.softmax_xent(z[i], int(y[i]))[0] for i in range(n)]
    per_sample = losses.sparse_categorical_crossentropy(y, z, from_logits=True)
    assert per_sample.dtype == np.float32
    assert _ulps(per_sample, truth, np.float32) <= ref.HALF_ULP
    onehot = np.eye(z.shape[1], dtype=np.float32)[y]
    assert _ulps(losses.categorical_crossentropy(onehot, z, from_logits=True), truth, np.float32) <= ref.HALF_ULP
    true_sum = ref.mpmath.fsum(truth)
    rtol = 2.0**-23 + 2.0**-40
    # Below 2^-126 float32's spacing is fixed (2^-149): a correctly rounded subnormal result may be
    # off by half of it whatever its relative error (hypothesis found z = [[39, -50]], 2.2e-39).
    atol = 2.0**-150
    value = losses.SparseCategoricalCrossentropy(from_logits=True)(y, z)
    assert value.dtype == np.float32
    assert abs(ref.mpf(float(value)) - true_sum / n) <= rtol * true_sum / n + atol
    total = losses.CategoricalCrossentropy(from_logits=True, reduction="sum")(onehot, z)
    assert abs(ref.mpf(float(total)) - true_sum) <= rtol * true_sum + atol


def _central_difference(f, z, h=1e-6):
    g = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += h
        down[idx] -= h
        g[idx] = (f(up) - f(down)).sum() / (2 * h)  # unaffected entries cancel exactly
    return g


# The losses differentiated below are float64 formulas written here, not logitnet's own.
def _softmax_xent64(z, t):
    """−Σ_j t_j log softmax(z)_j per row (t rows of label mass), log-sum-exp with the max shifted."""
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return (t * (lse[:, None] - z)).sum(axis=1)


def _bce64(z, y, w):
    """w·y·log(1 + e^−z) + (1 − y)·log(1 + e^z), elementwise."""
    return w * y * np.logaddexp(0.0, -z) + (1 - y) * np.logaddexp(0.0, z)


@given(st.data())
def test_finite_differences_softmax_cross_entropy(data):
    n, c = data.draw(st.integers(1, 4)), data.draw(st.integers(2, 6))
    z = data.draw(hnp.arrays(np.float64, (n, c), elements=st.floats(-15, 15)))
    y = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    _, grad = ops.softmax_cross_entropy(z, y)
    fd = _central_difference(lambda v: _softmax_xent64(v, np.eye(c)[y]), z)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)
    soft = data.draw(soft_rows(n, c))
    _, grad = ops.softmax_cross_entropy(z, soft)
    fd = _central_difference(lambda v: _softmax_xent64(v, soft), z)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)


@given(st.data())
def test_finite_differences_bce(data):
    z = data.draw(hnp.arrays(np.float64, (3, 4), elements=st.floats(-30, 30)))
    y = data.draw(hnp.arrays(np.float64, (3, 4), elements=st.floats(0, 1)))
    w = data.draw(hnp.arrays(np.float64, (4,), elements=st.floats(0, 5)))
    _, grad = ops.sigmoid_binary_cross_entropy(z, y, w)
    fd = _central_difference(lambda v: _bce64(v, y, w), z)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-8)
