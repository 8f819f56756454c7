"""logitnet.activations: every function's value and derivative against mpmath, in the regimes that
matter (0, tiny, ±large, and where naive formulas cancel); Keras' parameterised relu by hand and
against keras.activations; derivatives against central differences; the name registry."""

from __future__ import annotations

import math
import re
from functools import cache

import mpmath
import numpy as np
import pytest
import reference as ref
from frameworks import need

from logitnet import activations, backend
from logitnet.tensor import Tensor

mpf = ref.mpf

# --- tolerances ------------------------------------------------------------------------------------
# float64: values and derivatives are a handful of correctly-rounded-to-~1-ulp libm calls (exp, expm1,
# log1p, tanh, erfc) and one or two products/sums, so a correct formula is within 4 ulps
# (reference.F64_ULPS, the README's target). float32: most results are float64 formulas rounded once
# (≤ 0.5 ulp + 2^-29); a few are native float32 NumPy calls (np.tanh, np.expm1, np.exp: ~1 ulp) times
# a float32 constant, so values get 2 ulps. Derivatives in float32 chain up to four float32
# roundings (silu's s·(1 + z·(1 − s))) and get 4 ulps. A formula that cancels (1 − σ(z) for z > 2,
# 1 + tanh(u) for u < −1, erfc of a rounded argument) misses these bounds by orders of magnitude,
# so the bounds separate right from wrong.
VALUE_ULPS = {np.float64: 4.0, np.float32: 2.0}
GRAD_ULPS = {np.float64: 4.0, np.float32: 4.0}
DTYPES = [np.float64, np.float32]

# --- mpmath references (60 digits), on the float inputs exactly ---------------------------------------
_SQRT2 = mpmath.sqrt(2)
_GELU_C = mpmath.sqrt(2 / mpmath.pi)
_GELU_K = mpf("0.044715")


def _sig(x):
    return 1 / (1 + mpmath.exp(-x))


def _phi_cdf(x):
    return mpmath.erfc(-x / _SQRT2) / 2


def _phi_pdf(x):
    return mpmath.exp(-x * x / 2) / mpmath.sqrt(2 * mpmath.pi)


def _gelu_tanh_u(x):
    return _GELU_C * (x + _GELU_K * x**3)


def _gelu_tanh(x):  # 0.5·x·(1 + tanh(u)) = x·σ(2u), with no cancellation
    return x * _sig(2 * _gelu_tanh_u(x))


def _gelu_tanh_grad(x):
    s = _sig(2 * _gelu_tanh_u(x))
    return s + x * s * (1 - s) * 2 * _GELU_C * (1 + 3 * _GELU_K * x * x)


# name -> (keyword parameters, value(x), derivative(x)); x an mpf holding the float input exactly.
# The relu family's derivative at a kink is the one Keras/TF use (0 for relu at 0, slope for leaky at 0).
REFS = {
    "linear": ({}, lambda x: x, lambda x: mpf(1)),
    "relu": ({}, lambda x: max(x, mpf(0)), lambda x: mpf(1) if x > 0 else mpf(0)),
    "leaky_relu": ({}, lambda x: x if x >= 0 else mpf(0.2) * x, lambda x: mpf(1) if x > 0 else mpf(0.2)),
    "elu": ({}, lambda x: x if x > 0 else mpmath.expm1(x), lambda x: mpf(1) if x > 0 else mpmath.exp(x)),
    "elu_alpha": ({"alpha": 0.5}, lambda x: x if x > 0 else mpf(0.5) * mpmath.expm1(x),
                  lambda x: mpf(1) if x > 0 else mpf(0.5) * mpmath.exp(x)),
    "gelu": ({}, lambda x: x * _phi_cdf(x), lambda x: _phi_cdf(x) + x * _phi_pdf(x)),
    "gelu_tanh": ({"approximate": True}, _gelu_tanh, _gelu_tanh_grad),
    "sigmoid": ({}, _sig, lambda x: _sig(x) * _sig(-x)),
    "softplus": ({}, lambda x: ref.softplus(float(x)), _sig),
    "silu": ({}, lambda x: x * _sig(x), lambda x: _sig(x) * (1 + x * _sig(-x))),
    "tanh": ({}, mpmath.tanh, lambda x: mpmath.sech(x) ** 2),
}
FUNCTION = {"elu_alpha": "elu", "gelu_tanh": "gelu"}  # case -> registry name, where they differ

