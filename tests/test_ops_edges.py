"""Edges of the ops that mutation testing found unguarded: strict floating-point modes, the
reported bad value, arrays of rank 1 and 3, mixed special rows, and the sub-ulp corrections of the
float64 paths (each checked against mpmath, a float64 formula written here, or a hand value)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import reference as ref
from logitnet import losses, ops
from logitnet.ops import InfiniteLossWarning
from logitnet.ops._core import all_finite
from logitnet.ops.sigmoid import binary_cross_entropy
from logitnet.ops.softmax import _exact_row_sum
from logitnet.ops.softmax_xent import softmax_cross_entropy

inf, nan = np.inf, np.nan


# --- floating-point modes ------------------------------------------------------------------------

def test_ops_work_under_numpy_errors_set_to_raise():
    """The ops handle overflow, underflow, log(0) and 0·inf themselves: a caller's
    np.errstate(all="raise") must not turn them into FloatingPointError."""
    z = np.array([800.0, -800.0, inf, -inf, 0.0])
    with np.errstate(all="raise"):
        np.testing.assert_array_equal(ops.softplus(z), [800.0, 0.0, inf, 0.0, np.log(2.0)])
        np.testing.assert_array_equal(ops.sigmoid(z), [1.0, 0.0, 1.0, 0.0, 0.5])
        np.testing.assert_array_equal(ops.log_sigmoid(z), [0.0, -800.0, 0.0, -inf, -np.log(2.0)])
        # y = 1 at z = +inf and y = 0 at z = −inf: the other term is 0·inf, which must give 0.
        loss, grad = ops.sigmoid_binary_cross_entropy([inf, -inf, 800.0], [1.0, 0.0, 1.0])
        np.testing.assert_array_equal(loss, [0.0, 0.0, 0.0])
        np.testing.assert_array_equal(grad, [0.0, 0.0, 0.0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InfiniteLossWarning)
            np.testing.assert_array_equal(ops.cross_entropy_from_probs([[0.0, 1.0]], [0]), [inf])
            # Zero label mass on a zero probability: the term is 0, not 0·log(0).
            np.testing.assert_array_equal(ops.cross_entropy_from_probs([[0.0, 1.0]], [[0.0, 1.0]]), [0.0])
            np.testing.assert_array_equal(ops.binary_cross_entropy_from_probs([0.0, 1.0], [0.0, 1.0]),
                                          [0.0, 0.0])
            np.testing.assert_array_equal(ops.binary_cross_entropy_from_probs([0.0], [1.0]), [inf])


def test_all_finite_under_numpy_errors_set_to_raise():
    # Over 4,096 elements the check is a dot product, which overflows here: that is not an error.
    a = np.full(5000, 1e200)
    with np.errstate(all="raise"):
        assert all_finite(a)
        a[-1] = nan
        assert not all_finite(a)


# --- shapes -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [ops.softmax, ops.log_softmax, ops.logsumexp])
def test_a_scalar_has_no_class_axis(fn):
    with pytest.raises(ValueError, match="expected an array with at least one dimension, got a scalar"):
        fn(1.0)


@pytest.mark.parametrize("shape", [(3, 0), (0, 3), (0, 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_of_empty_rows(shape, dtype):
    for fn in (ops.softmax, ops.log_softmax):
        out = fn(np.zeros(shape, dtype))
        assert out.shape == shape and out.dtype == dtype


# --- probabilities --------------------------------------------------------------------------------

def test_zero_probability_warns_once_and_only_with_its_own_warning():
    for call in (lambda: losses.categorical_crossentropy([[1.0, 0.0]], [[0.0, 1.0]]),
                 lambda: losses.sparse_categorical_crossentropy([0], [[0.0, 1.0]]),
                 lambda: losses.binary_crossentropy([[1.0]], [[0.0]])):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert np.isinf(call()).all()
        assert [w.category for w in caught] == [InfiniteLossWarning]  # and no RuntimeWarning


def test_zero_label_mass_on_zero_probability_is_silent():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ops.cross_entropy_from_probs([[0.0, 1.0]], [[0.0, 1.0]])[0] == 0.0
        assert ops.binary_cross_entropy_from_probs([0.0, 1.0], [0.0, 1.0]).tolist() == [0.0, 0.0]
    assert caught == []


@pytest.mark.parametrize("bad", [1.5, -0.5])
@pytest.mark.parametrize("fn, labels", [(ops.cross_entropy_from_probs, [1]),
                                        (ops.binary_cross_entropy_from_probs, 0.0)])
def test_probability_out_of_range_is_named(fn, labels, bad):
    # 0 and 1 are valid and come first: the message must name the value that is not.
    with pytest.raises(ValueError, match=rf"must lie in \[0, 1\], got {bad}; if these are logits"):
        fn(np.array([[0.0, 1.0, bad]]), labels)


def test_cross_entropy_from_probs_on_rank_1_and_rank_3():
    # One sample of shape (C,) with a scalar label.
    assert ops.cross_entropy_from_probs([0.25, 0.75], 1) == -np.log(0.75)
    # (2, 3, 4): the class axis is the last one, not axis 1.
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 1.0, (2, 3, 4))
    p /= p.sum(axis=-1, keepdims=True)
    labels = np.array([[0, 3, 1], [2, 2, 3]])
    expected = -np.log(np.take_along_axis(p, labels[..., None], axis=-1)[..., 0])
    np.testing.assert_array_equal(ops.cross_entropy_from_probs(p, labels), expected)
    soft = rng.uniform(0.0, 1.0, (2, 3, 4))
    np.testing.assert_allclose(ops.cross_entropy_from_probs(p, soft), -(soft * np.log(p)).sum(axis=-1),
                               rtol=1e-15)
    with pytest.raises(ValueError, match=r"labels must have shape \(2, 3\) \(class indices\)"):
        ops.cross_entropy_from_probs(p, labels[:, :2])
    with pytest.raises(ValueError, match="probabilities must have a class axis"):
        ops.cross_entropy_from_probs(0.5, 0)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_loss_from_probs_keeps_the_dtype_and_rounds_once(dtype):
    p = np.array([[0.1, 0.2, 0.7], [0.3, 0.3, 0.4]], dtype)
    p64 = p.astype(np.float64)
    ce = ops.cross_entropy_from_probs(p, [2, 0])
    assert ce.dtype == dtype
    np.testing.assert_array_equal(ce, (-np.log(p64[[0, 1], [2, 0]])).astype(dtype))
    bce = ops.binary_cross_entropy_from_probs(p, 1.0)
    assert bce.dtype == dtype
    np.testing.assert_array_equal(bce, (-np.log(p64)).astype(dtype))


# --- the argument a bad dtype is reported for --------------------------------------------------

@pytest.mark.parametrize("call, name", [
    (lambda a: ops.sigmoid(a), "x"), (lambda a: ops.softplus(a), "x"),
    (lambda a: ops.log_sigmoid(a), "x"), (lambda a: ops.logsumexp(a), "x"),
    (lambda a: ops.softmax(a), "logits"), (lambda a: ops.log_softmax(a), "logits"),
    (lambda a: ops.softmax_cross_entropy(a, [0]), "logits"),
    (lambda a: ops.sigmoid_binary_cross_entropy(a, [0.0]), "logits"),
    (lambda a: ops.cross_entropy_from_probs(a, [0]), "probabilities"),
    (lambda a: ops.binary_cross_entropy_from_probs(a, [0.0]), "probabilities"),
])
def test_a_non_float_array_is_refused_by_its_argument_name(call, name):
    with pytest.raises(TypeError, match=rf"^{name} must be a float16, float32 or float64 array, got dtype"):
        call(np.array([["a"]]))


def test_bad_binary_target_is_named():
    z = np.zeros(3)
    with pytest.raises(ValueError, match=r"binary targets must lie in \[0, 1\], got 1.5"):
        ops.sigmoid_binary_cross_entropy(z, [0.0, 1.0, 1.5])
    with pytest.raises(ValueError, match=r"binary targets must lie in \[0, 1\], got -0.5"):
        ops.binary_cross_entropy_from_probs(np.full(3, 0.5), [0.0, 1.0, -0.5])
    with pytest.raises(TypeError, match=r"targets must be numeric, got dtype <U1"):
        ops.sigmoid_binary_cross_entropy(z, np.array(["a", "b", "c"]))


def test_loss_only_calls_return_no_gradient_and_grad_scale_multiplies():
    z = np.array([[-1.0, 0.5, 2.0]])
    y = np.array([[0.0, 1.0, 0.25]])
    assert binary_cross_entropy(z, y)[1] is None
    assert softmax_cross_entropy(z, [2], need_grad=False)[1] is None
    _, g = binary_cross_entropy(z, y, need_grad=True)
    _, g2 = binary_cross_entropy(z, y, need_grad=True, grad_scale=2.0)
    np.testing.assert_array_equal(g2, 2.0 * g)  # times 2 is exact
    np.testing.assert_allclose(g, 1 / (1 + np.exp(-z)) - y, rtol=1e-15)  # σ(z) − y


# --- sigmoid --------------------------------------------------------------------------------------

def test_pos_weight_zero_drops_the_positive_term():
    z = np.array([-2.0, 0.5, 3.0])
    y = np.array([1.0, 0.25, 0.0])
    loss, grad = ops.sigmoid_binary_cross_entropy(z, y, pos_weight=0.0)
    # Only (1 − y)·softplus(z) is left, with derivative (1 − y)·σ(z).
    np.testing.assert_allclose(loss, (1 - y) * np.log1p(np.exp(z)), rtol=1e-15)
    np.testing.assert_allclose(grad, (1 - y) / (1 + np.exp(-z)), rtol=1e-15)
    with pytest.raises(ValueError, match="pos_weight must be finite and >= 0"):
        ops.sigmoid_binary_cross_entropy(z, y, pos_weight=-1e-300)


# --- softmax family: rows with different limits in one call -------------------------------------

MIXED = np.array([[inf, 0.0, 1.0], [nan, 0.0, 1.0], [-inf, -inf, -inf], [inf, inf, 0.0], [1.0, 2.0, 3.0]])


def test_special_rows_side_by_side_keep_their_own_limits():
    tail = np.array([1.0, 2.0, 3.0])
    lse_tail = 3.0 + np.log1p(np.exp(-1.0) + np.exp(-2.0))
    np.testing.assert_array_equal(ops.logsumexp(MIXED)[:4], [inf, nan, -inf, inf])
    assert ops.logsumexp(MIXED)[4] == pytest.approx(lse_tail, rel=1e-15)
    p = ops.softmax(MIXED)
    np.testing.assert_array_equal(p[0], [1.0, 0.0, 0.0])
    assert np.isnan(p[1:4]).all()
    np.testing.assert_allclose(p[4], np.exp(tail - lse_tail), rtol=1e-15)
    lp = ops.log_softmax(MIXED)
    np.testing.assert_array_equal(lp[0], [0.0, -inf, -inf])
    assert np.isnan(lp[1:4]).all()
    np.testing.assert_allclose(lp[4], tail - lse_tail, rtol=1e-15)
    loss, grad = ops.softmax_cross_entropy(MIXED, [0, 0, 0, 0, 2])
    np.testing.assert_array_equal(loss[:1], [0.0])
    assert np.isnan(loss[1:4]).all() and np.isnan(grad[1:4]).all()
    np.testing.assert_array_equal(grad[0], [0.0, 0.0, 0.0])


def test_float64_softmax_stays_within_its_documented_error_at_the_max():
    """At the max, exp(d) = 1 exactly: p = 1/(1 + s) with 1 + s kept as hi + lo is within 1 ulp
    (a rounded reciprocal, then the correction −lo/hi and one more rounding)."""
    rng = np.random.default_rng(2)
    z = rng.normal(0.0, 3.0, (200, 3))
    p = ops.softmax(z)
    k = z.argmax(axis=1)
    errs = [ref.ulp_error(p[i, k[i]], ref.softmax(z[i])[k[i]], np.float64) for i in range(len(z))]
    assert max(errs) <= 1.0 + 1e-9


def test_exact_row_sum_is_rounded_once():
    # Σ_j e_j for 0 <= e <= 1, against math.fsum (correctly rounded), for many widths and scales.
    rng = np.random.default_rng(3)
    for c in (1, 2, 3, 5, 8, 17, 100, 1000):
        for scale in (1.0, 1e-3, 1e-9):
            e = rng.uniform(0.0, 1.0, (50, c)) * scale
            np.testing.assert_array_equal(_exact_row_sum(e), [math.fsum(row) for row in e])


# --- softmax cross-entropy ----------------------------------------------------------------------

def _rows_with_an_inexact_shift(n=150, seed=1):
    """float64 rows [m, z_y] with z_y − m not representable: the loss needs the low part of the
    shift (d_lo) to be correctly rounded; the wrong sign puts it up to 1.5 ulps off."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(5.0, 30.0, n), rng.uniform(-1e-3, 1e-3, n)], axis=1)


