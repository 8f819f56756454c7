"""Softmax cross-entropy from logits, with its gradient, exact in every regime.

For integer labels y, with the shifted form of `softmax.shift_rows` (z − m = d, e = exp(d),
s = Σ_{j≠argmax} e_j, S = 1 + s):

    loss = −d_y + log1p(s)                      (two terms >= 0: no cancellation)
    grad_j = e_j / S  (j ≠ y),   grad_y = −(Σ_{j≠y} e_j) / S

so 1 − p_y is a sum of the other probabilities, never 1 minus a rounded p_y. Soft labels Y use
loss = Σ_j Y_j (−log_softmax_j) (a sum of terms >= 0) and grad_j = p_j (ΣY − Y_j) − Y_j (1 − p_j).
The gradient is per sample, not divided by the batch size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._core import (
    F64,
    arange,
    as_float_array,
    block_size,
    for_row_blocks,
    row_starts,
    row_sums,
    scratch,
)
from . import fast
from .softmax import _FAST_MAX_SUM, _FAST_MIN_TERM, shift_rows, special_rows_info


def softmax_cross_entropy(
    logits: object,
    labels: object,
    need_grad: bool = True,
    grad_scale: float | np.ndarray = 1.0,
    *,
    checked: bool = False,
    out: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-sample softmax cross-entropy and dloss/dlogits, exact: the one entry that the model's
    head and the losses use (the regime-specific kernels below stay private).

    logits (..., C); labels int (...) or probability rows (..., C). Returns loss (...) and, when
    need_grad, grad (..., C) (else None) in the logits' dtype, per sample (not divided by n).
    Each gradient row is multiplied by grad_scale (a number, or one float64 per sample) before
    its one rounding. checked=True skips validating the labels (the model checks every target
    once before training); `out` = (loss (n,), grad (n, C)) float32 work arrays for a training
    batch of 2-D logits and int labels, used when every logit lies in the fast kernel's range.
    """
    if (checked and out is not None and need_grad and np.ndim(grad_scale) == 0 and logits.dtype == np.float32
            and labels.ndim == 1 and logits.ndim == 2 and out[1].shape == logits.shape
            and sparse_batch_in_range(logits, labels, float(grad_scale), *out)):
        return out
    z = as_float_array(logits, "logits")
    if z.ndim == 0:
        raise ValueError("logits must have a class axis: expected shape (..., n_classes), got a scalar")
    n_classes = z.shape[-1]
    lead = z.shape[:-1]
    lab = np.asarray(labels)
    rows = z.reshape(int(np.prod(lead)), n_classes)
    scale = grad_scale.reshape(-1) if np.ndim(grad_scale) else grad_scale
    if lab.shape == lead:
        ints = lab.reshape(-1) if checked else check_int_labels(lab, n_classes).reshape(-1)
        loss, grad = _xent_rows(rows, ints, need_grad, scale)
    elif lab.shape == z.shape:
        if lab.dtype.kind not in "biuf":
            raise TypeError(f"label probabilities must be numeric, got dtype {lab.dtype}")
        loss, grad = _xent_rows(rows, lab.reshape(rows.shape), need_grad, scale)
    else:
        raise ValueError(
            f"labels must have shape {lead} (integer class indices) or {z.shape} (probability rows) "
            f"for logits of shape {z.shape}; got labels of shape {lab.shape}"
        )
    return loss.reshape(lead), None if grad is None else grad.reshape(z.shape)


