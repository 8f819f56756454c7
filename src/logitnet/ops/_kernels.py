"""numba kernels of the compiled path (see `fast`). Importing this module imports numba.

Each kernel makes one pass over flat float32/float64 arrays and does, element by element, the
operations of its NumPy reference in the same order and the same precision (the scalars come in
the arrays' dtype; no fastmath, so no contraction into FMAs): the results are bit-identical.
An empty `backup` means none; otherwise each parameter is copied there before it changes.
"""

from __future__ import annotations

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def sgd(w, g, m, backup, lr, mu, momentum, nesterov, tiny):
    """Keras' SGD in place (optimizers.SGD._update): m = μm − ηg; w += m, or w += μm − ηg (Nesterov).
    Returns whether a new weight is infinite or NaN."""
    copy = backup.size == w.size
    bad = False
    zero = tiny - tiny  # 0 in the slots' dtype
    for i in range(w.size):
        if copy:
            backup[i] = w[i]
        lr_g = g[i] * lr
        if not momentum:
            wi = w[i] - lr_g
        else:
            mi = m[i] * mu
            mi = mi - lr_g
            if abs(mi) < tiny:  # optimizers._flush: subnormal slots become 0
                mi = mi * zero  # its sign kept, as NumPy's slot * 0
            m[i] = mi
            if nesterov:
                t = mi * mu
                t = t - lr_g
                wi = w[i] + t
            else:
                wi = w[i] + mi
        w[i] = wi
        bad |= (wi - wi) != 0  # NaN for inf and NaN; an OR keeps the loop vectorized
    return bad


@_jit
def adam(w, g, m, v, v_hat, backup, one_minus_beta_1, one_minus_beta_2, alpha, eps, amsgrad, tiny):
    """Keras' Adam in place (optimizers.Adam._update), AMSGrad's running maximum with `amsgrad`.
    Returns whether a new weight is infinite or NaN."""
    copy = backup.size == w.size
    bad = False
    zero = tiny - tiny  # 0 in the slots' dtype
    for i in range(w.size):
        if copy:
            backup[i] = w[i]
        gi = g[i]
        s = gi - m[i]
        s = s * one_minus_beta_1
        mi = m[i] + s
        if abs(mi) < tiny:  # optimizers._flush: subnormal slots become 0
            mi = mi * zero  # its sign kept, as NumPy's slot * 0
        m[i] = mi
        s = gi * gi
        s = s - v[i]
        s = s * one_minus_beta_2
        vi = v[i] + s
        if abs(vi) < tiny:
            vi = vi * zero  # its sign kept, as NumPy's slot * 0
        v[i] = vi
        if amsgrad:
            h = v_hat[i]
            if not (np.isnan(h) or h >= vi):  # np.maximum: NaN wins
                h = vi
            v_hat[i] = h
            vi = h
        s = np.sqrt(vi)
        s = s + eps
        t = mi * alpha
        t = t / s
        wi = w[i] - t
        w[i] = wi
        bad |= (wi - wi) != 0
    return bad


@_jit
def rmsprop(w, g, v, mom, avg, backup, rho, one_minus_rho, eps, lr, momentum, use_momentum, centered, tiny):
    """Keras' RMSprop in place (optimizers.RMSprop._update), centered and with momentum as asked.
    Returns whether a new weight is infinite or NaN."""
    copy = backup.size == w.size
    bad = False
    zero = tiny - tiny  # 0 in the slots' dtype
    for i in range(w.size):
        if copy:
            backup[i] = w[i]
        gi = g[i]
        vi = v[i] * rho
        s = gi * gi
        s = s * one_minus_rho
        vi = vi + s
        if abs(vi) < tiny:  # optimizers._flush: subnormal slots become 0
            vi = vi * zero  # its sign kept, as NumPy's slot * 0
        v[i] = vi
        if centered:
            a = avg[i] * rho
            s = gi * one_minus_rho
            a = a + s
            if abs(a) < tiny:
                a = a * zero  # its sign kept, as NumPy's slot * 0
            avg[i] = a
            s = a * a
            s = vi - s
            s = s + eps
        else:
            s = vi + eps
        s = np.sqrt(s)
        t = gi * lr
        t = t / s
        if use_momentum:
            mm = mom[i] * momentum
            mm = mm + t
            if abs(mm) < tiny:
                mm = mm * zero  # its sign kept, as NumPy's slot * 0
            mom[i] = mm
            wi = w[i] - mm
        else:
            wi = w[i] - t
        w[i] = wi
        bad |= (wi - wi) != 0
    return bad


