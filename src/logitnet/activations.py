"""Activation functions, as Keras' `keras.activations`: `relu(x)`, `softmax(x)`, ...

Each public function takes an array (or anything array-like) and returns a `Tensor` (an
ndarray that also answers `.numpy()`), so course code that calls `relu(z).numpy()` runs.
Beside each function, in one registry, is its derivative, which hidden layers use in training;
an output softmax or sigmoid is fused with its loss by the model's head (`head.py`) instead.
softmax, log_softmax, sigmoid and softplus are the exact ones of `logitnet.ops`.

Layers hold an activation by its name (files store names); `get` turns a name or one of
these functions into the function, `name_of` into its name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from . import backend, ops
from .ops._core import two_prod
from .tensor import Tensor, plain

_ZERO = np.zeros((), np.float32)  # a 0-d array: NumPy handles it faster than the Python scalar 0
_SQRT_HALF = math.sqrt(0.5)
_SQRT_HALF_LO = -4.833646656726457e-17  # √½ − _SQRT_HALF (mpmath)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_PI = math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = math.sqrt(2.0 / math.pi)
_erfc = np.frompyfunc(math.erfc, 1, 1)  # NumPy has no erfc; libm's is correctly rounded to ~1 ulp


class _Spec(NamedTuple):
    """forward (z, **params) -> a and backward (z, a, dL/da, **params) -> dL/dz, on plain arrays."""

    forward: Callable[..., np.ndarray]
    backward: Callable[..., np.ndarray]


# --- the formulas, on plain arrays ----------------------------------------------------------
def _linear(z: np.ndarray) -> np.ndarray:
    return z


def _linear_grad(z: np.ndarray, a: np.ndarray, g: np.ndarray) -> np.ndarray:
    return g


def _relu(z: np.ndarray, negative_slope: float = 0.0, max_value: float | None = None,
          threshold: float = 0.0) -> np.ndarray:
    if negative_slope == 0 and max_value is None and threshold == 0:
        return np.maximum(z, _ZERO.astype(z.dtype))
    dt = z.dtype
    # Keras: above the threshold x (clipped to [0, max_value] when there is one); below it slope·(x − threshold).
    above = np.clip(z, 0, max_value) if max_value is not None else z
    below = dt.type(negative_slope) * (z - dt.type(threshold))
    return np.where(z > threshold, above, below).astype(dt, copy=False)


def _relu_grad(z: np.ndarray, a: np.ndarray, g: np.ndarray, negative_slope: float = 0.0,
               max_value: float | None = None, threshold: float = 0.0) -> np.ndarray:
    zero = np.zeros((), g.dtype)
    if negative_slope == 0 and max_value is None and threshold == 0:
        return np.where(z > 0, g, zero)
    passes = z > threshold
    if max_value is not None:
        passes = passes & (z > 0) & (z < max_value)
    return np.where(passes, g, np.where(z > threshold, zero, g * g.dtype.type(negative_slope)))


def _leaky_relu(z: np.ndarray, negative_slope: float = 0.2) -> np.ndarray:
    return np.where(z >= 0, z, z * z.dtype.type(negative_slope))


def _leaky_relu_grad(z: np.ndarray, a: np.ndarray, g: np.ndarray, negative_slope: float = 0.2) -> np.ndarray:
    return np.where(z > 0, g, g * g.dtype.type(negative_slope))


def _elu(z: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.where(z > 0, z, z.dtype.type(alpha) * np.expm1(np.minimum(z, 0)))


def _elu_grad(z: np.ndarray, a: np.ndarray, g: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    return np.where(z > 0, g, g * (g.dtype.type(alpha) * np.exp(np.minimum(z, 0))))


def _gelu_far_left(x: np.ndarray) -> np.ndarray:
    """x·Φ(x) for float64 x < −36, where Φ(x) = erfc(t)/2 (t = −x/√2 > 25) would be subnormal
    before x scales it: erfc(t) = e^(−t²)·erfcx(t), erfcx from its asymptotic series (ten terms
    reach 1e-17 at t > 25), e^(−t²) with t² exact and taken in two halves."""
    t, t_err = two_prod(-x, _SQRT_HALF)
    t_err = t_err - x * _SQRT_HALF_LO
    sq, sq_err = two_prod(t, t)
    sq_err = sq_err + 2.0 * t * t_err
    inv = 1.0 / (2.0 * sq)
    series, term = np.ones_like(x), np.ones_like(x)
    for k in range(1, 10):
        term = -term * (2 * k - 1) * inv
        series = series + term
    erfcx = series / ((t + t_err) * _SQRT_PI)
    half = np.exp(-0.5 * sq) * (1.0 - 0.5 * sq_err)
    return ((0.5 * x * erfcx) * half) * half


def _erfc_scaled_arg(x: np.ndarray) -> np.ndarray:
    """erfc(−x/√2) for float64 x, the argument's rounding corrected to first order: erfc's
    condition number is about x², so erfc(fl(−x·√½)) alone loses ~log2(x²) bits for negative x."""
    t, t_err = two_prod(-x, _SQRT_HALF)
    t_err = t_err - x * _SQRT_HALF_LO
    return _erfc(t).astype(np.float64) - t_err * _TWO_OVER_SQRT_PI * np.exp(-t * t)


def _x_exp_neg_half_square(x: np.ndarray) -> np.ndarray:
    """x·exp(−x²/2) for float64 x, exactly rounded in effect: x² as an exact hi + lo, and the
    exponential taken in two halves so that x scales a normal number even where the result is subnormal."""
    sq, sq_err = two_prod(x, x)
    half = np.exp(-0.25 * sq) * (1.0 - 0.25 * sq_err)
    return (x * half) * half


def _gelu(z: np.ndarray, approximate: bool = False) -> np.ndarray:
    x = z.astype(np.float64)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if approximate:  # 0.5·x·(1 + tanh(u)) = x·σ(2u): no cancellation for negative x
            out = x * ops.sigmoid(2.0 * _GELU_C * (x + 0.044715 * x**3))
        else:  # x·Φ(x) with Φ(x) = erfc(−x/√2)/2: no cancellation for negative x
            out = 0.5 * x * _erfc_scaled_arg(x)
            far = x < -36.0
            if far.any():
                out[far] = _gelu_far_left(x[far])
    return out.astype(z.dtype)


def _gelu_grad(z: np.ndarray, a: np.ndarray, g: np.ndarray, approximate: bool = False) -> np.ndarray:
    x = z.astype(np.float64)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if approximate:  # d/dx x·σ(v), v = 2u: σ(v) + x·σ(v)·σ(−v)·v'
            v = 2.0 * _GELU_C * (x + 0.044715 * x**3)
            s, s_neg = ops.sigmoid(v), ops.sigmoid(-v)
            d = s + x * s * s_neg * (2.0 * _GELU_C * (1 + 3 * 0.044715 * x * x))
        else:  # Φ(x) + x·φ(x)
            d = 0.5 * _erfc_scaled_arg(x) + _INV_SQRT_2PI * _x_exp_neg_half_square(x)
    return (g * d).astype(g.dtype)


def _sigmoid_grad(z: np.ndarray, a: np.ndarray, g: np.ndarray) -> np.ndarray:
    return g * (a * ops.sigmoid(-z))  # σ(z)·σ(−z): 1 − a would cancel for large z


def _softplus_grad(z: np.ndarray, a: np.ndarray, g: np.ndarray) -> np.ndarray:
    return g * ops.sigmoid(z)


def _silu(z: np.ndarray) -> np.ndarray:
    x = z.astype(np.float64)
    with np.errstate(under="ignore"):
        # For z < −40, σ(z) = e^z to float64 precision; z·e^(z/2)·e^(z/2) keeps every bit where
        # e^z alone is subnormal (z < −708) but z·e^z is not yet.
        half = np.exp(0.5 * np.minimum(x, 0.0))
        out = np.where(x < -40.0, (x * half) * half, x * ops.sigmoid(x))
    return out.astype(z.dtype)


def _silu_grad(z: np.ndarray, a: np.ndarray, g: np.ndarray) -> np.ndarray:
    x = z.astype(np.float64)
    with np.errstate(under="ignore"):
        s, s_neg = ops.sigmoid(x), ops.sigmoid(-x)
        half = np.exp(0.5 * np.minimum(x, 0.0))
        # σ(z)·(1 + z·σ(−z)), with σ(−z) for 1 − σ(z); below −40 it is (1 + z)·e^z, taken in halves.
        d = np.where(x < -40.0, ((1.0 + x) * half) * half, s * (1.0 + x * s_neg))
    return (g * d).astype(g.dtype)


def _tanh_grad(z: np.ndarray, a: np.ndarray, g: np.ndarray) -> np.ndarray:
    # 1 − tanh²(z) = 4t / (1 + t)² with t = e^(−2|z|): 1 − a² would cancel for |z| > 1.
    t = np.exp(-2.0 * np.abs(z))
    return g * (4 * t / ((1 + t) * (1 + t)))


def _softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    return ops.softmax(z, axis=axis)


def _softmax_grad(z: np.ndarray, a: np.ndarray, g: np.ndarray, axis: int = -1) -> np.ndarray:
    return a * (g - (g * a).sum(axis=axis, keepdims=True))


def _log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    return ops.log_softmax(z, axis=axis)


def _log_softmax_grad(z: np.ndarray, a: np.ndarray, g: np.ndarray, axis: int = -1) -> np.ndarray:
    return g - ops.softmax(z, axis=axis) * g.sum(axis=axis, keepdims=True)


# name -> formulas. Shapes: any; softmax and log_softmax reduce `axis`.
REGISTRY: dict[str, _Spec] = {
    "linear": _Spec(_linear, _linear_grad),
    "relu": _Spec(_relu, _relu_grad),
    "leaky_relu": _Spec(_leaky_relu, _leaky_relu_grad),
    "elu": _Spec(_elu, _elu_grad),
    "gelu": _Spec(_gelu, _gelu_grad),
    "sigmoid": _Spec(ops.sigmoid, _sigmoid_grad),
    "softplus": _Spec(ops.softplus, _softplus_grad),
    "silu": _Spec(_silu, _silu_grad),
    "tanh": _Spec(np.tanh, _tanh_grad),
    "softmax": _Spec(_softmax, _softmax_grad),
    "log_softmax": _Spec(_log_softmax, _log_softmax_grad),
}
_ALIASES = {"swish": "silu"}  # Keras' own alias
# The activations a hidden layer may take by name (the CLI and the estimator offer these).
HIDDEN = tuple(name for name in REGISTRY if name not in ("softmax", "log_softmax"))


# --- the public functions (Keras' names and arguments) --------------------------------------
def _values(x: object) -> np.ndarray:
    arr = plain(x)
    if arr.dtype.kind not in "f":
        if arr.dtype.kind not in "biu":
            raise ValueError(f"an activation takes numbers, got dtype {arr.dtype}")
        arr = arr.astype(backend.floatx())
    return arr


def _apply(name: str, x: object, **params: Any) -> Tensor:
    return np.asarray(REGISTRY[name].forward(_values(x), **params)).view(Tensor)


def linear(x: object) -> Tensor:
    """The identity: returns x unchanged (as a Tensor)."""
    return _apply("linear", x)


def relu(x: object, negative_slope: float = 0.0, max_value: float | None = None, threshold: float = 0.0) -> Tensor:
    """max(x, 0); with Keras' options, slope·(x − threshold) below `threshold` and at most `max_value`."""
    return _apply("relu", x, negative_slope=negative_slope, max_value=max_value, threshold=threshold)