def test_float64_loss_off_the_max_is_correctly_rounded():
    z = _rows_with_an_inexact_shift()
    loss, _ = ops.softmax_cross_entropy(z, np.ones(len(z), dtype=int))
    assert ref.max_ulp_error(loss, [ref.softmax_xent(row, 1)[0] for row in z], np.float64) <= ref.HALF_ULP


def test_float64_one_hot_rows_on_the_soft_label_path_are_correctly_rounded():
    # One soft row sends its whole block down the soft-label path; the one-hot rows there keep the
    # exact loss −log p_y = log1p(s) − d_lo − d_hi.
    z = _rows_with_an_inexact_shift()
    y = np.zeros_like(z)
    y[:, 1] = 1.0
    y[0] = [0.5, 0.5]
    loss, _ = ops.softmax_cross_entropy(z, y)
    assert ref.max_ulp_error(loss[1:], [ref.softmax_xent(row, 1)[0] for row in z[1:]],
                             np.float64) <= ref.HALF_ULP


def test_soft_label_rows_with_minus_inf_where_the_label_is_zero_float64():
    # −log p = inf there, but the label has no mass: the term is 0, not 0·inf = NaN.
    z = np.array([[0.0, 1.0, -inf]])
    y = np.array([[0.5, 0.5, 0.0]])
    loss, grad = ops.softmax_cross_entropy(z, y)
    true, true_grad = ref.softmax_xent_soft([0.0, 1.0, -1e300], y[0])  # exp(−1e300) is 0 to 60 digits
    assert ref.ulp_error(loss[0], true, np.float64) <= ref.F64_ULPS
    np.testing.assert_allclose(grad[0], [float(g) for g in true_grad], rtol=1e-15, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_soft_label_rows_with_minus_inf_where_the_label_is_zero_float16_32(dtype):
    # The fast kernel's 0·inf = NaN there sends the row to the exact path; the other rows stay.
    z = np.array([[0.0, 1.0, -inf], [2.0, 0.0, 1.0]], dtype)
    y = np.array([[0.5, 0.5, 0.0], [0.25, 0.0, 0.75]])
    loss, grad = ops.softmax_cross_entropy(z, y)
    for i, zi in enumerate([[0.0, 1.0, -1e300], [2.0, 0.0, 1.0]]):
        true, true_grad = ref.softmax_xent_soft(zi, y[i])
        assert ref.ulp_error(loss[i], true, dtype) <= ref.HALF_ULP
        assert ref.max_ulp_error(grad[i], true_grad, dtype) <= ref.HALF_ULP


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plus_inf_rows_with_soft_labels_that_do_not_sum_to_one(dtype):
    # The limit p = one-hot at the +inf entry; grad = p·ΣY − Y with ΣY = 1.5 here.
    loss, grad = ops.softmax_cross_entropy(np.array([[inf, 0.0, 1.0]], dtype), np.array([[0.5, 1.0, 0.0]]))
    np.testing.assert_array_equal(loss, [inf])
    np.testing.assert_array_equal(grad, [[1.5 - 0.5, -1.0, 0.0]])
    loss, grad = ops.softmax_cross_entropy(np.array([[inf, 0.0]], dtype), np.array([[2.0, 0.0]]))
    np.testing.assert_array_equal(loss, [0.0])
    np.testing.assert_array_equal(grad, [[0.0, 0.0]])


def test_bad_soft_label_is_named():
    # 0 and 0.5 are valid and come first: the message must name the negative one.
    with pytest.raises(ValueError, match=r"label probabilities must be finite and >= 0, got -0.25"):
        ops.softmax_cross_entropy(np.zeros((1, 3)), np.array([[0.0, 0.5, -0.25]]))
    with pytest.raises(ValueError, match=r"label probabilities must be finite and >= 0, got -0.25"):
        ops.cross_entropy_from_probs(np.full((1, 3), 1 / 3), np.array([[0.0, 0.5, -0.25]]))
    with pytest.raises(TypeError, match=r"label probabilities must be numeric, got dtype <U1"):
        ops.cross_entropy_from_probs(np.full((1, 2), 0.5), np.array([["a", "b"]]))
