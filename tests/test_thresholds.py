"""Both sides of every size- or range-dependent fast path, each checked against a reference that
does not go through it: mpmath, a float64 formula written here, or (for splits that only serve
speed) the same computation left unsplit, bit for bit.

Each test also checks that it reached the side it names (a spy on the split, or the branch's
precondition), so a moved threshold fails the test instead of quietly testing one side twice.
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import reference as ref
from fast_paths import both_paths  # noqa: F401 - the fixture

from logitnet import Sequential, losses, ops, optimizers
from logitnet import model as model_mod
from logitnet import training as training_mod
from logitnet.head import Head
from logitnet.layers import Dense, Input
from logitnet.ops import _core

# logitnet.ops exports a function named softmax, which hides the module of that name.
softmax_mod = importlib.import_module("logitnet.ops.softmax")
xent_mod = importlib.import_module("logitnet.ops.softmax_xent")

HALF = ref.HALF_ULP
TOL = {np.float32: HALF, np.float64: ref.F64_ULPS}


@pytest.fixture
def two_threads():
    ops.set_num_threads(2)
    yield
    ops.set_num_threads(None)


@pytest.fixture
def pool_uses(monkeypatch):
    """How many times for_row_blocks handed blocks to its thread pool."""
    uses = []
    original = _core._get_pool

    def spy(workers):
        uses.append(workers)
        return original(workers)

    monkeypatch.setattr(_core, "_get_pool", spy)
    return uses


def _count_blocks(monkeypatch, module) -> list:
    """Record the (lo, hi) of every block that `module`'s for_row_blocks runs."""
    blocks: list = []
    original = module.for_row_blocks

    def spy(n, width, work, *args, **kwargs):
        def counted(lo, hi):
            blocks.append((lo, hi))
            work(lo, hi)

        return original(n, width, counted, *args, **kwargs)

    monkeypatch.setattr(module, "for_row_blocks", spy)
    return blocks


