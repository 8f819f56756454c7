"""Exact sigmoid, log_sigmoid, softplus and sigmoid binary cross-entropy from logits (elementwise).

Everything is built on t = exp(−|z|) ∈ [0, 1], which never overflows:
softplus(z) = max(z, 0) + log1p(t),  σ(|z|) = 1 / (1 + t),  σ(−|z|) = t / (1 + t).
The loss with targets y ∈ [0, 1] and positive-class weight w,

    loss = w·y·softplus(−z) + (1 − y)·softplus(z),
    grad = (1 − y)·σ(z) − w·y·σ(−z),

is a sum of terms >= 0, so only the soft-label gradient can cancel, and only where σ(z) ≈ y.
float16/float32 inputs are computed in float64 and rounded once.
"""

from __future__ import annotations

import numpy as np

from ._core import F64, as_float_array


def _parts(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t = exp(−|z|), σ(|z|), σ(−|z|)) in float64."""
    with np.errstate(under="ignore"):
        t = np.exp(-np.abs(z))
    one_plus_t = 1.0 + t
    return t, 1.0 / one_plus_t, t / one_plus_t


def sigmoid(x: object) -> np.ndarray:
    """1 / (1 + exp(−x)), elementwise, exact and dtype-preserving."""
    a = as_float_array(x, "x")
    z = a.astype(F64, copy=False)
    _, s_pos, s_neg = _parts(z)
    return np.where(z >= 0, s_pos, s_neg).astype(a.dtype, copy=False)


def softplus(x: object) -> np.ndarray:
    """log(1 + exp(x)), elementwise, exact and dtype-preserving."""
    a = as_float_array(x, "x")
    z = a.astype(F64, copy=False)
    with np.errstate(under="ignore"):
        out = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
    return out.astype(a.dtype, copy=False)


def log_sigmoid(x: object) -> np.ndarray:
    """log σ(x) = −softplus(−x), elementwise, exact and dtype-preserving."""
    a = as_float_array(x, "x")
    return -softplus(-a)


def _times(w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """w·v with 0 wherever w == 0 (so a zero weight cancels an infinite term)."""
    with np.errstate(invalid="ignore"):
        return np.where(w == 0, 0.0, w * v)


def check_targets(targets: object, shape: tuple[int, ...]) -> np.ndarray:
    """Targets as float64 broadcast to `shape`, each in [0, 1]."""
    y = np.asarray(targets)
    if y.dtype.kind not in "biuf":
        raise TypeError(f"targets must be numeric, got dtype {y.dtype}")
    try:
        y = np.broadcast_to(y.astype(F64, copy=False), shape)
    except ValueError:
        raise ValueError(f"targets of shape {y.shape} do not match logits of shape {shape}") from None
    if y.size and not ((y >= 0) & (y <= 1)).all():
        bad = y[~((y >= 0) & (y <= 1))].flat[0]
        raise ValueError(f"binary targets must lie in [0, 1], got {bad.item()!r}")
    return y


def check_pos_weight(pos_weight: object, shape: tuple[int, ...]) -> np.ndarray:
    """pos_weight as float64, broadcastable to `shape` (a scalar or one weight per label), >= 0."""
    w = np.asarray(pos_weight, dtype=F64)
    try:
        np.broadcast_shapes(w.shape, shape)
    except ValueError:
        raise ValueError(
            f"pos_weight of shape {w.shape} does not broadcast to logits of shape {shape}; "
            "give a scalar or one weight per label (last axis)"
        ) from None
    if w.size and not (np.isfinite(w).all() and w.min() >= 0):
        raise ValueError(f"pos_weight must be finite and >= 0, got {w.ravel()[:8]}")
    return w


def binary_cross_entropy(
    logits: object, targets: object, pos_weight: object | None = None, need_grad: bool = False,
    grad_scale: float | np.ndarray = 1.0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Elementwise sigmoid BCE from logits: (loss, grad or None), in the logits' dtype. The
    gradient is multiplied by grad_scale (broadcast against it, float64) before its one rounding."""
    a = as_float_array(logits, "logits")
    z = a.astype(F64, copy=False)
    y = check_targets(targets, z.shape)
    w = None if pos_weight is None else check_pos_weight(pos_weight, z.shape)
    t, s_pos, s_neg = _parts(z)
    log1p_t = np.log1p(t)
    sp_z = np.maximum(z, 0.0) + log1p_t  # softplus(z)
    sp_neg_z = np.maximum(-z, 0.0) + log1p_t  # softplus(−z)
    wy = y if w is None else w * y
    loss = _times(wy, sp_neg_z) + _times(1.0 - y, sp_z)
    grad = None
    if need_grad:
        nonneg = z >= 0
        sig_z = np.where(nonneg, s_pos, s_neg)
        sig_neg_z = np.where(nonneg, s_neg, s_pos)
        grad = (1.0 - y) * sig_z - wy * sig_neg_z
        if np.ndim(grad_scale) or grad_scale != 1.0:
            grad *= grad_scale
        grad = grad.astype(a.dtype, copy=False)
    return loss.astype(a.dtype, copy=False), grad


def sigmoid_binary_cross_entropy(
    logits: object, targets: object, pos_weight: object | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise sigmoid binary cross-entropy from logits and dloss/dlogits.

    logits (...), targets in [0, 1] broadcastable to logits, pos_weight scalar or (L,) weighting
    the positive term. Returns loss and grad, both shaped like logits, in the logits' dtype.
    """
    loss, grad = binary_cross_entropy(logits, targets, pos_weight, need_grad=True)
    assert grad is not None
    return loss, grad
