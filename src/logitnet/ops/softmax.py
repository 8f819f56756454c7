"""Exact logsumexp, log_softmax and softmax over the last axis (or any `axis`).

The exact form, in float64 (float16/float32 inputs are widened, which is exact):
with m = max(z) at index k, d = z − m split exactly as d_hi + d_lo, e = exp(d) and
s = Σ_{j≠k} e_j ≥ 0,

    logsumexp = m + log1p(s),   log_softmax_j = d_j − log1p(s),   softmax_j = e_j / (1 + s).

Both terms of log_softmax have the same sign, so nothing cancels; log1p keeps tiny s.
Non-finite rows follow the limits: NaN anywhere gives NaN; one +inf takes all the mass
(softmax one-hot, log_softmax 0 there and −inf elsewhere); several +inf, or every entry −inf,
give NaN (the limit is undefined); logsumexp is +inf with any +inf and −inf when all are −inf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import fast
from ._core import (
    EXACT_BLOCK_ELEMENTS,
    F64,
    as_float_array,
    block_size,
    for_row_blocks,
    row_sums,
    scratch,
    to_rows,
    two_diff,
)

# The unshifted fast path (float16/32 in, float64 inside) is exact for a row when the float64
# sum of exp(z) lies in [2**-700, 2**300): any subnormal exp(z_j) then gives a probability
# below 2**-322, far under float32's range, and no ratio of terms can overflow.
_FAST_MIN_TERM = 2.0**-700
_FAST_MAX_SUM = 2.0**300
# Softmax of at most this many float32 elements takes the compiled kernel (logitnet[fast]) when
# installed: below it NumPy's calls cost more than the arithmetic.
_COMPILED_MAX = 1 << 12


@dataclass
class Shifted:
    """Rows z (n, C) shifted by their max: z − m = d_hi + d_lo, e = exp(d), s = Σ_{j≠k} e_j."""

    m: np.ndarray  # (n,) row max (0 in special rows)
    k: np.ndarray  # (n,) index of the first max
    d_hi: np.ndarray  # (n, C)
    d_lo: np.ndarray  # (n, C)
    exp_hi: np.ndarray  # (n, C) exp(d_hi)
    e: np.ndarray  # (n, C) exp(d_hi + d_lo), e[k] == 1
    s: np.ndarray  # (n,) sum of e off the max, >= 0
    special: np.ndarray  # (n,) bool: row max is NaN or ±inf; values there are placeholders

    @property
    def log1p_s(self) -> np.ndarray:
        return np.log1p(self.s)

    @property
    def total(self) -> np.ndarray:
        """Σ_j e_j = 1 + s, rounded, shape (n,)."""
        return 1.0 + self.s

    def probs(self) -> np.ndarray:
        """softmax (n, C) to about 1.6 ulp: exp(d_hi)(1 + d_lo) / (1 + s) with 1 + s kept as hi + lo."""
        total_hi, total_lo = two_sum(np.ones_like(self.s), self.s)
        q = self.exp_hi / total_hi[:, None]
        return q + q * (self.d_lo - (total_lo / total_hi)[:, None])


def two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a + b as hi + lo exactly (finite inputs)."""
    return two_diff(a, -b)


def _exact_row_sum(e: np.ndarray) -> np.ndarray:
    """Σ over each row of e (n, C), 0 <= e <= 1, rounded once: the parts of e on the grid of
    ulp(2C) add up exactly; the small remainders carry no noticeable error."""
    sigma = 2.0 ** (int(np.ceil(np.log2(max(e.shape[1], 1)))) + 1)
    hi = (e + sigma) - sigma
    return hi.sum(axis=1) + (e - hi).sum(axis=1)


def shift_rows(z: np.ndarray) -> Shifted:
    """Compute the exact shifted form of float64 rows z (n, C), C >= 1."""
    m = z.max(axis=1)
    special = ~np.isfinite(m)
    if special.any():
        z = z.copy()
        z[special] = 0.0
        m = np.where(special, 0.0, m)
    k = z.argmax(axis=1)
    d_hi, d_lo = two_diff(z, m[:, None])
    with np.errstate(under="ignore", over="ignore"):
        exp_hi = np.exp(d_hi)
        e = exp_hi + exp_hi * d_lo  # exp(d_hi + d_lo) = exp(d_hi)(1 + d_lo) to well below an ulp
    rows = np.arange(z.shape[0])
    e[rows, k] = 0.0
    s = _exact_row_sum(e)
    e[rows, k] = 1.0
    return Shifted(m, k, d_hi, d_lo, exp_hi, e, s, special)