# --- all_finite: a plain test up to 4,096 elements, a BLAS dot product (with a fallback when it
# overflows) above ------------------------------------------------------------------------------
_ALL_FINITE_SMALL = 4096
_HUGE = {np.float16: 1e4, np.float32: 1e30, np.float64: 1e200}  # finite, but the square overflows


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("size", [1, 4095, 4096, 4097, 20000])
def test_all_finite_on_both_sides_of_4096_elements(dtype, size):
    from logitnet.ops._core import all_finite

    rng = np.random.default_rng(size)
    ordinary = rng.normal(0, 3, size).astype(dtype)
    huge = (_HUGE[dtype] * rng.choice([-1.0, 1.0], size)).astype(dtype)
    assert np.isfinite(huge).all()
    if size > _ALL_FINITE_SMALL:  # the dot product's overflow is what sends it to the fallback
        with np.errstate(over="ignore"):
            assert not np.isfinite(np.dot(huge, huge))
    assert all_finite(ordinary) is True
    assert all_finite(huge) is True
    assert all_finite(huge.reshape(1, -1)) is True
    for bad in (np.nan, np.inf, -np.inf):
        for where in {0, size // 2, size - 1}:
            for base in (ordinary, huge):
                x = base.copy()
                x[where] = bad
                assert all_finite(x) is False, (bad, where)
    x = huge.copy()
    x[0], x[-1] = np.inf, -np.inf  # inf − inf inside the dot: NaN, still not finite
    assert all_finite(x) is False


def test_all_finite_on_strided_views_over_4096_elements():
    from logitnet.ops._core import all_finite

    a = np.full((300, 40), 1e30, np.float32)
    assert all_finite(a.T) is True and all_finite(a[:, ::3]) is True
    a[299, 39] = np.nan
    assert all_finite(a.T) is False and all_finite(a[::2, ::3]) is True  # the NaN is not in the view


# --- the softmax cross-entropy with int labels: one direct block up to 4,096 elements ----------
def _check_sparse_rows(z, labels, loss, grad, rows, dtype):
    for i in rows:
        true_loss, true_grad = ref.softmax_xent(z[i], int(labels[i]))
        assert ref.ulp_error(loss[i], true_loss, dtype) <= TOL[dtype], i
        if grad is not None:
            assert ref.max_ulp_error(grad[i], true_grad, dtype) <= TOL[dtype], i


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(512, 8), (241, 17)], ids=["4096-elements", "4097-elements"])
def test_sparse_cross_entropy_on_both_sides_of_the_direct_block(monkeypatch, dtype, shape):
    blocks = _count_blocks(monkeypatch, xent_mod)
    n, c = shape
    rng = np.random.default_rng(n)
    z = rng.normal(0, 4, shape).astype(dtype)
    z[n // 2, 3] = 900.0  # a row for the exact shifted path
    labels = rng.integers(0, c, n)
    loss, grad = ops.softmax_cross_entropy(z, labels)
    assert len(blocks) == (0 if n * c <= xent_mod._SMALL else 1)
    rows = sorted({0, 1, n // 2, n - 1, *rng.integers(0, n, 12).tolist()})
    _check_sparse_rows(z, labels, loss, grad, rows, dtype)
    loss_only, none = xent_mod.softmax_cross_entropy(z, labels, need_grad=False)  # the loss alone (the losses' path)
    assert none is None
    _check_sparse_rows(z, labels, loss_only, None, rows, dtype)


# --- row blocks (float16/32: 2**17 elements, float64 and logsumexp/log_softmax: 2**15), in
# parallel from 2**18 elements --------------------------------------------------------------------
_OPS = ["int_labels", "one_hot_and_soft", "softmax", "log_softmax", "logsumexp"]


def _block_elements(op: str, dtype) -> int:
    return _core.EXACT_BLOCK_ELEMENTS if op in ("log_softmax", "logsumexp") else _core.block_size(np.dtype(dtype))


def _run(op, z, labels, soft):
    if op == "int_labels":
        return ops.softmax_cross_entropy(z, labels)
    if op == "one_hot_and_soft":
        return ops.softmax_cross_entropy(z, soft)
    return (getattr(ops, op)(z),)


def _check_rows(op, z, labels, soft, out, rows, dtype):
    tol = TOL[dtype]
    for i in rows:
        if op == "int_labels":
            true_loss, true_grad = ref.softmax_xent(z[i], int(labels[i]))
        elif op == "one_hot_and_soft":
            true_loss, true_grad = ref.softmax_xent_soft(z[i], soft[i])
        if op in ("int_labels", "one_hot_and_soft"):
            assert ref.ulp_error(out[0][i], true_loss, dtype) <= tol, i
            if op == "one_hot_and_soft" and dtype == np.float64 and not np.isin(soft[i], (0, 1)).all():
                # float64 soft labels: p·ΣY − y measured against the larger term (README).
                p, total = ref.softmax(z[i]), ref.mpmath.fsum(ref.mpf(float(v)) for v in soft[i])
                for g, r, pj, yj in zip(out[1][i], true_grad, p, soft[i]):
                    assert ref.ulp_error(g, r, dtype, max(pj * total, ref.mpf(float(yj)))) <= tol, i
            else:
                assert ref.max_ulp_error(out[1][i], true_grad, dtype) <= tol, i
        elif op == "softmax":
            assert ref.max_ulp_error(out[0][i], ref.softmax(z[i]), dtype) <= tol, i
        elif op == "log_softmax":
            assert ref.max_ulp_error(out[0][i], ref.log_softmax(z[i]), dtype) <= tol, i
        else:
            assert ref.ulp_error(out[0][i], ref.logsumexp(z[i]), dtype) <= tol, i


@pytest.mark.parametrize("side", ["one_block", "two_blocks", "parallel"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", _OPS)
def test_row_blocks_and_threads(monkeypatch, two_threads, pool_uses, op, dtype, side):
    width = 64
    step = _block_elements(op, dtype) // width  # rows per block
    n = {"one_block": step, "two_blocks": step + 1,
         "parallel": max(2 * step + 1, -(-_core._PARALLEL_MIN // width) + 1)}[side]
    rng = np.random.default_rng(n)
    z = rng.normal(0, 4, (n, width)).astype(dtype)
    z[min(step, n - 1), 5] = 900.0  # the first row of the second block: the exact shifted path
    labels = rng.integers(0, width, n)
    soft = np.eye(width)[labels]
    soft[1] = rng.dirichlet(np.full(width, 0.5))  # block 0 takes the soft kernel, the others one-hot
    module = softmax_mod if op in ("softmax", "log_softmax", "logsumexp") else xent_mod
    blocks = _count_blocks(monkeypatch, module)
    out = _run(op, z, labels, soft)
    assert len(blocks) == (1 if side == "one_block" else -(-n // step))
    assert bool(pool_uses) == (side == "parallel")
    # Against mpmath: the block edges, the shifted row, the soft row and a few others.
    rows = sorted({0, 1, step - 1, min(step, n - 1), min(step + 1, n - 1), n // 2, n - 1,
                   *rng.integers(0, n, 4).tolist()})
    _check_rows(op, z, labels, soft, out, rows, dtype)
    # And bit for bit against the same op on one block in one thread (no split at all).
    monkeypatch.setattr(_core, "_BLOCK_ELEMENTS", 1 << 21)
    monkeypatch.setattr(_core, "EXACT_BLOCK_ELEMENTS", 1 << 21)
    monkeypatch.setattr(softmax_mod, "EXACT_BLOCK_ELEMENTS", 1 << 21)
    ops.set_num_threads(1)
    blocks.clear()
    whole = _run(op, z, labels, soft)
    assert len(blocks) == 1
    for got, want in zip(out, whole):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype,width", [(np.float64, 33000), (np.float32, 135000)])
def test_rows_wider_than_a_block(monkeypatch, dtype, width):
    # A row wider than a block is a block of its own (one row per block).
    assert width > _core.block_size(np.dtype(dtype))
    blocks = _count_blocks(monkeypatch, xent_mod)
    rng = np.random.default_rng(width)
    z = rng.normal(0, 3, (3, width)).astype(dtype)
    labels = np.array([0, width // 2, width - 1])
    loss, grad = ops.softmax_cross_entropy(z, labels)
    assert len(blocks) == 3
    probs, lse = ops.softmax(z), ops.logsumexp(z)
    z64 = z.astype(np.float64)
    for i in range(3):
        # A float64 formula with an exactly rounded sum: ~1e-15 relative, so it stands for the
        # truth in float32 (2^-26 ulp), and checks float64 softmax to a few dozen ulps.
        m = z64[i].max()
        true_lse = m + math.log(math.fsum(np.exp(z64[i] - m)))
        p = np.exp(z64[i] - true_lse)
        g = p.copy()
        g[labels[i]] -= 1.0
        if dtype == np.float32:
            assert ref.ulp_error(lse[i], ref.mpf(true_lse), dtype) <= HALF
            assert ref.ulp_error(loss[i], ref.mpf(true_lse - z64[i, labels[i]]), dtype) <= HALF
            assert ref.ulps_from_float64(probs[i], p, dtype).max() <= HALF
            assert ref.ulps_from_float64(grad[i], g, dtype).max() <= HALF
        else:
            np.testing.assert_allclose(probs[i], p, rtol=64 * np.finfo(dtype).eps, atol=0)
            np.testing.assert_allclose(grad[i], g, rtol=64 * np.finfo(dtype).eps, atol=0)
    if dtype == np.float64:  # mpmath for one row's loss and logsumexp (33,000 terms)
        assert ref.ulp_error(loss[1], ref.softmax_xent(z[1], int(labels[1]))[0], dtype) <= ref.F64_ULPS
        assert ref.ulp_error(lse[1], ref.logsumexp(z[1]), dtype) <= ref.F64_ULPS


# --- the float16/32 kernels' unshifted fast path: exact while exp(z_y) >= 2**-700 and the sum of
# exp(z) < 2**300; rows outside are redone by the shifted float64 path ------------------------------
_LN2 = math.log(2)


@pytest.mark.parametrize("case", ["sum_below_2^300", "sum_above_2^300", "term_above_2^-700",
                                  "term_below_2^-700"])
def test_fast_path_range_of_the_float32_kernels(monkeypatch, case):
    top = 300 * _LN2  # 207.94...: exp(top) = 2**300
    low = -700 * _LN2  # -485.2...: exp(low) = 2**-700
    z = np.zeros((4, 5), np.float32)
    z[:, 1:] = np.random.default_rng(0).normal(0, 1, (4, 4))
    inside = case in ("sum_below_2^300", "term_above_2^-700")
    if case.startswith("sum"):
        z[:, 0] = np.float32(top - 0.5) if inside else np.float32(top + 0.5)
        labels = np.array([0, 1, 2, 0])
    else:  # the true class far below the others: its term decides
        z[:, 0] = np.float32(low + 0.5) if inside else np.float32(low - 0.5)
        z[:, 1:] += 60.0  # so that exp(z_y) is the row's small term, the sum stays ordinary
        labels = np.zeros(4, np.intp)
    redone = []
    for module, name in ((xent_mod, "sparse_rows64"), (xent_mod, "dense_rows64"),
                         (softmax_mod, "softmax_rows64")):
        original = getattr(module, name)

        def spy(zb, *args, _original=original, _name=name):
            redone.append((_name, len(zb)))
            return _original(zb, *args)

        monkeypatch.setattr(module, name, spy)
    loss, grad = ops.softmax_cross_entropy(z, labels)
    soft = np.eye(5)[labels] * 0.75 + 0.05
    soft_loss, soft_grad = ops.softmax_cross_entropy(z, soft)
    probs = ops.softmax(z)
    # Outside, the sparse kernel redoes every row (its test is on e_y); a sum past 2**300 sends
    # the soft-label and softmax rows too (theirs are on the largest term and on the sum).
    expected = [] if inside else [("sparse_rows64", 4)]
    if case == "sum_above_2^300":
        expected += [("dense_rows64", 4), ("softmax_rows64", 4)]
    assert sorted(redone) == sorted(expected)
    for i in range(4):
        true_loss, true_grad = ref.softmax_xent(z[i], int(labels[i]))
        assert ref.ulp_error(loss[i], true_loss, np.float32) <= HALF
        assert ref.max_ulp_error(grad[i], true_grad, np.float32) <= HALF
        true_soft_loss, true_soft_grad = ref.softmax_xent_soft(z[i], soft[i])
        assert ref.ulp_error(soft_loss[i], true_soft_loss, np.float32) <= HALF
        assert ref.max_ulp_error(soft_grad[i], true_soft_grad, np.float32) <= HALF
        assert ref.max_ulp_error(probs[i], ref.softmax(z[i]), np.float32) <= HALF


# --- the head's training-batch fast case: float32, integer labels, no weights, a gradient, and
# every logit inside (-400, 88); anything else takes the per-sample path -----------------------------
def _head_spy(monkeypatch) -> list:
    """Record what the head's fast kernel returned (True: it did the batch) on each call."""
    import logitnet.ops.softmax_xent as xent_mod

    calls: list = []
    original = xent_mod.sparse_batch_in_range

    def spy(*args):
        calls.append(original(*args))
        return calls[-1]

    monkeypatch.setattr(xent_mod, "sparse_batch_in_range", spy)
    return calls


def _true_batch(z, labels, weights=None):
    """mpmath: per-sample losses and gradients, and the weighted mean loss."""
    n = len(z)
    per = [ref.softmax_xent(z[i], int(labels[i])) for i in range(n)]
    w = [ref.mpf(1) if weights is None else ref.mpf(float(weights[i])) for i in range(n)]
    mean = ref.mpmath.fsum(wi * p[0] for wi, p in zip(w, per)) / n
    return per, w, mean


def _batch_logits(n, c, edge, dtype=np.float32):
    rng = np.random.default_rng(n)
    z = rng.normal(0, 4, (n, c))
    labels = rng.integers(0, c, n)
    low, high = -400.0, 88.0  # the documented range (softmax_xent._SAFE_LOW, _SAFE_HIGH)
    if edge == "inside_high":
        z[3, 1] = np.nextafter(np.float32(high), np.float32(0))  # the largest float32 below 88
    elif edge == "at_high":
        z[3, 1] = high
    elif edge == "inside_low":
        z[3, 1] = np.nextafter(np.float32(low), np.float32(0))
    elif edge == "at_low":
        z[3, 1] = low
    return z.astype(dtype), labels


@pytest.mark.usefixtures("both_paths")  # the compiled kernel and NumPy's
@pytest.mark.parametrize("n", [37, 32])
@pytest.mark.parametrize("edge", ["inside_high", "at_high", "inside_low", "at_low"])
def test_head_batch_on_both_sides_of_the_fast_range(monkeypatch, edge, n):
    calls = _head_spy(monkeypatch)
    head = Head("softmax", 6, losses.SparseCategoricalCrossentropy())
    z, labels = _batch_logits(n, 6, edge)
    loss, grad = head.batch(z, labels, None)
    inside = edge.startswith("inside")
    assert calls == [inside]
    per, _, mean = _true_batch(z, labels)
    # Per-sample losses >= 0, each rounded once: the mean moves by at most 2^-24 relative.
    assert abs(ref.mpf(loss) - mean) <= (2.0**-24 + 2.0**-45) * mean
    # On both sides 1/n is folded in (in float64) before the gradient's one rounding: correctly
    # rounded. (Rounding g first and then g/n would be up to 1.7 ulps off for n = 37.)
    inv_n = ref.mpf(1) / n
    worst = max(ref.max_ulp_error(grad[i], [g * inv_n for g in per[i][1]], np.float32) for i in range(n))
    assert worst <= HALF, worst


@pytest.mark.usefixtures("both_paths")  # the compiled kernel and NumPy's
@pytest.mark.parametrize("case", ["float32", "float64", "weights", "no_grad", "one_hot", "sum"])
def test_head_batch_conditions_of_the_fast_case(monkeypatch, case):
    calls = _head_spy(monkeypatch)
    n, c = 32, 5  # n a power of two: 1/n is exact, so every path rounds the gradient once
    dtype = np.float64 if case == "float64" else np.float32
    z, labels = _batch_logits(n, c, None, dtype)
    weights = np.linspace(0.5, 2.0, n).astype(dtype) if case == "weights" else None
    if case == "one_hot":
        head = Head("softmax", c, losses.CategoricalCrossentropy())
        targets = np.eye(c, dtype=dtype)[labels]
    else:
        reduction = "sum" if case == "sum" else "sum_over_batch_size"
        head = Head("softmax", c, losses.SparseCategoricalCrossentropy(reduction=reduction))
        targets = labels
    loss, grad = head.batch(z, targets, weights, need_grad=case != "no_grad")
    assert calls == ([True] if case in ("float32", "sum") else [])
    per, w, mean = _true_batch(z, labels, weights)
    scale = ref.mpf(1) if case == "sum" else ref.mpf(1) / n
    true_loss = mean * n * scale
    assert abs(ref.mpf(loss) - true_loss) <= (2 * np.finfo(dtype).eps + 2.0**-45) * true_loss
    if case == "no_grad":
        assert grad is None
        return
    # The weights and 1/n go into the gradient in float64, before its one rounding.
    tol = TOL[dtype]
    for i in range(n):
        want = [g * w[i] * scale for g in per[i][1]]
        assert ref.max_ulp_error(grad[i], want, dtype) <= tol, i


# --- fit: steps under 5e7 FLOPs (6 x parameters x batch) run their GEMMs on one BLAS thread ------
def _ref_sgd_epoch(ws, x, y, batch_size, lr):
    """float64 reference: one epoch of SGD on a relu stack ending in softmax cross-entropy."""
    ws = [w.copy() for w in ws]
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        acts = [xb]
        for i in range(0, len(ws) - 2, 2):
            acts.append(np.maximum(acts[-1] @ ws[i] + ws[i + 1], 0.0))
        z = acts[-1] @ ws[-2] + ws[-1]
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = p.copy()
        g[np.arange(len(yb)), yb] -= 1.0
        g /= len(yb)
        for i in range(len(ws) - 2, -1, -2):
            gw, gb = acts[i // 2].T @ g, g.sum(0)
            if i:
                g = (g @ ws[i].T) * (acts[i // 2] > 0)
            ws[i] -= lr * gw
            ws[i + 1] -= lr * gb
    return ws


@pytest.mark.parametrize("batch_size,patched", [(512, None), (1024, None), (8, 0.0), (8, None)],
                         ids=["small-512", "large-1024", "large-patched", "small-8"])
def test_fit_on_both_sides_of_the_small_step_flops(monkeypatch, batch_size, patched):
    if patched is not None:
        monkeypatch.setattr(training_mod, "_SMALL_STEP_FLOPS", patched)
    limits = []
    original = training_mod.blas_threads_at_most

    def spy(limit):
        limits.append(limit)
        return original(limit)

    monkeypatch.setattr(training_mod, "blas_threads_at_most", spy)
    rng = np.random.default_rng(batch_size)
    n, d = 1024, 64
    x, y = rng.normal(size=(n, d)), rng.integers(0, 10, n)
    model = Sequential([Input((d,)), Dense(128, "relu"), Dense(10, "softmax")], seed=1, dtype="float64")
    model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    flops = 6 * model.count_params() * batch_size
    small = flops < training_mod._SMALL_STEP_FLOPS
    assert small == (batch_size in (512, 8) and patched is None)  # the sizes reach the side named
    ws = model.get_weights()
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    assert limits == ([1] if small else [])
    for got, want in zip(model.get_weights(), _ref_sgd_epoch(ws, x, y, batch_size, 0.1)):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-14)


# --- predict: chunks of max(batch_size, 1024) rows; predict_logits: chunks of batch_size --------
@pytest.mark.parametrize("n", [1023, 1024, 1025, 2049])
@pytest.mark.parametrize("batch_size", [32, 1500])
def test_predict_chunks(monkeypatch, n, batch_size):
    rng = np.random.default_rng(n)
    model = Sequential([Input((6,)), Dense(8, "tanh"), Dense(4, "softmax")], seed=2, dtype="float64")
    x = rng.normal(0, 2, (n, 6))
    chunks = []
    original = model.outputs_from_logits

    def spy(z):
        chunks.append(len(z))
        return original(z)

    monkeypatch.setattr(model, "outputs_from_logits", spy)
    probs = model.predict(x, batch_size=batch_size, verbose=0)
    size = max(batch_size, 1024)
    assert chunks == [min(size, n - i) for i in range(0, n, size)]
    logits = model.predict_logits(x, batch_size=batch_size)
    w1, b1, w2, b2 = model.get_weights()
    z = np.tanh(x @ w1 + b1) @ w2 + b2  # float64 reference, written here
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(logits, z, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(probs, p, rtol=1e-13, atol=1e-300)


# --- optimizers: one pass up to 2**17 parameters, chunks of 2**17 (in threads) above ------------
_OPTIMIZERS = {
    "sgd": lambda: optimizers.SGD(0.1),
    "sgd_nesterov": lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True),
    "adam_amsgrad": lambda: optimizers.Adam(0.01, amsgrad=True),
    "rmsprop_centered": lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True),
}


def _ref_updates(name, w, grads):
    """float64 reference of Keras' update rules, written here: w after each gradient in turn."""
    m, v, vhat, mg = (np.zeros_like(w) for _ in range(4))
    for t, g in enumerate(grads):
        if name == "sgd":
            w = w - 0.1 * g
        elif name == "sgd_nesterov":
            m = 0.9 * m - 0.1 * g
            w = w + 0.9 * m - 0.1 * g
        elif name == "adam_amsgrad":
            m = m + (g - m) * (1 - 0.9)
            v = v + (g * g - v) * (1 - 0.999)
            vhat = np.maximum(vhat, v)
            alpha = 0.01 * np.sqrt(1 - 0.999 ** (t + 1)) / (1 - 0.9 ** (t + 1))
            w = w - alpha * m / (np.sqrt(vhat) + 1e-7)
        else:
            v = 0.9 * v + 0.1 * g * g
            mg = 0.9 * mg + 0.1 * g
            m = 0.5 * m + 0.01 * g / np.sqrt(v - mg**2 + 1e-7)
            w = w - m
    return w


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("extra", [0, 1, 2 * (1 << 17) + 5], ids=["2^17", "2^17+1", "3x2^17+5"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(_OPTIMIZERS))
def test_optimizer_chunks(monkeypatch, pool_uses, name, dtype, extra, threads):
    import logitnet.optimizers as opt_mod

    chunk = 1 << 17
    assert opt_mod._CHUNK == chunk
    n = chunk + extra
    rng = np.random.default_rng(extra)
    w0 = rng.normal(0, 1, n).astype(dtype)
    grads = [rng.normal(0, 1, n).astype(dtype) for _ in range(3)]
    blocks = _count_blocks(monkeypatch, opt_mod)
    ops.set_num_threads(threads)
    try:
        opt, w, backup = _OPTIMIZERS[name](), w0.copy(), np.empty_like(w0)
        for g in grads:
            before = w.copy()
            opt.apply(w, g.copy(), backup=backup)
            np.testing.assert_array_equal(backup, before)  # the backup is the step's starting point
    finally:
        ops.set_num_threads(None)
    chunks = -(-n // chunk)
    assert len(blocks) == (0 if chunks == 1 else 3 * chunks)
    assert bool(pool_uses) == (chunks > 1 and threads > 1)
    # Bit for bit the unsplit whole-vector update, and close to the float64 reference.
    monkeypatch.setattr(opt_mod, "_CHUNK", 1 << 40)
    whole_opt, whole = _OPTIMIZERS[name](), w0.copy()
    for g in grads:
        whole_opt.apply(whole, g.copy())
    np.testing.assert_array_equal(w, whole)
    for key, slot in opt.get_state().items():
        np.testing.assert_array_equal(slot, whole_opt.get_state()[key])
    want = _ref_updates(name, w0.astype(np.float64), [g.astype(np.float64) for g in grads])
    rtol, atol = (1e-12, 1e-14) if dtype == np.float64 else (1e-5, 1e-6)
    np.testing.assert_allclose(w, want, rtol=rtol, atol=atol)


# The unchunked update runs without errstate, so its overflow also warns (the chunks do not).
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("units", [320, 330], ids=["128,320-params", "132,330-params"])
def test_model_steps_on_both_sides_of_the_optimizer_chunk(units):
    # One Dense layer of 400 inputs: 401·units parameters, below and above 2**17. Adam through
    # train_on_batch (the gradients serve as scratch, the backup is taken chunk by chunk), then a
    # step that overflows: the weights come back bit for bit.
    n_params = 401 * units
    assert (n_params > 1 << 17) == (units == 330)
    rng = np.random.default_rng(units)
    model = Sequential([Input((400,)), Dense(units, "softmax")], seed=3, dtype="float64")
    model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    ws = model.get_weights()
    m = [np.zeros_like(w) for w in ws]
    v = [np.zeros_like(w) for w in ws]
    for t in range(2):
        x, y = rng.normal(size=(16, 400)), rng.integers(0, units, 16)
        z = x @ ws[0] + ws[1]
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = p.copy()
        g[np.arange(16), y] -= 1
        g /= 16
        loss = model.train_on_batch(x, y)
        assert loss == pytest.approx(-np.log(p[np.arange(16), y]).mean(), rel=1e-12)
        alpha = 0.01 * np.sqrt(1 - 0.999 ** (t + 1)) / (1 - 0.9 ** (t + 1))
        for i, gi in enumerate((x.T @ g, g.sum(0))):
            m[i] = m[i] + (gi - m[i]) * 0.1
            v[i] = v[i] + (gi * gi - v[i]) * 0.001
            ws[i] = ws[i] - alpha * m[i] / (np.sqrt(v[i]) + 1e-7)
    for got, want in zip(model.get_weights(), ws):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-14)
    before = model.get_weights()
    model.compile(optimizer=optimizers.SGD(1e308), loss="sparse_categorical_crossentropy")
    x = np.full((4, 400), 100.0)
    with pytest.warns(model_mod.DivergenceWarning):
        model.train_on_batch(x, [0, 1, 2, 3])
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)


# --- Dense keeps forward buffers for at most 9 batch sizes, then starts afresh ------------------
def test_training_through_many_batch_sizes():
    rng = np.random.default_rng(9)
    model = Sequential([Input((4,)), Dense(6, "relu"), Dense(5, "relu"), Dense(3, "softmax")],
                       seed=2, dtype="float64")
    model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    ws = model.get_weights()
    for size in [*range(1, 13), 3, 1, 12, 7]:  # 12 distinct sizes: the buffers are dropped on the way
        x, y = rng.normal(size=(size, 4)), rng.integers(0, 3, size)
        model.train_on_batch(x, y)
        ws = _ref_sgd_epoch(ws, x, y, size, 0.1)
        for got, want in zip(model.get_weights(), ws):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
