"""Both sides of every size- or range-dependent fast path, each checked against a reference that
does not go through it: mpmath, a float64 formula written here, or (for splits that only serve
speed) the same computation left unsplit, bit for bit.

Each test also checks that it reached the side it names (a spy on the split, or the branch's
precondition), so a moved threshold fails the test instead of quietly testing one side twice.
"""

from __future__ import annotations

import importlib
import math
import warnings

import numpy as np
import pytest

import reference as ref
from logitnet import Sequential, losses, ops, optimizers
from logitnet import model as model_mod
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
    loss_only, none = xent_mod.cross_entropy(z, labels)  # the loss alone (the losses' path)
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