# The regimes: 0 and signed zero, tiny and subnormal, moderate, large, huge (sigmoid/softplus at ±100,
# exp's overflow edge), and the cancelling spots: elu near 0 (expm1), gelu for negative x (erfc), tanh
# and sigmoid saturating.
POINTS = {
    np.float64: [0.0, -0.0, 5e-324, -5e-324, 1e-300, -1e-300, 1e-30, -1e-30, 1e-10, -1e-10, 1e-3, -1e-3,
                 0.5, -0.5, 1.0, -1.0, 1.5, -1.5, 3.0, -3.0, 5.0, -5.0, 10.0, -10.0, 20.0, -20.0, 30.0,
                 -30.0, 38.0, -38.0, 40.0, -40.0, 100.0, -100.0, 700.0, -700.0, -720.0, -740.0, 1e10, -1e10,
                 # inexact squares and products (the corrections for rounded arguments must matter);
                 # none near a root of a derivative (silu' at −1.28, gelu' at −0.75: ulps are meaningless there)
                 0.1, -0.1, 2.7, -2.7, -1.7, -7.77, -13.37, 36.6, -36.6, -37.3, -39.1, -711.3],
    np.float32: [0.0, -0.0, 1e-45, -1e-45, 1e-40, -1e-40, 1e-30, -1e-30, 1e-10, -1e-10, 1e-3, -1e-3,
                 0.5, -0.5, 1.0, -1.0, 1.5, -1.5, 3.0, -3.0, 5.0, -5.0, 10.0, -10.0, 13.0, -13.0, 20.0,
                 -20.0, 40.0, -40.0, 88.0, -88.0, -95.0, 100.0, -100.0, -104.0, 1e10, -1e10,
                 0.1, -0.1, -2.7, -7.77, -13.37, -86.3, -97.3],
}


def _subnormal_sigmoid(dtype):  # x·σ(x) formed from a subnormal σ(x): only a few bits left
    return lambda x: x < (-87.0 if dtype == np.float32 else -708.0)


# A known limit (its own test below; the main tests skip these points).
KNOWN_BAD = {
    # approximate gelu, float64: x·σ(v) with v = 2·√(2/π)·(x + 0.044715·x³) rounded, so e^v carries
    # |v|·2^-53 relative error (|v| ulps): the tanh form's limit, tested against that bound below.
    ("gelu_tanh", np.float64, "value"): lambda x: x < -2.0,
    ("gelu_tanh", np.float64, "grad"): lambda x: x < -2.0,
}


def _is_bad(case, dtype, kind, x):
    bad = KNOWN_BAD.get((case, dtype, kind))
    return bool(bad and bad(x))


@cache
def _ref_values(case: str, kind: str, xs: tuple) -> tuple:
    _, value, grad = REFS[case]
    fn = value if kind == "value" else grad
    return tuple(fn(mpf(x)) for x in xs)


def _compute(case, dtype, xs):
    params, _, _ = REFS[case]
    name = FUNCTION.get(case, case)
    x = np.array(xs, dtype)
    with np.errstate(all="ignore"):
        a = getattr(activations, name)(x, **params)
        g = activations.REGISTRY[name].backward(x.copy(), a.numpy().copy(), np.ones_like(x), **params)
    return a, g


def _errors(case, dtype, kind, select):
    xs = tuple(float(v) for v in np.array(POINTS[dtype], dtype) if select(float(v)))
    a, g = _compute(case, dtype, xs)
    got = a.numpy() if kind == "value" else g
    refs = _ref_values(case, kind, xs)
    return {x: ref.ulp_error(c, r, dtype) for x, c, r in zip(xs, got, refs)}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("case", sorted(REFS))
