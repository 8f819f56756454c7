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

import numpy as np

from ._core import F64, as_float_array, for_row_blocks, ones, scratch
from .softmax import _FAST_MIN_SUM, shift_rows, special_rows_info

_MIN_NORMAL64 = np.finfo(np.float64).tiny


def softmax_cross_entropy(logits: object, labels: object) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample softmax cross-entropy and dloss/dlogits.

    logits (..., C); labels int (...) or probability rows (..., C). Returns loss (...) and
    grad (..., C) in the logits' dtype, not divided by the number of samples.
    """
    loss, grad = cross_entropy(logits, labels, need_grad=True)
    assert grad is not None
    return loss, grad


def cross_entropy(
    logits: object, labels: object, need_grad: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Like `softmax_cross_entropy`, computing the gradient only when asked: (loss, grad or None)."""
    z = as_float_array(logits, "logits")
    if z.ndim == 0:
        raise ValueError("logits must have a class axis: expected shape (..., n_classes), got a scalar")
    n_classes = z.shape[-1]
    lead = z.shape[:-1]
    lab = np.asarray(labels)
    rows = z.reshape(int(np.prod(lead)), n_classes)
    if lab.shape == lead:
        loss, grad = _sparse(rows, check_int_labels(lab, n_classes).reshape(-1), need_grad)
    elif lab.shape == z.shape:
        dense = check_prob_labels(lab).reshape(rows.shape)
        onehot_idx = _onehot_indices(dense)
        if onehot_idx is not None:
            loss, grad = _sparse(rows, onehot_idx, need_grad)
        else:
            loss, grad = _dense(rows, dense, need_grad)
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


def check_prob_labels(labels: np.ndarray) -> np.ndarray:
    """Soft labels, validated finite and >= 0 (rows need not sum to 1); floats keep their dtype."""
    if labels.dtype.kind not in "biuf":
        raise TypeError(f"label probabilities must be numeric, got dtype {labels.dtype}")
    y = labels if labels.dtype.kind == "f" else labels.astype(F64)
    if y.size and not (np.isfinite(y).all() and y.min() >= 0):
        bad = y[~(np.isfinite(y) & (y >= 0))].flat[0]
        raise ValueError(f"label probabilities must be finite and >= 0, got {bad.item()!r}")
    return y


def _onehot_indices(y: np.ndarray) -> np.ndarray | None:
    """Class indices when every row of y (n, C), already checked >= 0, is exactly one-hot."""
    if y.shape[1] == 0:
        return None
    idx = y.argmax(axis=1)
    # Entries are >= 0, so a row summing to 1 whose largest entry is 1 has zeros elsewhere.
    if (y[np.arange(y.shape[0]), idx] == 1).all() and (y.sum(axis=1) == 1).all():
        return idx
    return None


def _sparse(z: np.ndarray, y: np.ndarray, need_grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
    n, width = z.shape
    loss = np.empty(n, z.dtype)
    grad = np.empty((n, width), z.dtype) if need_grad else None

    def work(lo: int, hi: int) -> None:
        zb, yb = z[lo:hi], y[lo:hi]
        todo = np.arange(hi - lo)
        if z.dtype != F64:
            gb = None if grad is None else grad[lo:hi]
            todo = np.flatnonzero(_sparse_unshifted(zb, yb, loss[lo:hi], gb))
            if todo.size == 0:
                return
            zb, yb = zb[todo], yb[todo]
        lb, gb64 = sparse_rows64(zb.astype(F64, copy=False), yb, need_grad)
        loss[lo + todo] = lb
        if grad is not None:
            grad[lo + todo] = gb64

    if width == 0 and n:
        raise ValueError("logits have no classes (last axis of length 0)")
    for_row_blocks(n, width, work)
    return loss, grad


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
        posinf, single, _ = special_rows_info(zs)
        r = np.arange(zs.shape[0])
        loss[sh.special] = np.where(single, np.where(posinf[r, ys], 0.0, np.inf), np.nan)
        if grad is not None:
            g = np.where(single[:, None], posinf.astype(F64), np.nan)
            g[r, ys] -= 1.0
            grad[sh.special] = g
    return loss, grad


def _sparse_unshifted(
    zb: np.ndarray, yb: np.ndarray, loss: np.ndarray, grad: np.ndarray | None
) -> np.ndarray:
    """Fast path for float16/32 rows: float64 exp without the shift. Returns rows to redo exactly.

    loss = log1p(Σ_{j≠y} e_j / e_y) needs no max; a row is exact when its sum of exp(z) is
    finite and not tiny and exp(z_y) is a normal float64 (see softmax._softmax_unshifted).
    The row sums use a matrix-vector product: its rounding (~1e-16) is far below float32's.
    """
    r = np.arange(zb.shape[0])
    e = scratch(*zb.shape)
    np.exp(zb, out=e, dtype=F64)
    e_y = e[r, yb]
    e[r, yb] = 0.0
    others = e @ ones(e.shape[1])
    total = others + e_y
    lb = np.log1p(others / e_y)
    loss[...] = lb
    if grad is not None:
        inv = 1.0 / total
        e *= inv[:, None]
        grad[...] = e
        grad[r, yb] = -(others * inv)
    ok = (e_y >= _MIN_NORMAL64) & (e_y < np.inf) & (total >= _FAST_MIN_SUM) & (lb < np.inf)
    return ~ok


def _dense(z: np.ndarray, y: np.ndarray, need_grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
    n, width = z.shape
    loss = np.empty(n, z.dtype)
    grad = np.empty((n, width), z.dtype) if need_grad else None

    def work(lo: int, hi: int) -> None:
        lb, gb = dense_rows64(z[lo:hi].astype(F64), y[lo:hi].astype(F64), need_grad)
        loss[lo:hi] = lb
        if grad is not None:
            grad[lo:hi] = gb

    if width == 0 and n:
        raise ValueError("logits have no classes (last axis of length 0)")
    for_row_blocks(n, width, work)
    return loss, grad


def dense_rows64(z: np.ndarray, y: np.ndarray, need_grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Exact loss (n,) and optional grad (n, C) for float64 rows z and soft labels y (n, C)."""
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
        posinf, single, _ = special_rows_info(z[sh.special])
        all_mass_on_inf = ~((ys != 0) & ~posinf).any(axis=1)
        loss[sh.special] = np.where(single, np.where(all_mass_on_inf, 0.0, np.inf), np.nan)
        if grad is not None:
            p = np.where(single[:, None], posinf.astype(F64), np.nan)
            grad[sh.special] = p * y_sum[sh.special] - ys
    return loss, grad