def check_int_labels(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Integer class indices in [0, n_classes) as intp; floats must hold whole numbers."""
    if labels.dtype.kind == "f":
        whole = np.isfinite(labels) & (labels == np.round(labels))
        if not whole.all():
            bad = labels[~whole].flat[0]
            raise ValueError(f"integer class labels expected, got the non-integer value {bad.item()!r}")
    elif labels.dtype.kind not in "iub":
        raise TypeError(f"class labels must be integers, got dtype {labels.dtype}")
    out = labels.astype(np.intp)
    if out.size:
        lo, hi = out.min(), out.max()
        if lo < 0 or hi >= n_classes:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"class label {bad} is out of range: labels must lie in [0, {n_classes}) "
                f"for {n_classes} classes"
            )
    return out


def check_prob_labels(labels: np.ndarray) -> None:
    """Check soft labels (..., C): numeric, finite and >= 0 (rows need not sum to 1)."""
    if labels.dtype.kind not in "biuf":
        raise TypeError(f"label probabilities must be numeric, got dtype {labels.dtype}")
    if labels.size and not (np.isfinite(labels).all() and labels.min() >= 0):
        bad = labels[~(np.isfinite(labels) & (labels >= 0))].flat[0]
        raise ValueError(f"label probabilities must be finite and >= 0, got {bad.item()!r}")


_SMALL = 1 << 12  # elements below which a sparse batch is one block, handled directly


def _xent_rows(z: np.ndarray, labels: np.ndarray, need_grad: bool,
               grad_scale: float | np.ndarray = 1.0) -> tuple[np.ndarray, np.ndarray | None]:
    """Loss (n,) and grad (n, C) for rows z (n, C) and int labels (n,) or label rows (n, C).

    Row i of the gradient is multiplied by grad_scale (a number, or one per row (n,), float64)
    before its one rounding: a training batch's mean (1/n) and sample weights cost no accuracy.
    """
    n, width = z.shape
    if width == 0 and n:
        raise ValueError("logits have no classes (last axis of length 0)")
    loss = np.empty(n, z.dtype)
    grad = np.empty((n, width), z.dtype) if need_grad else None
    sparse = labels.ndim == 1
    per_row = np.ndim(grad_scale) == 1
    if sparse and n * width <= _SMALL:  # one small block (a training batch): no block machinery
        with np.errstate(all="ignore"):
            _sparse_block(z, labels, loss, grad, grad_scale)
        return loss, grad

    def work(lo: int, hi: int) -> None:
        zb, yb, lb = z[lo:hi], labels[lo:hi], loss[lo:hi]
        gb = None if grad is None else grad[lo:hi]
        sb = grad_scale[lo:hi] if per_row else grad_scale
        if sparse:
            _sparse_block(zb, yb, lb, gb, sb)
            return
        idx = yb.argmax(axis=1)
        # One-hot, exactly: a 1 at every row's argmax and no other nonzero in the block.
        if (yb[arange(hi - lo), idx] == 1).all() and _count_nonzero(yb) == hi - lo:
            _sparse_block(zb, idx, lb, gb, sb)
        else:
            check_prob_labels(yb)
            _dense_block(zb, yb, lb, gb, sb)

    for_row_blocks(n, width, work, block_size(z.dtype))
    return loss, grad


# Logits in (_SAFE_LOW, _SAFE_HIGH) meet the fast path's conditions in every row (exp(-400) is
# about 2**-577 >= 2**-700, and a sum of exp(88)-sized terms stays far below 2**300) and raise no
# floating-point warnings, so a batch inside them needs neither row checks nor errstate.
_SAFE_LOW, _SAFE_HIGH = -400.0, 88.0


def sparse_batch_in_range(z: np.ndarray, y: np.ndarray, scale: float, loss: np.ndarray,
                          grad: np.ndarray) -> bool:
    """The training batch's fast case: float32 logits z (n, C) all inside (-400, 88), int labels
    y (n,). Fills loss (n,) with the per-sample losses and grad (n, C) with scale·dloss/dz, each
    rounded once, and returns True; returns False, writing nothing, when z leaves that range."""
    kernels = fast.kernels()
    if kernels is not None and len(z):  # the same computation in one compiled pass
        return kernels.sparse_xent_in_range(z, y, scale, loss, grad, _SAFE_LOW, _SAFE_HIGH)
    if not (len(z) and z.min() > _SAFE_LOW and z.max() < _SAFE_HIGH):  # NaN fails too
        return False
    _sparse_unshifted(z, y, loss, grad, scale, in_range=True)
    return True


def _count_nonzero(y: np.ndarray) -> int:
    """Entries of y with any bit set (so −0.0 counts; it only sends a block down the soft path).
    Counting an integer view of the bits is several times faster than counting floats."""
    if y.dtype.kind == "f" and y.flags.c_contiguous:
        return int(np.count_nonzero(y.view(f"u{y.dtype.itemsize}")))
    return int(np.count_nonzero(y))


FastKernel = Callable[[np.ndarray, np.ndarray, np.ndarray, "np.ndarray | None", "float | np.ndarray"],
                      "np.ndarray | None"]
ExactRows = Callable[[np.ndarray, np.ndarray, bool], "tuple[np.ndarray, np.ndarray | None]"]


def _fill_block(zb: np.ndarray, yb: np.ndarray, loss: np.ndarray, grad: np.ndarray | None,
                scale: float | np.ndarray, fast: FastKernel, exact: ExactRows) -> None:
    """Fill loss (r,) and grad (r, C), its rows times `scale`, for a block: float16/32 rows take
    `fast` (unshifted, which flags the rows it cannot do exactly); those rows and float64 ones
    take `exact`."""
    if zb.dtype != F64:
        redo = fast(zb, yb, loss, grad, scale)
        if redo is None:
            return
        todo = np.flatnonzero(redo)
        zb, yb = zb[todo], yb[todo]
    else:
        todo = arange(zb.shape[0])
    lb, gb = exact(zb.astype(F64, copy=False), yb, grad is not None)
    loss[todo] = lb
    if grad is not None:
        if np.ndim(scale):
            gb *= scale[todo][:, None]
        elif scale != 1.0:
            gb *= scale
        grad[todo] = gb


def _sparse_block(zb: np.ndarray, yb: np.ndarray, loss: np.ndarray, grad: np.ndarray | None,
                  scale: float | np.ndarray = 1.0) -> None:
    """Fill loss (r,) and grad (r, C) (rows times `scale`) for a block of rows with int labels."""
    _fill_block(zb, yb, loss, grad, scale, _sparse_unshifted, sparse_rows64)


def _dense_block(zb: np.ndarray, yb: np.ndarray, loss: np.ndarray, grad: np.ndarray | None,
                 scale: float | np.ndarray = 1.0) -> None:
    """Fill loss (r,) and grad (r, C) (rows times `scale`) for a block of rows with soft labels."""
    _fill_block(zb, yb, loss, grad, scale, _dense_unshifted, dense_rows64)


def sparse_rows64(z: np.ndarray, y: np.ndarray, need_grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Exact loss (n,) and optional grad (n, C) for float64 rows z and int labels y."""
    sh = shift_rows(z)
    rows = np.arange(z.shape[0])
    log1p_s = sh.log1p_s
    on_max = y == sh.k
    loss = np.where(on_max, log1p_s, (log1p_s - sh.d_lo[rows, y]) - sh.d_hi[rows, y])
    grad = None
    if need_grad:
        total = sh.total
        grad = sh.probs()
        others = np.where(on_max, sh.s, total - sh.e[rows, y])  # Σ_{j≠y} e_j
        grad[rows, y] = -others / total
    if sh.special.any():
        zs, ys = z[sh.special], y[sh.special]
        posinf, single = special_rows_info(zs)
        r = np.arange(zs.shape[0])
        loss[sh.special] = np.where(single, np.where(posinf[r, ys], 0.0, np.inf), np.nan)
        if grad is not None:
            g = np.where(single[:, None], posinf.astype(F64), np.nan)
            g[r, ys] -= 1.0
            grad[sh.special] = g
    return loss, grad


def _sparse_unshifted(
    zb: np.ndarray, yb: np.ndarray, loss: np.ndarray, grad: np.ndarray | None,
    scale: float | np.ndarray = 1.0, in_range: bool = False,
) -> np.ndarray | None:
    """Fast path for float16/32 rows: float64 exp without the shift. Returns None when every row
    is exact, else a mask of the rows to redo exactly. The gradient is scaled by `scale` (a number
    or one per row) before its one rounding; in_range=True says the caller checked the logits
    (sparse_batch_in_range).

    loss = log1p(Σ_{j≠y} e_j / e_y) needs no max. A row is exact when exp(z_y) >= 2**-700 and
    Σ exp(z) < 2**300: the terms are then normal floats or far below what float32 can hold,
    and nothing overflows. Other rows (very negative or huge logits, inf, NaN) are flagged.
    """
    n, width = zb.shape
    if n == 0:
        return None
    e = scratch(n, width)
    np.exp(zb, out=e, dtype=F64)
    at_y = row_starts(n, width) + yb  # flat positions of the true classes in e and grad
    flat_e = e.reshape(-1)
    e_y = flat_e[at_y]
    flat_e[at_y] = 0.0
    others = row_sums(e)  # Σ_{j≠y} e_j, summed without e_y: 1 − p_y never cancels
    total = others + e_y
    np.log1p(others / e_y, out=loss)
    if grad is not None:
        inv = scale / total
        np.multiply(e, inv[:, None], out=grad)
        grad.reshape(-1)[at_y] = np.negative(others * inv, out=others)
    if in_range:
        return None
    if e_y.min() >= _FAST_MIN_TERM and total.max() < _FAST_MAX_SUM:  # NaN fails both tests
        return None
    return ~((e_y >= _FAST_MIN_TERM) & (total < _FAST_MAX_SUM))


def _dense_unshifted(
    zb: np.ndarray, yb: np.ndarray, loss: np.ndarray, grad: np.ndarray | None,
    scale: float | np.ndarray = 1.0,
) -> np.ndarray | None:
    """Fast path for float16/32 rows with soft labels; returns None or the rows to redo exactly.
    The gradient's rows are multiplied by `scale` before their one rounding.

    With k = argmax, e = exp(z) and S = Σ e (float64, unshifted): −log p_j = log S − z_j for
    j ≠ k (>= log 2, so nothing cancels) and log1p(Σ_{j≠k} e_j / e_k) at k. The gradient
    p_j ΣY − y_j takes, at k, the form p_k Σ_{j≠k} y_j − y_k (1 − p_k) with 1 − p_k from the
    other terms. Row validity as in _sparse_unshifted, with e_k for e_y.
    """
    n = zb.shape[0]
    r = arange(n)
    k = zb.argmax(axis=1)
    e = scratch(*zb.shape)
    np.exp(zb, out=e, dtype=F64)
    e_k = e[r, k]
    e[r, k] = 0.0
    others = row_sums(e)
    e[r, k] = e_k
    total = others + e_k
    y = scratch(*zb.shape, slot=1)
    y[...] = yb
    y_k = y[r, k]
    y[r, k] = 0.0
    y_rest = row_sums(y)
    y[r, k] = y_k
    neg_log_p = scratch(*zb.shape, slot=2)
    np.subtract(np.log(total)[:, None], zb, out=neg_log_p)
    neg_log_p[r, k] = np.log1p(others / e_k)
    loss[...] = np.einsum("ij,ij->i", y, neg_log_p)
    if grad is not None:
        inv = 1.0 / total
        at_k = e_k * inv * y_rest - y_k * (others * inv)
        e *= ((y_rest + y_k) * inv)[:, None]
        e -= y
        e[r, k] = at_k
        if np.ndim(scale):
            e *= scale[:, None]
        elif scale != 1.0:
            e *= scale
        grad[...] = e
    # A −inf logit whose label is 0 makes 0·inf = NaN in the einsum (its term is 0): such rows,
    # like NaN ones, go to the exact path, which skips zero labels.
    nan_loss = np.isnan(loss)
    if n and e_k.min() >= _FAST_MIN_TERM and total.max() < _FAST_MAX_SUM and not nan_loss.any():
        return None
    return ~((e_k >= _FAST_MIN_TERM) & (total < _FAST_MAX_SUM)) | nan_loss


def dense_rows64(z: np.ndarray, y: np.ndarray, need_grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Exact loss (n,) and optional grad (n, C) for float64 rows z and soft labels y (n, C)."""
    y = y.astype(F64, copy=False)
    sh = shift_rows(z)
    neg_log_p = (sh.log1p_s[:, None] - sh.d_lo) - sh.d_hi  # >= 0
    terms = np.multiply(y, neg_log_p, out=np.zeros_like(neg_log_p), where=y != 0)
    loss = terms.sum(axis=1)
    y_sum = y.sum(axis=1, keepdims=True)
    grad = None
    if need_grad:
        total = sh.total[:, None]
        p = sh.probs()
        q = (total - sh.e) / total  # 1 − p_j: exact off the max, where total − e_j >= 1
        rows = np.arange(z.shape[0])
        q[rows, sh.k] = sh.s / sh.total
        grad = p * (y_sum - y) - y * q
    if sh.special.any():
        ys = y[sh.special]
        posinf, single = special_rows_info(z[sh.special])
        all_mass_on_inf = ~((ys != 0) & ~posinf).any(axis=1)
        loss[sh.special] = np.where(single, np.where(all_mass_on_inf, 0.0, np.inf), np.nan)
        if grad is not None:
            p = np.where(single[:, None], posinf.astype(F64), np.nan)
            grad[sh.special] = p * y_sum[sh.special] - ys
    return loss, grad