def test_value_within_a_few_ulps_of_mpmath(case, dtype):
    errs = _errors(case, dtype, "value", lambda x: not _is_bad(case, dtype, "value", x))
    worst = max(errs, key=errs.get)
    assert errs[worst] <= VALUE_ULPS[dtype], f"{case}({worst}) is {errs[worst]:.3g} ulps off"


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("case", sorted(REFS))
def test_derivative_within_a_few_ulps_of_mpmath(case, dtype):
    errs = _errors(case, dtype, "grad", lambda x: not _is_bad(case, dtype, "grad", x))
    worst = max(errs, key=errs.get)
    assert errs[worst] <= GRAD_ULPS[dtype], f"{case}'({worst}) is {errs[worst]:.3g} ulps off"


@pytest.mark.parametrize("case,x,kinds", [
    ("elu", -1e-10, "value grad"), ("elu", -1e-3, "value grad"), ("elu_alpha", -1e-10, "value grad"),
    ("softplus", 100.0, "value grad"), ("softplus", -100.0, "value grad"), ("sigmoid", 100.0, "value"),
    ("sigmoid", -100.0, "value grad"), ("silu", -40.0, "value grad"), ("gelu", -1.0, "value grad"),
    ("tanh", -1e-30, "value grad"), ("tanh", 40.0, "value"), ("gelu_tanh", -1.5, "value grad")])
def test_the_hard_points_are_in_the_main_tests(case, x, kinds):
    # The tests above must not have skipped the cancelling points of the functions that get them right.
    for dtype in DTYPES:
        assert x in POINTS[dtype]
        assert not any(_is_bad(case, dtype, kind, x) for kind in kinds.split())
    for x32 in (-10.0, -20.0, -40.0):  # float32 gelu for negative x: computed in float64, rounded once
        assert x32 in POINTS[np.float32] and not _is_bad("gelu", np.float32, "value", x32)


# --- where naive formulas fail, one test each (cancellation, rounded arguments, subnormals) -----------------------------------------------------------
def _region_errors(case, dtype, kind, region):
    """The errors at the points of a region where a naive formula fails (kept apart so that a
    regression there is named)."""
    errs = _errors(case, dtype, kind, region)
    assert errs, "no point in the region"
    return errs


def _known_bad_errors(case, dtype, kind):
    errs = _errors(case, dtype, kind, lambda x: _is_bad(case, dtype, kind, x))
    assert errs, "no point in the region"
    return errs


def test_gelu_float64_negative_x_within_a_few_ulps():
    errs = _region_errors("gelu", np.float64, "value", lambda x: x < -1.2)
    assert max(errs.values()) <= VALUE_ULPS[np.float64], errs


@pytest.mark.parametrize("kind", ["value", "grad"])
def test_gelu_tanh_form_negative_x_float64_within_its_argument_bound(kind):
    # float32 is within the usual ulps (the main tests); float64 within 4 + |v| ulps, v the exponent.
    errs = _known_bad_errors("gelu_tanh", np.float64, kind)
    for x, err in errs.items():
        v = abs(2 * math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))
        assert err <= 4 + v, (x, err, v)
    assert max(errs.values()) > 4  # the bound is needed: the points reach the limited region


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_sigmoid_derivative_positive_z_within_a_few_ulps(dtype):
    errs = _region_errors("sigmoid", dtype, "grad", lambda x: x > 2.0)
    assert max(errs.values()) <= GRAD_ULPS[dtype], errs


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_tanh_derivative_large_z_within_a_few_ulps(dtype):
    errs = _region_errors("tanh", dtype, "grad", lambda x: abs(x) > 1.2)
    assert max(errs.values()) <= GRAD_ULPS[dtype], errs