@_jit
def sparse_xent_in_range(z, y, scale, loss, grad, low, high):
    """softmax_xent.sparse_batch_in_range: float32 logits z (n, C) all in (low, high) and int labels
    y (n,) give per-sample losses (n,) and scale·dloss/dz (n, C), from float64 exponentials without
    the max shift, each value rounded once; False, writing nothing, when a logit leaves the range.
    The sum of the other classes' terms runs in order (NumPy's in SIMD lanes): the float64 values
    may differ in their last bits, the float32 results only where they sit on a rounding boundary."""
    n, c = z.shape
    for i in range(n):
        for j in range(c):
            v = z[i, j]
            if not (v > low and v < high):  # NaN fails too
                return False
    e = np.empty(c)
    for i in range(n):
        yi = y[i]
        others = 0.0
        for j in range(c):
            ej = np.exp(np.float64(z[i, j]))
            e[j] = ej
            if j != yi:
                others += ej  # Σ_{j≠y} e_j, without e_y: 1 − p_y never cancels
        e_y = e[yi]
        total = others + e_y
        loss[i] = np.log1p(others / e_y)
        inv = scale / total
        for j in range(c):
            grad[i, j] = e[j] * inv
        grad[i, yi] = -(others * inv)
    return True


@_jit
def dense_stack(x, params, starts, dims, biased, relu, out):
    """Inference through a stack of Dense layers for a few rows x (n, dims[0]): layer l's kernel
    (dims[l], dims[l + 1]) starts at params[starts[l]], its bias (dims[l + 1],) follows it when
    biased[l], then ReLU when relu[l] (else linear). The last layer's outputs go to out (n, dims[-1]).

    Each output sums its products in float64 (exact for float32 factors) and is rounded once to the
    params' dtype: as accurate as a BLAS call, or more; the values may differ from NumPy's in the
    last bits, as BLAS's own do between machines."""
    n_layers = dims.size - 1
    width = 0
    for d in dims:
        width = max(width, d)
    a = np.empty(width, params.dtype)
    b = np.empty(width, params.dtype)
    acc = np.empty(width)
    for i in range(x.shape[0]):
        for k in range(dims[0]):
            a[k] = x[i, k]
        for layer in range(n_layers):
            d_in, d_out, at = dims[layer], dims[layer + 1], starts[layer]
            acc[:d_out] = 0.0
            for k in range(d_in):
                xk = np.float64(a[k])
                w_k = params[at + k * d_out:at + (k + 1) * d_out]  # a slice: the loop vectorizes
                for j in range(d_out):
                    acc[j] += xk * w_k[j]
            if biased[layer]:
                bias = params[at + d_in * d_out:at + (d_in + 1) * d_out]
                for j in range(d_out):
                    acc[j] += bias[j]
            for j in range(d_out):
                b[j] = acc[j]  # the one rounding
            if relu[layer]:
                for j in range(d_out):
                    v = b[j]
                    if v < 0:  # NaN stays, as in np.maximum
                        b[j] = 0
            a, b = b, a
        for j in range(dims[n_layers]):
            out[i, j] = a[j]


@_jit
def softmax_rows(z, out, min_total, max_total):
    """softmax.softmax's unshifted fast path for float32 rows z (n, C): float64 exponentials, each
    row times the reciprocal of its in-order sum, rounded once into out (n, C). False (out then
    partly written) when a row's sum leaves [min_total, max_total): the exact path takes over."""
    n, c = z.shape
    e = np.empty(c)
    for i in range(n):
        total = 0.0
        for j in range(c):
            ej = np.exp(np.float64(z[i, j]))
            e[j] = ej
            total += ej
        if not (total >= min_total and total < max_total):  # NaN fails too
            return False
        inv = 1.0 / total
        for j in range(c):
            out[i, j] = e[j] * inv
    return True


@_jit
def bias_relu(z, bias, out):
    """Dense's ReLU forward in one pass over z (n, units): z += bias (unless bias is empty), then
    out = np.maximum(z, 0) (−0 and negatives give +0, NaN stays). out may be z, or a view."""
    zero = z.dtype.type(0)
    for i in range(z.shape[0]):
        zi, oi = z[i], out[i]  # row slices: the loops vectorize
        if bias.size:
            for j in range(zi.size):
                zi[j] = zi[j] + bias[j]
        for j in range(zi.size):
            s = zi[j]
            oi[j] = zero if s <= 0 else s  # NaN <= 0 is False: NaN stays


@_jit
def relu_backward(grad, z):
    """Dense's ReLU backward in place on grad (n, units): grad *= (z > 0), as NumPy's multiply by the
    boolean mask (so an infinite or NaN gradient times 0 gives NaN, a negative one −0)."""
    one, zero = grad.dtype.type(1), grad.dtype.type(0)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            grad[i, j] = grad[i, j] * (one if z[i, j] > 0 else zero)
