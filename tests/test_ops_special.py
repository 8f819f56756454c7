"""Documented behaviour at ±inf, NaN, ±1e30 and empty inputs; shapes, axes, dtypes and errors."""

from __future__ import annotations

import numpy as np
import pytest

from logitnet import ops

inf, nan = np.inf, np.nan
DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_propagates_through_its_row_only(dtype):
    z = np.array([[0.0, nan, 1.0], [0.0, 1.0, 2.0]], dtype)
    loss, grad = ops.softmax_cross_entropy(z, [0, 2])
    assert np.isnan(loss[0]) and np.isnan(grad[0]).all()
    assert np.isfinite(loss[1]) and np.isfinite(grad[1]).all()
    assert np.isnan(ops.softmax(z)[0]).all() and np.isnan(ops.log_softmax(z)[0]).all()
    assert np.isnan(ops.logsumexp(z)[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_plus_inf_in_the_true_class_gives_loss_zero_exactly(dtype):
    z = np.array([[inf, 3.0, -inf, 1e30]], dtype)
    loss, grad = ops.softmax_cross_entropy(z, [0])
    assert loss[0] == 0.0
    assert (grad == 0).all()
    np.testing.assert_array_equal(ops.softmax(z), [[1, 0, 0, 0]])
    np.testing.assert_array_equal(ops.log_softmax(z), [[0, -inf, -inf, -inf]])
    assert ops.logsumexp(z)[0] == inf


@pytest.mark.parametrize("dtype", DTYPES)
def test_plus_inf_in_a_wrong_class_gives_infinite_loss(dtype):
    z = np.array([[1.0, inf, 0.0]], dtype)
    loss, grad = ops.softmax_cross_entropy(z, [0])
    assert loss[0] == inf
    np.testing.assert_array_equal(grad, [[-1, 1, 0]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_minus_inf_in_the_true_class(dtype):
    z = np.array([[-inf, 0.0, 0.0]], dtype)
    loss, grad = ops.softmax_cross_entropy(z, [0])
    assert loss[0] == inf
    np.testing.assert_allclose(grad, [[-1, 0.5, 0.5]])
    loss, grad = ops.softmax_cross_entropy(z, [1])  # −inf elsewhere is simply probability 0
    assert loss[0] == pytest.approx(np.log(2))
    np.testing.assert_allclose(grad, [[0, -0.5, 0.5]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_undefined_limits_are_nan(dtype):
    # Several +inf (which one wins depends on how they grow) and all −inf (0/0) are undefined.
    z = np.array([[inf, inf, 0.0], [-inf, -inf, -inf]], dtype)
    loss, grad = ops.softmax_cross_entropy(z, [0, 0])
    assert np.isnan(loss).all() and np.isnan(grad).all()
    assert np.isnan(ops.softmax(z)).all()
    np.testing.assert_array_equal(ops.logsumexp(z), [inf, -inf])


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_finite_logits_are_exact(dtype):
    z = np.array([[1e30, -1e30, 0.0], [-1e30, -1e30, -2e30]], dtype)
    loss, grad = ops.softmax_cross_entropy(z, [1, 2])
    big = float(dtype(1e30))
    assert loss[0] == dtype(2 * big)
    assert loss[1] == dtype(float(dtype(2e30)) - big + np.log(2))  # log 2 is lost below 1e30's ulp
    np.testing.assert_array_equal(grad[0], [1, -1, 0])
    np.testing.assert_allclose(grad[1], [0.5, 0.5, -1])


def test_soft_labels_with_inf():
    z = np.array([[inf, 0.0], [inf, 0.0]])
    y = np.array([[1.0, 0.0], [0.5, 0.5]])
    loss, grad = ops.softmax_cross_entropy(z, y)
    np.testing.assert_array_equal(loss, [0, inf])
    np.testing.assert_array_equal(grad, [[0, 0], [0.5, -0.5]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_extremes(dtype):
    z = np.array([inf, inf, -inf, -inf, 1e30, -1e30, nan], dtype)
    y = np.array([1, 0, 0, 1, 1, 1, 1], dtype)
    loss, grad = ops.sigmoid_binary_cross_entropy(z, y)
    np.testing.assert_array_equal(loss[:6], [0, inf, 0, inf, 0, dtype(1e30)])
    np.testing.assert_array_equal(grad[:6], [0, 1, 0, -1, 0, -1])
    assert np.isnan(loss[6]) and np.isnan(grad[6])
    np.testing.assert_array_equal(ops.sigmoid(z[:4]), [1, 1, 0, 0])
    np.testing.assert_array_equal(ops.softplus(z[:4]), [inf, inf, 0, 0])
    np.testing.assert_array_equal(ops.log_sigmoid(z[:4]), [0, 0, -inf, -inf])


def test_bce_hand_values_and_pos_weight():
    # z = 0: σ = 1/2, loss = log 2 either way; grad = σ − y. pos_weight scales the positive term.
    loss, grad = ops.sigmoid_binary_cross_entropy([0.0, 0.0], [1.0, 0.0], pos_weight=[3.0, 3.0])
    np.testing.assert_allclose(loss, [3 * np.log(2), np.log(2)], rtol=1e-15)
    np.testing.assert_allclose(grad, [-1.5, 0.5], rtol=1e-15)
    # Multi-label: pos_weight (L,) broadcasts over the samples.
    z = np.zeros((4, 3))
    loss, _ = ops.sigmoid_binary_cross_entropy(z, np.ones((4, 3)), pos_weight=[1.0, 2.0, 0.5])
    np.testing.assert_allclose(loss, np.tile(np.array([1.0, 2.0, 0.5]) * np.log(2), (4, 1)))


def test_softmax_hand_values():
    z = np.array([1.0, 2.0, 3.0])
    e = np.exp(z - 3)
    np.testing.assert_allclose(ops.softmax(z), e / e.sum(), rtol=1e-15)
    assert ops.logsumexp(z) == pytest.approx(3 + np.log(e.sum()), rel=1e-15)
    loss, grad = ops.softmax_cross_entropy(z, 2)
    assert loss == pytest.approx(np.log(e.sum()), rel=1e-15)
    np.testing.assert_allclose(grad, e / e.sum() - [0, 0, 1], rtol=1e-14)


def test_axis_keepdims_and_shapes():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 3))
    for axis in (0, 1, -1):
        p = ops.softmax(x, axis=axis)
        assert p.shape == x.shape
        np.testing.assert_allclose(p.sum(axis=axis), 1, rtol=1e-15)
        np.testing.assert_allclose(np.exp(ops.log_softmax(x, axis=axis)), p, rtol=1e-14)
        lse = ops.logsumexp(x, axis=axis)
        assert lse.shape == np.exp(x).sum(axis=axis).shape
        np.testing.assert_allclose(lse, np.log(np.exp(x).sum(axis=axis)), rtol=1e-14)
        assert ops.logsumexp(x, axis=axis, keepdims=True).shape == np.exp(x).sum(axis=axis, keepdims=True).shape
    assert ops.logsumexp(x).shape == (2, 5)  # last axis by default
    loss, grad = ops.softmax_cross_entropy(x, rng.integers(0, 3, (2, 5)))
    assert loss.shape == (2, 5) and grad.shape == x.shape


def test_empty_inputs():
    loss, grad = ops.softmax_cross_entropy(np.zeros((0, 4), np.float32), np.zeros(0, int))
    assert loss.shape == (0,) and grad.shape == (0, 4) and loss.dtype == np.float32
    assert ops.softmax(np.zeros((0, 4))).shape == (0, 4)
    assert ops.logsumexp(np.zeros((3, 0))).tolist() == [-inf] * 3
    assert ops.sigmoid(np.zeros(0)).shape == (0,)


def test_integer_inputs_compute_in_float64():
    assert ops.softmax([1, 2, 3]).dtype == np.float64
    assert ops.sigmoid(np.array([0, 1], np.int32)).dtype == np.float64


@pytest.mark.parametrize("bad, message", [
    ([5, 0], r"class label 5 is out of range: labels must lie in \[0, 3\)"),
    ([-1, 0], r"class label -1 is out of range"),
    ([0.5, 1.0], r"non-integer value 0.5"),
    ([nan, 1.0], r"non-integer value nan"),
])
def test_bad_integer_labels(bad, message):
    with pytest.raises(ValueError, match=message):
        ops.softmax_cross_entropy(np.zeros((2, 3)), np.array(bad))


def test_bad_shapes_and_types():
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\).*or \(2, 3\).*got labels of shape \(3,\)"):
        ops.softmax_cross_entropy(np.zeros((2, 3)), [0, 1, 2])
    with pytest.raises(ValueError, match="finite and >= 0"):
        ops.softmax_cross_entropy(np.zeros((1, 2)), [[1.5, -0.5]])
    with pytest.raises(ValueError, match="class axis"):
        ops.softmax_cross_entropy(np.float64(1.0), 0)
    with pytest.raises(TypeError, match="float16, float32 or float64.*complex128"):
        ops.softmax(np.array([1j]))
    with pytest.raises(TypeError, match="must be integers, got dtype <U1"):
        ops.softmax_cross_entropy(np.zeros((1, 2)), np.array(["a"]))
    with pytest.raises(ValueError, match=r"binary targets must lie in \[0, 1\], got 2.0"):
        ops.sigmoid_binary_cross_entropy([0.0], [2.0])
    with pytest.raises(ValueError, match="do not match logits"):
        ops.sigmoid_binary_cross_entropy(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="pos_weight must be finite and >= 0"):
        ops.sigmoid_binary_cross_entropy([0.0], [1.0], pos_weight=-1.0)
    with pytest.raises(ValueError, match="does not broadcast"):
        ops.sigmoid_binary_cross_entropy(np.zeros((2, 3)), np.zeros((2, 3)), pos_weight=[1.0, 2.0])


def test_one_hot_labels_take_the_integer_path_with_identical_results():
    import reference as ref

    rng = np.random.default_rng(3)
    z = rng.normal(0, 5, (50, 7)).astype(np.float32)
    y = rng.integers(0, 7, 50)
    loss_i, grad_i = ops.softmax_cross_entropy(z, y)
    loss_o, grad_o = ops.softmax_cross_entropy(z, np.eye(7, dtype=np.float32)[y])
    # Each form against mpmath (correctly rounded), then against each other: the same kernel.
    truth = [ref.softmax_xent(z[i], int(y[i])) for i in range(50)]
    for loss, grad in ((loss_i, grad_i), (loss_o, grad_o)):
        assert ref.max_ulp_error(loss, [t[0] for t in truth], np.float32) <= ref.HALF_ULP
        assert ref.max_ulp_error(grad, [g for t in truth for g in t[1]], np.float32) <= ref.HALF_ULP
    np.testing.assert_array_equal(loss_i, loss_o)
    np.testing.assert_array_equal(grad_i, grad_o)
    # A batch with one soft row goes through the soft path: its rows, soft and one-hot, are
    # correctly rounded too.
    soft = np.eye(7)[y]
    soft[0] = 1 / 7
    loss_s, grad_s = ops.softmax_cross_entropy(z, soft)
    truth[0] = ref.softmax_xent_soft(z[0], soft[0])
    assert ref.max_ulp_error(loss_s, [t[0] for t in truth], np.float32) <= ref.HALF_ULP
    assert ref.max_ulp_error(grad_s, [g for t in truth for g in t[1]], np.float32) <= ref.HALF_ULP


def test_nearly_one_hot_rows_keep_their_small_mass():
    # [1, 1e-20] sums to exactly 1.0 in floating point, yet it is not one-hot: the 1e-20 of
    # mass on a class with log-probability -1000 adds 1e-17 to a loss that is otherwise e^-1000.
    z = np.array([[0.0, -1000.0]])
    loss, grad = ops.softmax_cross_entropy(z, [[1.0, 1e-20]])
    assert loss[0] == pytest.approx(1e-17, rel=1e-12)
    assert grad[0, 1] == pytest.approx(-1e-20, rel=1e-12)
    loss32, _ = ops.softmax_cross_entropy(z.astype(np.float32), np.array([[1.0, 1e-20]], np.float32))
    assert loss32[0] == pytest.approx(1e-17, rel=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_do_not_change_results(dtype):
    rng = np.random.default_rng(5)
    z = rng.normal(0, 4, (2000, 300)).astype(dtype)
    z[17, 3] = 900.0  # a row for the shifted path inside a parallel block
    y = rng.integers(0, 300, 2000)
    try:
        ops.set_num_threads(1)
        one = ops.softmax_cross_entropy(z, y), ops.softmax(z)
        ops.set_num_threads(2)
        two = ops.softmax_cross_entropy(z, y), ops.softmax(z)
    finally:
        ops.set_num_threads(None)
    np.testing.assert_array_equal(one[0][0], two[0][0])
    np.testing.assert_array_equal(one[0][1], two[0][1])
    np.testing.assert_array_equal(one[1], two[1])
    with pytest.raises(ValueError, match="positive integer"):
        ops.set_num_threads(0)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_parallel_ops_work_in_a_forked_child():
    import multiprocessing

    z = np.random.default_rng(1).normal(size=(1024, 512)).astype(np.float32)
    y = np.zeros(1024, dtype=int)
    expected = ops.softmax_cross_entropy(z, y)[0]  # starts the thread pool in the parent
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_child_loss, (z, y)).get(timeout=60)
    np.testing.assert_array_equal(got, expected)


def _child_loss(z, y):
    return ops.softmax_cross_entropy(z, y)[0]


@pytest.mark.parametrize("shape", [(3, 4), (100, 50)], ids=["plain-test", "dot-product"])
def test_all_finite_survives_an_overflowing_check(shape):
    # Above 4,096 elements all_finite sums squares in one BLAS pass; 1e30² overflows, yet every
    # element is finite. (Both sides of 4,096: tests/test_thresholds.py.)
    from logitnet.ops._core import all_finite

    big = np.full(shape, 1e30, np.float32)
    if big.size > 4096:
        with np.errstate(over="ignore"):
            assert not np.isfinite(np.dot(big.ravel(), big.ravel()))  # the fallback's case
    assert all_finite(big)
    for bad in (np.nan, np.inf, -np.inf):
        x = big.copy()
        x[2, 1] = bad
        assert not all_finite(x)
    assert all_finite(np.zeros((0, 5), np.float32))


@pytest.mark.parametrize("rows", [2, 1200])  # 8 and 4,800 features: both sides of all_finite's 4,096
def test_model_accepts_huge_finite_features_and_names_a_nan(rows):
    import logitnet as ln

    model = ln.Sequential([ln.Input((4,)), ln.Dense(3)], seed=0)
    x = np.full((rows, 4), 1e30, np.float32)
    assert model.predict_logits(x).shape == (rows, 3)
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match="row 1, column 2"):
        model.predict_logits(x)