def test_silu_derivative_float64_large_z_within_a_few_ulps():
    errs = _errors("silu", np.float64, "grad", lambda x: 15.0 < x < 40.0)
    assert max(errs.values()) <= GRAD_ULPS[np.float64], errs


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("kind", ["value", "grad"])
def test_silu_with_subnormal_sigmoid_within_a_few_ulps(dtype, kind):
    errs = _errors("silu", dtype, kind, _subnormal_sigmoid(dtype))
    assert errs and max(errs.values()) <= (VALUE_ULPS if kind == "value" else GRAD_ULPS)[dtype], errs


def test_gelu_derivative_float64_subnormal_pdf_within_a_few_ulps():
    errs = _region_errors("gelu", np.float64, "grad", lambda x: x < -37.5)
    assert max(errs.values()) <= GRAD_ULPS[np.float64], errs


# --- softmax and log_softmax --------------------------------------------------------------------------
def _rows():
    big = 1e30
    return [
        np.array([0.0, 1e-30, -1e-30]),
        np.array([30.0, -30.0, 1.0, 2.0, 3.0]),
        np.array([1e4, 0.0, -1e4, 1e4 - 1.0]),          # huge spread: e^-1e4 and e^-2e4 terms
        np.array([big, -big, 0.0]),                        # spread 2e30
        np.array([88.0, -88.0, 0.5, 60.0]),                # exp(88) overflows float32 unshifted
        np.array([100.0, 100.0, 100.0 - 40.0]),            # ties at the max, a confident tail
        np.random.default_rng(0).normal(0, 5, 20),
    ]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_softmax_and_log_softmax_within_a_few_ulps(dtype):
    for row in _rows():
        z = row.astype(dtype)
        s, ls = activations.softmax(z), activations.log_softmax(z)
        assert ref.max_ulp_error(s, ref.softmax(z), dtype) <= VALUE_ULPS[dtype], z
        assert ref.max_ulp_error(ls, ref.log_softmax(z), dtype) <= VALUE_ULPS[dtype], z
        assert np.isfinite(ls.numpy()).all()  # never −inf for finite logits (naive log(p) is)


def test_log_softmax_with_a_huge_spread_keeps_the_tiny_terms():
    z = np.array([0.0, -1e4, -2e4], np.float64)
    out = activations.log_softmax(z).numpy()
    np.testing.assert_array_equal(out, [0.0, -1e4, -2e4])  # log1p(e^-1e4 + ...) is 0 in float64
    z = np.array([0.0, -40.0], np.float64)
    # log_softmax(z)_0 = −log1p(e^-40) = −4.25e-18: a naive log(softmax) rounds it to 0.
    assert activations.log_softmax(z).numpy()[0] == pytest.approx(-math.log1p(math.exp(-40.0)), rel=1e-15)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_axis(dtype, axis):
    z = np.random.default_rng(1).normal(0, 3, (3, 4)).astype(dtype)
    s = activations.softmax(z, axis=axis).numpy()
    ls = activations.log_softmax(z, axis=axis).numpy()
    moved = np.moveaxis(z, axis, -1)
    want = np.stack([[float(v) for v in ref.softmax(r)] for r in moved])
    want_log = np.stack([[float(v) for v in ref.log_softmax(r)] for r in moved])
    np.testing.assert_allclose(np.moveaxis(s, axis, -1), want, rtol=4 * np.finfo(dtype).eps)
    np.testing.assert_allclose(np.moveaxis(ls, axis, -1), want_log, rtol=4 * np.finfo(dtype).eps,
                               atol=4 * np.finfo(dtype).eps)


