"""mpmath references (60 significant digits) and an exact ulp-error measure for the numerics tests."""

from __future__ import annotations

import math

import mpmath
import numpy as np

mpmath.mp.dps = 60
mpf = mpmath.mpf

# (precision in bits, smallest normal exponent) of each float type: ulp(x) = 2**(e - p + 1).
_FORMAT = {np.dtype(np.float16): (11, -14), np.dtype(np.float32): (24, -126),
           np.dtype(np.float64): (53, -1022)}


def ulp(ref: mpmath.mpf, dtype: np.dtype) -> mpmath.mpf:
    """The unit in the last place of the binade holding |ref| in `dtype` (subnormal spacing below)."""
    prec, emin = _FORMAT[np.dtype(dtype)]
    if ref == 0:
        return mpmath.ldexp(1, emin - prec + 1)
    _, e = mpmath.frexp(abs(ref))  # |ref| = m·2**e with 0.5 <= m < 1
    return mpmath.ldexp(1, max(e - 1, emin) - prec + 1)


def ulp_error(computed: float, ref: mpmath.mpf, dtype: np.dtype, scale: mpmath.mpf | None = None) -> float:
    """|computed − ref| in ulps of `ref` (or of `scale` when given) in `dtype`; inf if not finite."""
    c = float(computed)
    if not math.isfinite(c):
        return math.inf
    return float(abs(mpf(c) - ref) / ulp(ref if scale is None else scale, dtype))


def max_ulp_error(computed: np.ndarray, refs: list, dtype: np.dtype) -> float:
    """Largest ulp error over matching sequences of computed values and mpmath references."""
    flat = np.asarray(computed).ravel()
    assert flat.size == len(refs)
    return max((ulp_error(c, r, dtype) for c, r in zip(flat, refs)), default=0.0)


def _row(z) -> list:
    return [mpf(float(v)) for v in np.asarray(z, dtype=np.float64).ravel()]


def _max_and_log1p_rest(z) -> tuple[mpmath.mpf, mpmath.mpf]:
    """(m, log1p(Σ_{j≠argmax} exp(z_j − m))): log1p keeps a tiny remainder that 1 + x would lose."""
    zs = _row(z)
    k = max(range(len(zs)), key=lambda j: zs[j])
    m = zs[k]
    return m, mpmath.log1p(mpmath.fsum(mpmath.exp(v - m) for j, v in enumerate(zs) if j != k))


def logsumexp(z) -> mpmath.mpf:
    m, rest = _max_and_log1p_rest(z)
    return m + rest


def log_softmax(z) -> list:
    m, rest = _max_and_log1p_rest(z)
    return [(v - m) - rest for v in _row(z)]


def softmax(z) -> list:
    lse = logsumexp(z)
    return [mpmath.exp(v - lse) for v in _row(z)]


def softmax_xent(z, label) -> tuple[mpmath.mpf, list]:
    """Loss and gradient for one row with an integer label."""
    zs = _row(z)
    zy = zs[label]
    others = mpmath.fsum(mpmath.exp(v - zy) for j, v in enumerate(zs) if j != label)
    loss = mpmath.log1p(others)
    p = softmax(z)
    grad = list(p)
    grad[label] = -mpmath.fsum(p[j] for j in range(len(zs)) if j != label)
    return loss, grad


def softmax_xent_soft(z, y) -> tuple[mpmath.mpf, list]:
    """Loss and gradient for one row with soft labels y (rows need not sum to 1)."""
    ls = log_softmax(z)
    ys = _row(y)
    loss = -mpmath.fsum(a * b for a, b in zip(ys, ls) if a != 0)
    p = softmax(z)
    total = mpmath.fsum(ys)
    return loss, [pj * total - yj for pj, yj in zip(p, ys)]


def sigmoid(z: float) -> mpmath.mpf:
    return 1 / (1 + mpmath.exp(-mpf(float(z))))


def softplus(z: float) -> mpmath.mpf:
    v = mpf(float(z))
    return v + mpmath.log1p(mpmath.exp(-v)) if v > 0 else mpmath.log1p(mpmath.exp(v))


def bce(z: float, y: float, w: float = 1.0) -> tuple[mpmath.mpf, mpmath.mpf]:
    """Loss w·y·softplus(−z) + (1 − y)·softplus(z) and its derivative in z."""
    y, w = mpf(float(y)), mpf(float(w))
    loss = w * y * softplus(-z) + (1 - y) * softplus(z)
    grad = (1 - y) * sigmoid(z) - w * y * sigmoid(-z)
    return loss, grad
