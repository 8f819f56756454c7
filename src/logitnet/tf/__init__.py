"""The TensorFlow names that course code uses, on logitnet: `import logitnet.tf as tf`.

`tf.keras` is logitnet itself (`tf.keras.layers.Dense`, `tf.keras.losses...`, `tf.keras.Sequential`);
`tf.nn` has the exact softmax, sigmoid and cross-entropies from logits; `tf.random.set_seed`,
`tf.constant`, `tf.convert_to_tensor`, and the logging switches notebooks call first. Results are
`Tensor`s: NumPy arrays that also answer `.numpy()`. Importing this never imports TensorFlow.
"""

from __future__ import annotations

import logging
import types

import numpy as np

import logitnet as keras

from .. import backend
from ..tensor import Tensor, TensorShape, tensor
from . import nn

float16, float32, float64 = np.float16, np.float32, np.float64
int8, int32, int64, bool_ = np.int8, np.int32, np.int64, np.bool_


def _set_seed(seed: int) -> None:
    """TensorFlow's global seed: models, layers and fits created afterwards without a seed are
    reproducible (logitnet's global seed sequence, see `logitnet.backend`)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"tf.random.set_seed expects an integer seed, got {seed!r}")
    backend.set_global_seed(int(seed))


random = types.SimpleNamespace(set_seed=_set_seed)


def _set_verbosity(level: int, alsologtostdout: bool = False) -> None:
    """Accepted for course code (`tf.autograph.set_verbosity(0)`); logitnet has no autograph and
    nothing here to configure."""


autograph = types.SimpleNamespace(set_verbosity=_set_verbosity)


def get_logger() -> logging.Logger:
    """A standard-library logger ('logitnet'), so `tf.get_logger().setLevel('ERROR')` works;
    logitnet logs nothing through it today, so there is nothing to configure."""
    return logging.getLogger("logitnet")


def _dtype(dtype: object | None) -> np.dtype | None:
    return None if dtype is None else np.dtype(getattr(dtype, "as_numpy_dtype", dtype))


def constant(value: object, dtype: object | None = None, shape: tuple | None = None, name: str | None = None) -> Tensor:
    """`value` as a Tensor; Python floats become float32 and ints int32, as in TensorFlow."""
    arr = np.asarray(value)
    if dtype is None and not isinstance(value, np.ndarray):
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        elif arr.dtype == np.int64:
            arr = arr.astype(np.int32)
    out = arr.astype(_dtype(dtype)) if dtype is not None else arr.copy()
    if shape is not None:
        out = np.broadcast_to(out, tuple(shape)).copy() if out.size == 1 else out.reshape(tuple(shape))
    return out.view(Tensor)


def convert_to_tensor(value: object, dtype: object | None = None, name: str | None = None) -> Tensor:
    """`value` as a Tensor (no copy when it already is an array of that dtype)."""
    if isinstance(value, np.ndarray):
        return tensor(value, _dtype(dtype))
    return constant(value, dtype)


def where(condition: object, x: object = None, y: object = None, name: str | None = None) -> Tensor:
    """Elements of x where `condition` holds, else of y (TensorFlow's tf.where with x and y);
    with neither, the indices (k, rank) where it holds."""
    cond = np.asarray(condition, dtype=bool)
    if x is None and y is None:
        return np.argwhere(cond).view(Tensor)
    if x is None or y is None:
        raise ValueError("tf.where takes both x and y, or neither")
    return np.asarray(np.where(cond, x, y)).view(Tensor)


def cast(x: object, dtype: object, name: str | None = None) -> Tensor:
    """x converted to `dtype`."""
    return np.asarray(x).astype(_dtype(dtype)).view(Tensor)


def _reduce(op):  # TensorFlow's reduce_* take axis and keepdims, as NumPy does
    def reduce(input_tensor: object, axis: int | None = None, keepdims: bool = False, name: str | None = None) -> Tensor:
        return np.asarray(op(np.asarray(input_tensor), axis=axis, keepdims=keepdims)).view(Tensor)

    reduce.__name__ = reduce.__qualname__ = f"reduce_{op.__name__}"
    reduce.__doc__ = f"np.{op.__name__} over `axis` (all axes by default), as a Tensor."
    return reduce


reduce_sum, reduce_mean, reduce_max, reduce_min = (_reduce(op) for op in (np.sum, np.mean, np.max, np.min))


def argmax(input: object, axis: int = 0, output_type: object = np.int64, name: str | None = None) -> Tensor:  # noqa: A002
    """Indices of the largest values along `axis` (TensorFlow's default axis is 0)."""
    return np.asarray(np.argmax(np.asarray(input), axis=axis)).astype(_dtype(output_type)).view(Tensor)


def _elementwise(fn, doc: str):
    def op(x: object, name: str | None = None) -> Tensor:
        return np.asarray(fn(np.asarray(x))).view(Tensor)

    op.__name__ = op.__qualname__ = fn.__name__
    op.__doc__ = doc
    return op


math = types.SimpleNamespace(
    sigmoid=nn.sigmoid, softmax=nn.softmax, log_softmax=nn.log_softmax, tanh=nn.tanh, softplus=nn.softplus,
    exp=_elementwise(np.exp, "exp(x), element-wise."), log=_elementwise(np.log, "log(x), element-wise."),
    abs=_elementwise(np.abs, "|x|, element-wise."), square=_elementwise(np.square, "x², element-wise."),
    sqrt=_elementwise(np.sqrt, "√x, element-wise."), reduce_sum=reduce_sum, reduce_mean=reduce_mean,
    reduce_max=reduce_max, reduce_min=reduce_min, argmax=argmax,
)
sigmoid, exp, log = math.sigmoid, math.exp, math.log


__all__ = ["Tensor", "TensorShape", "argmax", "autograph", "cast", "constant", "convert_to_tensor", "exp", "float16",
           "float32", "float64", "get_logger", "int32", "int64", "keras", "log", "math", "nn", "random",
           "reduce_max", "reduce_mean", "reduce_min", "reduce_sum", "sigmoid", "where"]