def special_rows_info(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows (r, C) with a non-finite max: (+inf mask (r, C), rows with one +inf and no NaN (r,)).
    Only those rows have a limit; the others (NaN, several +inf, all −inf) are NaN."""
    posinf = z == np.inf
    single = (posinf.sum(axis=1) == 1) & ~np.isnan(z).any(axis=1)
    return posinf, single


def _rows_float(x: object, axis: int, name: str = "logits"):
    a = as_float_array(x, name)
    rows, back = to_rows(a, axis)
    return a.dtype, rows, back


def logsumexp(x: object, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    """log Σ exp(x) along `axis` (default last), dtype-preserving: (..., C) -> (...)."""
    a = as_float_array(x, "x")
    z, _ = to_rows(a, axis)
    n, width = z.shape
    lead = a.shape[: axis % a.ndim] + a.shape[axis % a.ndim + 1 :]
    out = np.full(n, -np.inf, a.dtype)

    def work(lo: int, hi: int) -> None:
        zb = z[lo:hi].astype(F64, copy=False)
        sh = shift_rows(zb)
        res = sh.m + sh.log1p_s
        if sh.special.any():
            zs = zb[sh.special]
            has_nan = np.isnan(zs).any(axis=1)
            has_pos = (zs == np.inf).any(axis=1)
            res[sh.special] = np.where(has_nan, np.nan, np.where(has_pos, np.inf, -np.inf))
        out[lo:hi] = res

    if width:
        for_row_blocks(n, width, work, EXACT_BLOCK_ELEMENTS)
    out = out.reshape(lead)
    return np.expand_dims(out, axis % a.ndim) if keepdims else out


def log_softmax(x: object, axis: int = -1) -> np.ndarray:
    """log(softmax(x)) along `axis`, exact and dtype-preserving; same shape as x."""
    dtype, z, back = _rows_float(x, axis)
    n, width = z.shape
    out = np.empty((n, width), dtype)

    def work(lo: int, hi: int) -> None:
        zb = z[lo:hi].astype(F64, copy=False)
        sh = shift_rows(zb)
        res = sh.d_hi + (sh.d_lo - sh.log1p_s[:, None])
        if sh.special.any():
            posinf, single = special_rows_info(zb[sh.special])
            limit = np.where(posinf, 0.0, -np.inf)
            res[sh.special] = np.where(single[:, None], limit, np.nan)
        out[lo:hi] = res

    if width:
        for_row_blocks(n, width, work, EXACT_BLOCK_ELEMENTS)
    return back(out)


def softmax(x: object, axis: int = -1) -> np.ndarray:
    """exp(x) / Σ exp(x) along `axis`, each probability exact to the output dtype; same shape as x."""
    dtype, z, back = _rows_float(x, axis)
    n, width = z.shape
    out = np.empty((n, width), dtype)
    if width == 0 or n == 0:
        return back(out)
    if dtype == np.float32 and n * width <= _COMPILED_MAX:
        kernels = fast.kernels()  # a few rows (model(x)): one compiled call, the same arithmetic
        if kernels is not None and kernels.softmax_rows(z, out, _FAST_MIN_TERM, _FAST_MAX_SUM):
            return back(out)

    def work(lo: int, hi: int) -> None:
        zb = z[lo:hi]
        todo = np.arange(hi - lo)
        if dtype != F64:
            todo = np.flatnonzero(_softmax_unshifted(zb, out[lo:hi]))
            if todo.size == 0:
                return
            zb = zb[todo]
        out[lo + todo] = softmax_rows64(zb.astype(F64, copy=False))

    for_row_blocks(n, width, work, block_size(dtype))
    return back(out)


def softmax_rows64(z: np.ndarray) -> np.ndarray:
    """Exact softmax of float64 rows (n, C), with the limit rules for non-finite rows."""
    sh = shift_rows(z)
    p = sh.probs()
    if sh.special.any():
        posinf, single = special_rows_info(z[sh.special])
        p[sh.special] = np.where(single[:, None], posinf.astype(F64), np.nan)
    return p


def _softmax_unshifted(zb: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Fast softmax for float16/32 rows: float64 exp without the shift. Returns rows to redo.

    Exact for every ordinary row (see _FAST_MIN_TERM); others (huge or very negative logits,
    inf, NaN) are flagged for the shifted form.
    """
    e = scratch(*zb.shape)
    np.exp(zb, out=e, dtype=F64)
    total = row_sums(e)
    e *= (1.0 / total)[:, None]
    out[...] = e
    return ~((total >= _FAST_MIN_TERM) & (total < _FAST_MAX_SUM))