def leaky_relu(x: object, negative_slope: float = 0.2) -> Tensor:
    """x for x >= 0, negative_slope·x below."""
    return _apply("leaky_relu", x, negative_slope=negative_slope)


def elu(x: object, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha·(exp(x) − 1) below (computed with expm1)."""
    return _apply("elu", x, alpha=alpha)


def gelu(x: object, approximate: bool = False) -> Tensor:
    """x·Φ(x), Φ the standard normal CDF (erfc-based, exact for negative x); or Keras' tanh form."""
    return _apply("gelu", x, approximate=bool(approximate))


def sigmoid(x: object) -> Tensor:
    """1 / (1 + exp(−x)), exact for every x (logitnet.ops.sigmoid)."""
    return _apply("sigmoid", x)


def softplus(x: object) -> Tensor:
    """log(1 + exp(x)), exact for every x (logitnet.ops.softplus)."""
    return _apply("softplus", x)


def silu(x: object) -> Tensor:
    """x·sigmoid(x) (also called swish)."""
    return _apply("silu", x)


swish = silu


def tanh(x: object) -> Tensor:
    """The hyperbolic tangent."""
    return _apply("tanh", x)


def softmax(x: object, axis: int = -1) -> Tensor:
    """exp(x) / Σ exp(x) over `axis`, exact (logitnet.ops.softmax)."""
    return _apply("softmax", x, axis=axis)


def log_softmax(x: object, axis: int = -1) -> Tensor:
    """log(softmax(x)) over `axis`, exact and never −inf for a finite x (logitnet.ops.log_softmax)."""
    return _apply("log_softmax", x, axis=axis)


_PUBLIC: dict[str, Callable[..., Tensor]] = {
    "linear": linear, "relu": relu, "leaky_relu": leaky_relu, "elu": elu, "gelu": gelu,
    "sigmoid": sigmoid, "softplus": softplus, "silu": silu, "tanh": tanh, "softmax": softmax,
    "log_softmax": log_softmax,
}
_BY_FUNCTION = {id(fn): name for name, fn in _PUBLIC.items()}


# --- lookup -----------------------------------------------------------------------------------
def name_of(identifier: object) -> str:
    """The registry name for a Keras activation identifier: None ('linear'), a name, one of
    these functions, or another logitnet function that stands for one (`tf.nn.relu`)."""
    if identifier is None:
        return "linear"
    if isinstance(identifier, str):
        name = _ALIASES.get(identifier, identifier)
        if name in REGISTRY:
            return name
    elif callable(identifier):
        name = _BY_FUNCTION.get(id(identifier)) or getattr(identifier, "_logitnet_activation", None)
        if name in REGISTRY:
            return name
        raise ValueError(
            f"activation {getattr(identifier, '__name__', identifier)!r} is a function logitnet does not "
            "know: a layer needs each activation's derivative, so use a name or a function from "
            f"logitnet.activations ({', '.join(sorted(_PUBLIC))})")
    raise ValueError(f"unknown activation {identifier!r}; expected one of "
                     f"{sorted(set(REGISTRY) | set(_ALIASES))}, a function of logitnet.activations, or None")


def get(identifier: object) -> Callable[..., Tensor]:
    """The activation function for a name, a function or None (Keras' `activations.get`)."""
    return _PUBLIC[name_of(identifier)]


def serialize(activation: object) -> str:
    """The name a file stores for an activation (Keras' `activations.serialize`)."""
    return name_of(activation)


def deserialize(name: str) -> Callable[..., Tensor]:
    """The activation function stored under `name`."""
    return get(name)


def forward(name: str, z: np.ndarray, **params: Any) -> np.ndarray:
    """The activation `name` applied to the plain array z (any shape) -> same shape."""
    return REGISTRY[name].forward(z, **params)


def backward(name: str, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray, **params: Any) -> np.ndarray:
    """dL/dz (z's shape) from dL/da, given z and a = activation(z)."""
    return REGISTRY[name].backward(z, a, grad_a, **params)