def _vjp_refs(name, z, g):
    p = [ref.softmax(r) for r in z]
    out = []
    for pr, gr in zip(p, g):
        gs = [mpf(float(v)) for v in gr]
        if name == "softmax":
            dot = mpmath.fsum(a * b for a, b in zip(pr, gs))
            out.append([a * (b - dot) for a, b in zip(pr, gs)])
        else:
            total = mpmath.fsum(gs)
            out.append([b - a * total for a, b in zip(pr, gs)])
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_vector_jacobian_products_against_mpmath(name, dtype):
    rng = np.random.default_rng(2)
    z = np.concatenate([rng.normal(0, 3, (4, 6)), [[1e4, 0, -1e4, 3, 2, 1]], [[50, 49, 0, -50, 1, 2]]])
    z, g = z.astype(dtype), rng.normal(size=(6, 6)).astype(dtype)
    a = getattr(activations, name)(z).numpy()
    got = activations.REGISTRY[name].backward(z, a, g)
    assert got.dtype == dtype and got.shape == z.shape
    for row_got, row_ref, grow in zip(got, _vjp_refs(name, z, g), g):
        # A sum of 6 products: measured in ulps of the largest term (|g|max), 8 ulps.
        scale = mpf(float(np.abs(grow).max()))
        errs = [ref.ulp_error(c, r, dtype, scale=scale) for c, r in zip(row_got, row_ref)]
        assert max(errs) <= 8.0, (name, row_got, errs)


# --- Keras' parameterised relu, by hand -------------------------------------------------------------------
X_RELU = np.array([-3.0, -1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 3.0, 6.0, 7.0])
RELU_CASES = [
    # kwargs, value, derivative (Keras: f = max_value above it; x on [threshold, max_value);
    # negative_slope·(x − threshold) below the threshold)
    ({}, [0, 0, 0, 0, 0.25, 0.5, 0.75, 1, 3, 6, 7], [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]),
    ({"max_value": 6.0}, [0, 0, 0, 0, 0.25, 0.5, 0.75, 1, 3, 6, 6], [0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0]),
    ({"negative_slope": 0.5}, [-1.5, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 3, 6, 7],
     [0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1, 1, 1, 1]),
    ({"threshold": 0.5}, [0, 0, 0, 0, 0, 0, 0.75, 1, 3, 6, 7], [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]),
    ({"negative_slope": 0.5, "max_value": 6.0, "threshold": 1.0},
     [-2, -1, -0.75, -0.5, -0.375, -0.25, -0.125, 0, 3, 6, 6],
     [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1, 0, 0]),
    ({"max_value": 0.5, "negative_slope": 0.25}, [-0.75, -0.25, -0.125, 0, 0.25, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
     [0.25, 0.25, 0.25, 0.25, 1, 0, 0, 0, 0, 0, 0]),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("kw,value,deriv", RELU_CASES, ids=[str(c[0]) for c in RELU_CASES])
def test_parameterised_relu_by_hand(kw, value, deriv, dtype):
    x = X_RELU.astype(dtype)
    a = activations.relu(x, **kw)
    assert a.dtype == dtype
    np.testing.assert_array_equal(a.numpy(), value)  # binary fractions: exact
    g = activations.REGISTRY["relu"].backward(x, a.numpy(), np.full_like(x, 2.0), **kw)
    np.testing.assert_array_equal(g, 2 * np.array(deriv))


def test_relu_negative_threshold_as_keras():
    x = np.array([-2.0, -0.5, 0.5], np.float32)
    np.testing.assert_array_equal(activations.relu(x, threshold=-1.0).numpy(), [0.0, -0.5, 0.5])
    g = activations.REGISTRY["relu"].backward(x, x, np.ones_like(x), threshold=-1.0)
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0])
    # With a max_value Keras also clips below at 0: (−1, 0] gives 0 there, with derivative 0.
    np.testing.assert_array_equal(activations.relu(x, threshold=-1.0, max_value=6.0).numpy(), [0.0, 0.0, 0.5])
    g = activations.REGISTRY["relu"].backward(x, x, np.ones_like(x), threshold=-1.0, max_value=6.0)
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0])


