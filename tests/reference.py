"""mpmath references (60 significant digits) and an exact ulp-error measure for the numerics tests."""

from __future__ import annotations

import math
from functools import lru_cache

import mpmath
import numpy as np

mpmath.mp.dps = 60
mpf = mpmath.mpf

# A float16/float32 result that is a float64 value rounded once, the float64 value being within k
# float64 ulps of the truth, is within 0.5 + k·2^-29 float32 ulps (0.5 + k·2^-42 float16 ulps) of
# the truth: the true value lies below 2^24 of its float32 ulps. Correct rounding is tested as
# 0.5 ulp plus 2^-20 (k up to 512), which still fails a result rounded twice (up to 1 ulp off).
HALF_ULP = 0.5 + 2.0**-20
# float64 results: the README's target.
F64_ULPS = 4.0

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


def ulps_from_float64(computed: np.ndarray, truth: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Vectorised ulp errors of float16/32 results against float64 stand-ins for the truth (for
    rows too long for mpmath): adds the stand-in's own error, ~2^-29 ulp for a float64 formula
    good to a few float64 ulps. inf where a result is not finite."""
    prec, emin = _FORMAT[np.dtype(dtype)]
    c = np.asarray(computed, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    _, e = np.frexp(np.abs(t))
    spacing = np.ldexp(1.0, np.maximum(e - 1, emin) - prec + 1)
    with np.errstate(invalid="ignore"):
        err = np.abs(c - t) / spacing
    return np.where(np.isfinite(c), err, np.inf)


def _row(z) -> list:
    return list(_row_cached(_key(z)))


def _key(z) -> bytes:
    """A row's float64 values as bytes: the cache key of the references below (widening is exact)."""
    return np.ascontiguousarray(z, dtype=np.float64).ravel().tobytes()


# Rows recur: the same row's softmax, log_softmax and logsumexp are wanted by several checks, and
# large rows (32,768 classes) cost seconds each. Results are immutable tuples of mpf.
@lru_cache(maxsize=512)
def _row_cached(key: bytes) -> tuple:
    return tuple(mpf(float(v)) for v in np.frombuffer(key, dtype=np.float64))


@lru_cache(maxsize=512)
def _shifted(key: bytes) -> tuple[mpmath.mpf, mpmath.mpf]:
    """(m, log1p(Σ_{j≠argmax} exp(z_j − m))): log1p keeps a tiny remainder that 1 + x would lose."""
    zs = _row_cached(key)
    k = max(range(len(zs)), key=lambda j: zs[j])
    m = zs[k]
    return m, mpmath.log1p(mpmath.fsum(mpmath.exp(v - m) for j, v in enumerate(zs) if j != k))


def _max_and_log1p_rest(z) -> tuple[mpmath.mpf, mpmath.mpf]:
    return _shifted(_key(z))


def logsumexp(z) -> mpmath.mpf:
    m, rest = _max_and_log1p_rest(z)
    return m + rest


def log_softmax(z) -> list:
    m, rest = _max_and_log1p_rest(z)
    return [(v - m) - rest for v in _row(z)]


@lru_cache(maxsize=512)
def _softmax_cached(key: bytes) -> tuple:
    m, rest = _shifted(key)
    lse = m + rest
    return tuple(mpmath.exp(v - lse) for v in _row_cached(key))


def softmax(z) -> list:
    return list(_softmax_cached(_key(z)))


def softmax_xent(z, label) -> tuple[mpmath.mpf, list]:
    """Loss and gradient for one row with an integer label."""
    loss, grad = _softmax_xent_cached(_key(z), int(label))
    return loss, list(grad)


@lru_cache(maxsize=512)
def _softmax_xent_cached(key: bytes, label: int) -> tuple[mpmath.mpf, tuple]:
    zs = _row_cached(key)
    zy = zs[label]
    others = mpmath.fsum(mpmath.exp(v - zy) for j, v in enumerate(zs) if j != label)
    loss = mpmath.log1p(others)
    p = _softmax_cached(key)
    grad = list(p)
    grad[label] = -mpmath.fsum(p[j] for j in range(len(zs)) if j != label)
    return loss, tuple(grad)


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
