"""Accuracy against mpmath (60 digits) in every regime: float16/float32 correctly rounded (0.5 ulp,
plus a tie margin), float64 within 4 ulp."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
import regimes
from fast_paths import both_paths  # noqa: F401 - the fixture

from logitnet import ops

# float16/float32 results are a float64 value v rounded once. v is within k float64 ulps of the
# truth t (k a small constant: a few float64 roundings), so |fl(v) − t| <= 0.5 ulp + k·2^-53·|t|,
# and |t| < 2^24 float32 ulps (2^11 float16 ulps): the result is at most 0.5 + k·2^-29 float32
# ulps (0.5 + k·2^-42 float16 ulps) away. It lands on the far side of a tie only when the truth is
# within k·2^-29 ulp of the midpoint (measured: 0.5 + 1.6e-10 for float32 log_softmax). 2^-20
# (reference.HALF_ULP) allows k up to 512, and still fails a result rounded twice (up to 1 ulp
# off).
HALF = ref.HALF_ULP
TOL = {np.float16: HALF, np.float32: HALF, np.float64: ref.F64_ULPS}
DTYPES = [np.float16, np.float32, np.float64]


def _softmax_cases():
    for dtype in DTYPES:
        for name in regimes.softmax_regimes(dtype):
            yield pytest.param(dtype, name, id=f"{dtype.__name__}-{name}")


def _bce_cases():
    for dtype in DTYPES:
        for name in regimes.bce_regimes(dtype):
            yield pytest.param(dtype, name, id=f"{dtype.__name__}-{name}")


@pytest.mark.usefixtures("both_paths")  # the compiled kernel and NumPy's
@pytest.mark.parametrize("dtype,regime", list(_softmax_cases()))
def test_softmax_family_matches_mpmath(dtype, regime):
    z, labels = regimes.softmax_regimes(dtype)[regime]
    loss, grad = ops.softmax_cross_entropy(z, labels)
    probs, log_probs, lse = ops.softmax(z), ops.log_softmax(z), ops.logsumexp(z)
    for out in (loss, grad, probs, log_probs, lse):
        assert out.dtype == dtype
    worst = dict.fromkeys(["loss", "grad", "softmax", "log_softmax", "logsumexp"], 0.0)
    for i in range(z.shape[0]):
        ref_loss, ref_grad = ref.softmax_xent(z[i], int(labels[i]))
        worst["loss"] = max(worst["loss"], ref.ulp_error(loss[i], ref_loss, dtype))
        worst["grad"] = max(worst["grad"], ref.max_ulp_error(grad[i], ref_grad, dtype))
        worst["softmax"] = max(worst["softmax"], ref.max_ulp_error(probs[i], ref.softmax(z[i]), dtype))
        worst["log_softmax"] = max(
            worst["log_softmax"], ref.max_ulp_error(log_probs[i], ref.log_softmax(z[i]), dtype)
        )
        worst["logsumexp"] = max(worst["logsumexp"], ref.ulp_error(lse[i], ref.logsumexp(z[i]), dtype))
    assert max(worst.values()) <= TOL[dtype], worst


@pytest.mark.parametrize("dtype,regime", list(_softmax_cases()))
def test_soft_label_cross_entropy_matches_mpmath(dtype, regime):
    z, _ = regimes.softmax_regimes(dtype)[regime]
    y = regimes.soft_labels(z.shape)
    loss, grad = ops.softmax_cross_entropy(z, y)
    worst_loss = worst_grad = 0.0
    for i in range(z.shape[0]):
        ref_loss, ref_grad = ref.softmax_xent_soft(z[i], y[i])
        worst_loss = max(worst_loss, ref.ulp_error(loss[i], ref_loss, dtype))
        total = sum(ref.mpf(float(v)) for v in y[i])
        probs = ref.softmax(z[i])
        for g, r, p, yj in zip(grad[i], ref_grad, probs, y[i]):
            # float64: p·ΣY − y cancels where p·ΣY ≈ y, so it is measured against the larger
            # of the two terms, as the float64 soft-label BCE gradient (see README).
            scale = max(p * total, ref.mpf(float(yj))) if dtype == np.float64 else None
            worst_grad = max(worst_grad, ref.ulp_error(g, r, dtype, scale))
    assert worst_loss <= TOL[dtype], worst_loss
    assert worst_grad <= TOL[dtype], worst_grad


@pytest.mark.parametrize("dtype,regime", list(_bce_cases()))
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "pos_weight"])
def test_sigmoid_bce_matches_mpmath(dtype, regime, weighted):
    z, y = regimes.bce_regimes(dtype)[regime]
    w = np.linspace(0.25, 4.0, z.size) if weighted else None
    loss, grad = ops.sigmoid_binary_cross_entropy(z, y, w)
    assert loss.dtype == grad.dtype == dtype
    soft = not np.isin(y, (0, 1)).all()
    worst_loss = worst_grad = 0.0
    for i in range(z.size):
        wi = 1.0 if w is None else w[i]
        ref_loss, ref_grad = ref.bce(z[i], y[i], wi)
        worst_loss = max(worst_loss, ref.ulp_error(loss[i], ref_loss, dtype))
        scale = None
        if soft and dtype == np.float64:
            # The allowed exception: (1 − y)σ(z) − w·y·σ(−z) cancels where σ(z) ≈ y; measure
            # against the larger of the two terms, which is at most max(σ(z), y) when w = 1.
            yi = ref.mpf(float(y[i]))
            scale = max((1 - yi) * ref.sigmoid(z[i]), wi * yi * ref.sigmoid(-z[i]), abs(ref_grad))
        worst_grad = max(worst_grad, ref.ulp_error(grad[i], ref_grad, dtype, scale))
    assert worst_loss <= TOL[dtype], worst_loss
    assert worst_grad <= TOL[dtype], worst_grad


@pytest.mark.parametrize("dtype,regime", list(_bce_cases()))
def test_sigmoid_primitives_match_mpmath(dtype, regime):
    z, _ = regimes.bce_regimes(dtype)[regime]
    pairs = [
        (ops.sigmoid(z), [ref.sigmoid(v) for v in z]),
        (ops.softplus(z), [ref.softplus(v) for v in z]),
        (ops.log_sigmoid(z), [-ref.softplus(-v) for v in z]),
    ]
    for computed, refs in pairs:
        assert computed.dtype == dtype
        worst = ref.max_ulp_error(computed, refs, dtype)
        assert worst <= TOL[dtype], worst


def test_confident_correct_loss_is_tiny_not_zero():
    # The true class ahead by 67: loss = log1p(9 e^-30 ...) — PyTorch, Keras and JAX give 0.0.
    z = np.array([[67.0, 0.0, 0.0]], dtype=np.float32)
    loss, grad = ops.softmax_cross_entropy(z, [0])
    expected, ref_grad = ref.softmax_xent(z[0], 0)
    assert float(expected) == pytest.approx(2 * np.exp(-67.0), rel=1e-12)
    assert loss[0] > 0 and ref.ulp_error(loss[0], expected, np.float32) <= HALF
    assert grad[0, 0] < 0 and ref.ulp_error(grad[0, 0], ref_grad[0], np.float32) <= HALF


def test_float16_inputs_are_rounded_once():
    z = np.array([[3.0, -2.0, 0.5, 11.0]], dtype=np.float16)
    loss, grad = ops.softmax_cross_entropy(z, [1])
    assert loss.dtype == grad.dtype == np.float16
    ref_loss, ref_grad = ref.softmax_xent(z[0], 1)
    assert ref.ulp_error(loss[0], ref_loss, np.float16) <= HALF
    assert ref.max_ulp_error(grad[0], ref_grad, np.float16) <= HALF


@pytest.mark.parametrize("dtype", DTYPES)
def test_many_random_rows_stay_within_tolerance(dtype):
    # Broader sampling than the regimes: 300 rows of mixed scales, through the blocked fast path.
    rng = np.random.default_rng(7)
    z = (rng.normal(0, 1, (300, 6)) * rng.choice([0.3, 3, 30, 300], (300, 1))).astype(dtype)
    labels = rng.integers(0, 6, 300)
    loss, grad = ops.softmax_cross_entropy(z, labels)
    worst = 0.0
    for i in range(300):
        ref_loss, ref_grad = ref.softmax_xent(z[i], int(labels[i]))
        worst = max(worst, ref.ulp_error(loss[i], ref_loss, dtype),
                    ref.max_ulp_error(grad[i], ref_grad, dtype))
    assert worst <= TOL[dtype], worst


@pytest.mark.usefixtures("both_paths")  # the compiled kernel and NumPy's
@pytest.mark.parametrize("scale_name", ["mean over 37", "sum"])
def test_training_batch_kernel_rounds_the_mean_gradient_once(scale_name):
    # The model's fast training case folds 1/n into the gradient before its one rounding, so
    # dL/dz = (p − onehot)/n is correctly rounded even when n is not a power of two.
    from logitnet.ops.softmax_xent import sparse_batch_in_range

    rng = np.random.default_rng(7)
    n, c = 37, 10
    z = (rng.standard_normal((n, c)) * 6).astype(np.float32)
    y = rng.integers(0, c, n)
    scale = 1.0 / n if scale_name != "sum" else 1.0
    loss, grad = np.empty(n, np.float32), np.empty((n, c), np.float32)
    assert sparse_batch_in_range(z, y, scale, loss, grad)
    worst_loss = worst_grad = 0.0
    for i in range(n):
        ref_loss, ref_grad = ref.softmax_xent(z[i], int(y[i]))
        worst_loss = max(worst_loss, ref.ulp_error(loss[i], ref_loss, np.float32))
        worst_grad = max(worst_grad, ref.max_ulp_error(grad[i], [g * scale for g in ref_grad], np.float32))
    assert worst_loss <= HALF and worst_grad <= HALF, (worst_loss, worst_grad)
    # The same per-sample losses as the general op, bit for bit.
    np.testing.assert_array_equal(loss, ops.softmax_cross_entropy(z, y)[0])


@pytest.mark.usefixtures("both_paths")  # the compiled kernel and NumPy's
@pytest.mark.parametrize("bad", [np.nan, np.inf, 88.0, -400.0, 1e4])
def test_training_batch_kernel_leaves_out_of_range_batches_to_the_exact_path(bad):
    from logitnet.ops.softmax_xent import sparse_batch_in_range

    z = np.zeros((4, 3), np.float32)
    z[2, 1] = bad
    loss, grad = np.full(4, 5.0, np.float32), np.full((4, 3), 5.0, np.float32)
    assert not sparse_batch_in_range(z, np.array([0, 1, 2, 0]), 0.25, loss, grad)
    assert (loss == 5).all() and (grad == 5).all()  # nothing written


def _head_case(case: str, seed: int):
    """A float32 training batch (n = 37, not a power of two, so 1/n is inexact) for each way into
    the head: logits outside the fast range, sample weights, one-hot and soft rows, BCE."""
    from logitnet import losses
    from logitnet.head import Head

    rng = np.random.default_rng(seed)
    n, c = 37, 10
    z = (rng.normal(size=(n, c)) * 6).astype(np.float32)
    labels = rng.integers(0, c, n)
    weights = rng.uniform(0, 3, n).astype(np.float32) if case.endswith("weighted") else None
    if case.startswith("bce"):
        head = Head("sigmoid", c, losses.BinaryCrossentropy())
        targets = rng.uniform(0, 1, (n, c)).astype(np.float32)
    elif case == "one-hot":
        head, targets = Head("softmax", c, losses.CategoricalCrossentropy()), np.eye(c, dtype=np.float32)[labels]
    elif case == "soft":
        head = Head("softmax", c, losses.CategoricalCrossentropy())
        targets = rng.dirichlet(np.ones(c), n).astype(np.float32)
    else:
        head, targets = Head("softmax", c, losses.SparseCategoricalCrossentropy()), labels
        if case == "sparse-huge-logit":
            z[0, 0] = 100.0  # outside the fast kernel's (-400, 88): the exact rows take it
    return head, z, targets, weights


@pytest.mark.parametrize("case", ["sparse-huge-logit", "sparse-weighted", "one-hot", "soft", "bce", "bce-weighted"])
def test_training_gradient_is_rounded_once_on_every_path(case):
    # dL/dz = w_i·dloss_i/dz / n (BCE: also / n_labels): the weights and the mean's 1/n go into the
    # float64 gradient before its one rounding, so it is correctly rounded whichever kernel runs.
    # (Rounding the per-sample gradient first, then scaling, was up to 2.8 ulps off here.)
    worst = 0.0
    for seed in range(3):
        head, z, targets, weights = _head_case(case, seed)
        _, grad = head.batch(z, targets, weights)
        n, c = z.shape
        for i in range(n):
            w = ref.mpf(1.0 if weights is None else float(weights[i])) / n
            if case.startswith("bce"):
                want = [ref.bce(zj, yj)[1] * w / c for zj, yj in zip(z[i], targets[i])]
            else:
                rows = np.eye(c)[targets[i]] if targets.ndim == 1 else targets[i]
                want = [g * w for g in ref.softmax_xent_soft(z[i], rows)[1]]
            worst = max(worst, ref.max_ulp_error(grad[i], want, np.float32))
    assert worst <= HALF, worst