def test_tensorflow_functions_stand_for_their_activations():
    import logitnet.tf as tf

    for fn, name in ((tf.nn.relu, "relu"), (tf.nn.sigmoid, "sigmoid"), (tf.nn.softmax, "softmax"),
                     (tf.nn.tanh, "tanh"), (tf.math.sigmoid, "sigmoid"), (tf.nn.swish, "silu")):
        assert activations.name_of(fn) == name
        assert activations.get(fn) is getattr(activations, name)


def test_leaky_relu_and_elu_by_hand():
    x = np.array([-2.0, -0.0, 0.0, 3.0], np.float32)
    np.testing.assert_array_equal(activations.leaky_relu(x).numpy(), np.float32([-0.4, 0, 0, 3]))
    np.testing.assert_array_equal(activations.leaky_relu(x, negative_slope=0.5).numpy(), [-1, 0, 0, 3])
    # elu near 0 is expm1: α·(e^x − 1) for x = −1e-10 is −1e-10·(1 − 5e-11); exp(x) − 1 would give
    # −1.00000008e-10 (float64 spacing at 1 is 2.2e-16).
    e = activations.elu(np.array([-1e-10]), alpha=1.0).numpy()[0]
    assert e == pytest.approx(-1e-10 + 5e-21, rel=1e-15)
    assert activations.elu(np.array([-1e-10]), alpha=2.0).numpy()[0] == pytest.approx(2 * e, rel=1e-15)


def test_extremes_are_exact_where_naive_forms_fail():
    assert activations.sigmoid(np.float32([-100.0])).numpy()[0] == np.float32(math.exp(-100.0))
    assert activations.sigmoid(np.float32([100.0])).numpy()[0] == 1.0
    assert activations.softplus(np.float32([100.0])).numpy()[0] == 100.0
    assert activations.softplus(np.float32([-100.0])).numpy()[0] == np.float32(math.exp(-100.0))
    assert activations.softplus(np.array([1000.0])).numpy()[0] == 1000.0  # log(1 + e^1000) overflows
    # gelu(−10) = −10·Φ(−10) = −7.6e-23; 0.5·x·(1 + erf(x/√2)) gives 0 or noise.
    want = float(REFS["gelu"][1](mpf(-10.0)))
    assert activations.gelu(np.float32([-10.0])).numpy()[0] == pytest.approx(want, rel=1e-6)
    assert activations.gelu(np.array([-10.0])).numpy()[0] == pytest.approx(want, rel=1e-13)


# --- derivatives against float64 central differences ----------------------------------------------------
SMOOTH = np.array([-3.1, -1.7, -0.61, -0.3, 0.21, 0.7, 1.3, 2.6])  # off every kink below
FD_CASES = [
    ("linear", {}), ("relu", {}), ("relu", {"negative_slope": 0.1, "max_value": 2.0, "threshold": 0.5}),
    ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.05}), ("elu", {}), ("elu", {"alpha": 1.7}),
    ("gelu", {}), ("gelu", {"approximate": True}), ("sigmoid", {}), ("softplus", {}), ("silu", {}),
    ("tanh", {}),
]


@pytest.mark.parametrize("name,kw", FD_CASES, ids=[f"{n}-{k}" for n, k in FD_CASES])
def test_derivative_matches_central_differences(name, kw):
    x, h = SMOOTH, 1e-6
    f = activations.REGISTRY[name].forward
    numeric = (f(x + h, **kw) - f(x - h, **kw)) / (2 * h)
    g = np.random.default_rng(3).normal(size=x.shape)
    got = activations.REGISTRY[name].backward(x, f(x, **kw), g, **kw)
    np.testing.assert_allclose(got, g * numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_vjp_matches_central_differences(name, axis):
    rng = np.random.default_rng(4)
    z, g = rng.normal(0, 2, (3, 5)), rng.normal(size=(3, 5))
    f = activations.REGISTRY[name].forward
    got = activations.REGISTRY[name].backward(z, f(z, axis=axis), g, axis=axis)
    h, numeric = 1e-6, np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = ((f(up, axis=axis) - f(down, axis=axis)) * g).sum() / (2 * h)
    np.testing.assert_allclose(got, numeric, rtol=1e-7, atol=1e-9)


# --- Keras side by side ----------------------------------------------------------------------------------
def _keras_values(keras, fn, x, **kw):
    return keras.ops.convert_to_numpy(fn(x, **kw))


KERAS_CASES = [
    ("relu", {}), ("relu", {"negative_slope": 0.1}), ("relu", {"max_value": 6.0}), ("relu", {"threshold": 0.5}),
    ("relu", {"negative_slope": 0.1, "max_value": 6.0, "threshold": 0.5}),
    ("relu", {"max_value": 3.0, "threshold": 5.0}),
    ("relu", {"negative_slope": 0.2, "max_value": 4.0, "threshold": -1.0}),
    ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.05}), ("elu", {}), ("elu", {"alpha": 0.5}),
    ("gelu", {}), ("gelu", {"approximate": True}), ("silu", {}), ("softplus", {}), ("sigmoid", {}),
    ("tanh", {}), ("linear", {}), ("softmax", {}), ("log_softmax", {}),
]


@pytest.mark.compare
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' torch backend and NumPy 2
@pytest.mark.parametrize("name,kw", KERAS_CASES, ids=[f"{n}-{k}" for n, k in KERAS_CASES])
def test_matches_keras_activations(name, kw):
    keras = need("keras")
    x = np.concatenate([np.linspace(-8, 8, 65), [-0.5, 0.5, 6.0, -1.0, 1e-3, -1e-3, 30.0]]).astype(np.float32)
    got = getattr(activations, name)(x, **kw).numpy()
    want = _keras_values(keras, getattr(keras.activations, name), x, **kw)
    assert got.dtype == np.float32
    # float32: both within ~1 ulp of the truth where Keras' formula holds (rtol 2e-6 ≈ 16 ulps of slack
    # for Keras' own rounding); atol 1e-6 covers Keras' erf-based gelu rounding tiny negative values.
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-6)


@pytest.mark.compare
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_relu_negative_threshold_matches_keras():
    keras = need("keras")
    x = np.linspace(-3, 3, 25).astype(np.float32)
    np.testing.assert_allclose(activations.relu(x, threshold=-1.0).numpy(),
                               _keras_values(keras, keras.activations.relu, x, threshold=-1.0), rtol=1e-6)


# --- the registry: get / name_of / serialize / deserialize --------------------------------------------------
NAMES = ["linear", "relu", "leaky_relu", "elu", "gelu", "sigmoid", "softplus", "silu", "tanh", "softmax",
         "log_softmax"]


@pytest.mark.parametrize("name", NAMES)
def test_get_by_name_and_function_round_trip(name):
    fn = activations.get(name)
    assert fn is getattr(activations, name)
    assert fn.__name__ == name
    assert activations.get(fn) is fn
    assert activations.name_of(fn) == name == activations.serialize(fn) == activations.serialize(name)
    assert activations.deserialize(activations.serialize(fn)) is fn
    assert name in activations.REGISTRY


def test_none_and_aliases():
    assert activations.get(None) is activations.linear
    assert activations.serialize(None) == "linear"
    assert activations.get("swish") is activations.silu
    assert activations.swish is activations.silu
    assert activations.name_of("swish") == "silu" == activations.serialize(activations.swish)
    assert activations.deserialize("swish") is activations.silu
    assert set(activations.HIDDEN) == set(NAMES) - {"softmax", "log_softmax"}


@pytest.mark.parametrize("bad", ["relu6", "ReLU", "soft_max", "", 3, 1.5])
def test_unknown_name_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match=re.escape(f"unknown activation {bad!r}")):
        activations.get(bad)
    with pytest.raises(ValueError, match="expected one of"):
        activations.deserialize(bad) if isinstance(bad, str) else activations.serialize(bad)


def test_unknown_function_is_refused_naming_it():
    def my_activation(x):
        return x

    for fn, shown in [(my_activation, "my_activation"), (np.tanh, "tanh"), (math.exp, "exp")]:
        with pytest.raises(ValueError, match=f"'{shown}' is a function logitnet does not know"):
            activations.get(fn)
        with pytest.raises(ValueError, match="derivative"):
            activations.serialize(fn)


# --- types: Tensor outputs, int input as floatx ----------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_outputs_are_tensors_answering_numpy(name):
    x = np.array([[-1.5, 0.0, 2.0]], np.float64)
    out = getattr(activations, name)(x)
    assert isinstance(out, Tensor)
    arr = out.numpy()
    assert type(arr) is np.ndarray and arr.dtype == np.float64 and arr.shape == (1, 3)
    np.testing.assert_array_equal(arr, activations.REGISTRY[name].forward(x))
    out32 = getattr(activations, name)(x.astype(np.float32))
    assert out32.dtype == np.float32


@pytest.fixture
def floatx64():
    old = backend.floatx()
    backend.set_floatx("float64")
    yield
    backend.set_floatx(old)


@pytest.mark.parametrize("name", NAMES)
def test_int_and_bool_input_become_floatx(name):
    for x in (np.array([[-2, 0, 3]]), [[-2, 0, 3]], np.array([[True, False, True]])):
        out = getattr(activations, name)(x)
        assert out.dtype == np.float32
        want = activations.REGISTRY[name].forward(np.asarray(x).astype(np.float32))
        np.testing.assert_array_equal(out.numpy(), want)


@pytest.mark.usefixtures("floatx64")
def test_int_input_follows_set_floatx():
    out = activations.sigmoid(np.array([-40, 0, 40]))
    assert out.dtype == np.float64
    assert out.numpy()[0] == pytest.approx(math.exp(-40) / (1 + math.exp(-40)), rel=1e-15)


def test_non_numbers_are_refused():
    with pytest.raises(ValueError, match="takes numbers"):
        activations.relu(np.array(["a", "b"]))


@pytest.mark.parametrize("name", sorted(activations.REGISTRY))
def test_values_and_derivatives_keep_float32(name):
    z = np.array([[-50.0, -2.5, 0.0, 0.7, 3.0]], np.float32)
    a = activations.forward(name, z)
    g = activations.backward(name, z, a, np.ones_like(z))
    assert a.dtype == np.float32 and g.dtype == np.float32, (a.dtype, g.dtype)


def test_parameters_reach_the_formulas_through_the_registry():
    z = np.array([-2.0, 0.0, 3.0, 8.0])
    np.testing.assert_array_equal(activations.forward("leaky_relu", z, negative_slope=0.5), [-1.0, 0.0, 3.0, 8.0])
    np.testing.assert_array_equal(activations.backward("leaky_relu", z, z, np.ones(4), negative_slope=0.5),
                                  [0.5, 0.5, 1.0, 1.0])
    # relu6's derivative at its kinks is 0, as TensorFlow's: at 0 and at the cap.
    np.testing.assert_array_equal(activations.backward("relu", z, z, np.ones(4), max_value=6.0), [0.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(activations.backward("relu", np.array([0.0, 6.0]), None, np.ones(2), max_value=6.0),
                                  [0.0, 0.0])


def test_unknown_activations_are_refused_with_the_names_known():
    known = ("linear, relu, leaky_relu, elu, gelu, sigmoid, softplus, silu, tanh, softmax, log_softmax").split(", ")
    with pytest.raises(ValueError, match=r"^unknown activation 'mish'; expected one of \[") as err:
        activations.get("mish")
    assert str(sorted({*known, "swish"})) in str(err.value)

    def my_softmax(z):
        return z

    with pytest.raises(ValueError) as err:
        activations.get(my_softmax)
    assert str(err.value) == (
        "activation 'my_softmax' is a function logitnet does not know: a layer needs each activation's "
        f"derivative, so use a name or a function from logitnet.activations ({', '.join(sorted(known))})")
