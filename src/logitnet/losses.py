"""Keras-compatible losses: the cross-entropies, exact from logits and honest from probabilities,
and the regression losses (mean squared error, mean absolute error, Huber).

Names, arguments and defaults follow Keras 3. Differences, each on the side of accuracy:
- from logits nothing is clipped: a confident correct prediction has a tiny loss, not 0;
- from probabilities log(p) is taken as given (Keras clips p to [1e-7, 1 − 1e-7] and rescales
  rows to sum to 1): a probability of 0 for the true class gives inf, with a warning;
- `dtype=None` computes in the inputs' float dtype (float64 stays float64);
- the regression losses work in float64 and round once to y_pred's dtype (Keras first rounds
  y_true to y_pred's dtype, then rounds at every operation); `Huber.get_config()` keeps `delta`.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np

from .ops._core import as_float_array
from .ops.probs import binary_cross_entropy_from_probs, cross_entropy_from_probs
from .ops.sigmoid import binary_cross_entropy as _bce_from_logits
from .ops.softmax_xent import softmax_cross_entropy

REDUCTIONS = ("sum", "sum_over_batch_size", "mean", "mean_with_sample_weight", "none", None)


def _smoothing(label_smoothing: float) -> float:
    ls = float(label_smoothing)
    if not 0.0 <= ls <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    return ls


def smooth_categorical(y: np.ndarray, label_smoothing: float, n_classes: int) -> np.ndarray:
    """Keras' label smoothing for class rows (n, C): y·(1 − ls) + ls / C."""
    return y.astype(np.float64) * (1.0 - label_smoothing) + label_smoothing / n_classes


def smooth_binary(y: np.ndarray, label_smoothing: float) -> np.ndarray:
    """Keras' label smoothing for 0/1 targets: y·(1 − ls) + ls / 2."""
    return y * (1.0 - label_smoothing) + 0.5 * label_smoothing


def _pred(y_pred: object, dtype: str | None) -> np.ndarray:
    p = as_float_array(y_pred, "y_pred")
    return p if dtype is None else p.astype(dtype)


def _same_rank(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Targets (n,) for predictions (n, 1) and the reverse, as Keras accepts."""
    if y.ndim == pred.ndim - 1 and pred.shape[-1:] == (1,):
        return y[..., None]
    if y.ndim == pred.ndim + 1 and y.shape[-1:] == (1,):
        return y[..., 0]
    return y


def binary_crossentropy(
    y_true: object,
    y_pred: object,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    *,
    dtype: str | None = None,
) -> np.ndarray:
    """Binary cross-entropy, averaged over `axis`: y (n, L), y_pred (n, L) -> (n,)."""
    pred = _pred(y_pred, dtype)
    y = _same_rank(np.asarray(y_true, dtype=np.float64), pred)
    ls = _smoothing(label_smoothing)
    if ls:
        y = smooth_binary(y, ls)
    if from_logits:
        elementwise = _bce_from_logits(pred, y)[0]
    else:
        elementwise = binary_cross_entropy_from_probs(pred, y)
    if elementwise.ndim == 0:
        return elementwise
    return elementwise.mean(axis=axis, dtype=np.float64).astype(pred.dtype)


def categorical_crossentropy(
    y_true: object,
    y_pred: object,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
    *,
    dtype: str | None = None,
) -> np.ndarray:
    """Cross-entropy with one-hot or soft labels: y (n, C), y_pred (n, C) -> (n,)."""
    pred = np.moveaxis(_pred(y_pred, dtype), axis, -1)
    y = np.moveaxis(np.asarray(y_true), axis, -1)
    if y.shape != pred.shape:
        raise ValueError(
            f"y_true of shape {y.shape} does not match y_pred of shape {pred.shape}; "
            "for integer class labels use sparse_categorical_crossentropy"
        )
    ls = _smoothing(label_smoothing)
    if ls:
        y = smooth_categorical(y, ls, pred.shape[-1])
    if from_logits:
        return softmax_cross_entropy(pred, y, need_grad=False)[0]
    return cross_entropy_from_probs(pred, y)


def sparse_categorical_crossentropy(
    y_true: object,
    y_pred: object,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
    *,
    dtype: str | None = None,
) -> np.ndarray:
    """Cross-entropy with integer labels: y (n,) or (n, 1), y_pred (n, C) -> (n,).

    Entries whose label equals `ignore_class` get loss 0.
    """
    pred = np.moveaxis(_pred(y_pred, dtype), axis, -1)
    y = np.asarray(y_true)
    if y.ndim == pred.ndim and y.shape[-1] == 1:
        y = y[..., 0]
    if y.shape != pred.shape[:-1]:
        raise ValueError(
            f"y_true of shape {np.shape(y_true)} does not match y_pred of shape {pred.shape}: "
            f"sparse labels need shape {pred.shape[:-1]} or {pred.shape[:-1] + (1,)}; for one-hot "
            "labels use categorical_crossentropy"
        )
    keep = None
    if ignore_class is not None:
        keep = y != ignore_class
        y = np.where(keep, y, 0)
    loss = softmax_cross_entropy(pred, y, need_grad=False)[0] if from_logits else cross_entropy_from_probs(pred, y)
    return loss if keep is None else np.where(keep, loss, 0).astype(loss.dtype)


# --- regression losses ----------------------------------------------------------------------------
# Each pointwise loss of the error e = y_pred − y_true (float64) sits beside its derivative d/de.

def _squared(e: np.ndarray, delta: float) -> np.ndarray:
    return np.square(e)


def _squared_grad(e: np.ndarray, delta: float) -> np.ndarray:
    return 2.0 * e


def _absolute(e: np.ndarray, delta: float) -> np.ndarray:
    return np.abs(e)


def _absolute_grad(e: np.ndarray, delta: float) -> np.ndarray:
    return np.sign(e)  # 0 at e == 0: the subgradient autodiff frameworks give


def _huber(e: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(e)
    # Linear branch as δ·(|e| − δ/2): |e| > δ, so nothing cancels (Keras: δ|e| − δ²/2).
    return np.where(a <= delta, 0.5 * np.square(e), delta * (a - 0.5 * delta))


def _huber_grad(e: np.ndarray, delta: float) -> np.ndarray:
    # |e| == δ takes the quadratic branch, as Keras' `where(|e| <= δ, ...)` (both give ±δ there);
    # δ·sign(e) keeps a NaN error NaN.
    return np.where(np.abs(e) <= delta, e, delta * np.sign(e))


def _delta(delta: object) -> float:
    """Huber's delta as a float, or a ValueError for anything but a finite real number > 0."""
    d = math.nan  # not a real number (a bool, a string, None...) fails the test below as NaN does
    if isinstance(delta, Real) and not isinstance(delta, (bool, np.bool_)):
        try:
            d = float(delta)
        except OverflowError:  # an integer beyond float range
            d = math.inf
    if not (math.isfinite(d) and d > 0):
        raise ValueError(f"delta must be a finite number > 0, got {delta!r}")
    return d


def _errors(y_true: object, y_pred: object, dtype: str | None) -> tuple[np.ndarray, np.ndarray]:
    """y_pred (in its float dtype, or `dtype`) and the float64 errors y_pred − y_true, same shape."""
    pred = _pred(y_pred, dtype)
    y = np.asarray(y_true, dtype=np.float64)
    if pred.ndim == 1 and y.shape == pred.shape + (1,):
        pred = pred[:, None]  # as Keras: a rank-1 y_pred against (n, 1) targets is expanded
    y = _same_rank(y, pred)
    if y.shape != pred.shape:
        raise ValueError(
            f"y_true of shape {np.shape(y_true)} does not match y_pred of shape {pred.shape}; "
            f"expected {pred.shape}" + (f" or {pred.shape[:-1]}" if pred.shape[-1:] == (1,) else "")
        )
    return pred, np.subtract(pred, y, dtype=np.float64)


def _mean_over_last(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.asarray(values.mean(axis=-1)).astype(dtype)


def mean_squared_error(y_true: object, y_pred: object, *, dtype: str | None = None) -> np.ndarray:
    """mean((y_pred − y_true)², axis=-1): y (n, d) or (n,) for y_pred (n, 1), y_pred (n, d) -> (n,)."""
    pred, e = _errors(y_true, y_pred, dtype)
    return _mean_over_last(_squared(e, 0.0), pred.dtype)


def mean_absolute_error(y_true: object, y_pred: object, *, dtype: str | None = None) -> np.ndarray:
    """mean(|y_pred − y_true|, axis=-1): y (n, d) or (n,) for y_pred (n, 1), y_pred (n, d) -> (n,)."""
    pred, e = _errors(y_true, y_pred, dtype)
    return _mean_over_last(_absolute(e, 0.0), pred.dtype)


def huber(y_true: object, y_pred: object, delta: float = 1.0, *,
          dtype: str | None = None) -> np.ndarray:
    """Huber loss, mean over the last axis: e²/2 where |e| <= delta, else delta·(|e| − delta/2).

    y (n, d) or (n,) for y_pred (n, 1), y_pred (n, d) -> (n,); e = y_pred − y_true.
    """
    d = _delta(delta)
    pred, e = _errors(y_true, y_pred, dtype)
    return _mean_over_last(_huber(e, d), pred.dtype)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error


class Loss:
    """Base class: `loss(y_true, y_pred, sample_weight=None)` reduces `call`'s per-sample losses."""

    def __init__(self, name: str | None = None, reduction: str | None = "sum_over_batch_size",
                 dtype: str | None = None) -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        if dtype is not None and np.dtype(dtype) not in (np.float16, np.float32, np.float64):
            raise ValueError(f"dtype must be float16, float32, float64 or None, got {dtype!r}")
        self.name = name or type(self).__name__
        self.reduction = reduction
        self.dtype = None if dtype is None else np.dtype(dtype).name

    def call(self, y_true: object, y_pred: object) -> np.ndarray:
        """Per-sample losses (n,)."""
        raise TypeError(f"{type(self).__name__} does not define call()")

    def _mask(self, y_true: object) -> np.ndarray | None:
        return None

    def __call__(self, y_true: object, y_pred: object, sample_weight: object | None = None):
        """The reduced loss: a NumPy scalar (or the weighted per-sample array for reduction None)."""
        values = self.call(y_true, y_pred)
        dtype = values.dtype
        v = values.astype(np.float64)
        weight = None
        if sample_weight is not None:
            weight = np.asarray(sample_weight, dtype=np.float64)
            if weight.ndim == v.ndim + 1 and weight.shape[-1:] == (1,):
                weight = weight[..., 0]
            try:
                weight = np.broadcast_to(weight, v.shape)
            except ValueError:
                raise ValueError(
                    f"sample_weight of shape {np.shape(sample_weight)} does not match the "
                    f"per-sample losses of shape {v.shape}"
                ) from None
        mask = self._mask(y_true)
        if mask is not None and self.reduction in ("sum_over_batch_size", "mean"):
            # As Keras: masked entries drop out of the mean, which is over the kept ones.
            kept = mask.sum()
            mask = mask * (mask.size / kept if kept else 0.0)
        if mask is not None:
            weight = mask if weight is None else weight * mask
        if weight is not None:
            v = v * weight
        if self.reduction in (None, "none") or v.ndim == 0 or v.size == 0:
            return v.astype(dtype)
        total = v.sum()
        if self.reduction == "sum":
            return dtype.type(total)
        if self.reduction == "mean_with_sample_weight" and weight is not None:
            denom = weight.sum()
        else:
            denom = v.size
        return dtype.type(total / denom if denom else 0.0)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as a JSON-friendly dict."""
        return {"name": self.name, "reduction": self.reduction, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        """Rebuild a loss from `get_config()`'s dict."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _SmoothedCrossentropy(Loss):
    """A cross-entropy with Keras' from_logits, label_smoothing and axis arguments."""

    default_name = ""

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction: str | None = "sum_over_batch_size", name: str | None = None,
                 dtype: str | None = None) -> None:
        super().__init__(name=name or self.default_name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _smoothing(label_smoothing)
        self.axis = axis

    @staticmethod
    def function(y_true: object, y_pred: object, from_logits: bool, label_smoothing: float,
                 axis: int, *, dtype: str | None) -> np.ndarray:
        raise TypeError("a concrete loss sets `function`")

    def call(self, y_true: object, y_pred: object) -> np.ndarray:
        return type(self).function(y_true, y_pred, self.from_logits, self.label_smoothing,
                                   self.axis, dtype=self.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class BinaryCrossentropy(_SmoothedCrossentropy):
    """Binary cross-entropy for sigmoid outputs (binary or multi-label), mean over the last axis."""

    default_name = "binary_crossentropy"
    function = staticmethod(binary_crossentropy)


class CategoricalCrossentropy(_SmoothedCrossentropy):
    """Softmax cross-entropy with one-hot or soft labels (n, C)."""

    default_name = "categorical_crossentropy"
    function = staticmethod(categorical_crossentropy)


class SparseCategoricalCrossentropy(Loss):
    """Softmax cross-entropy with integer class labels (n,) or (n, 1)."""

    def __init__(self, from_logits: bool = False, ignore_class: int | None = None,
                 reduction: str | None = "sum_over_batch_size",
                 name: str = "sparse_categorical_crossentropy", dtype: str | None = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)
        self.ignore_class = ignore_class

    def call(self, y_true: object, y_pred: object) -> np.ndarray:
        return sparse_categorical_crossentropy(y_true, y_pred, self.from_logits,
                                               self.ignore_class, dtype=self.dtype)

    def _mask(self, y_true: object) -> np.ndarray | None:
        if self.ignore_class is None:
            return None
        y = np.asarray(y_true)
        y = y.reshape(-1) if y.ndim == 2 and y.shape[-1] == 1 else y
        return (y != self.ignore_class).astype(np.float64)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "from_logits": self.from_logits,
                "ignore_class": self.ignore_class}


class _RegressionLoss(Loss):
    """A regression loss: the mean over the last axis of a pointwise function of y_pred − y_true."""

    pointwise = staticmethod(_squared)
    derivative = staticmethod(_squared_grad)

    def _threshold(self) -> float:
        """The pointwise functions' second argument: Huber's delta (unused by the others)."""
        return 0.0

    def call(self, y_true: object, y_pred: object) -> np.ndarray:
        pred, e = _errors(y_true, y_pred, self.dtype)
        return _mean_over_last(type(self).pointwise(e, self._threshold()), pred.dtype)


class MeanSquaredError(_RegressionLoss):
    """Mean squared error, mean((y_pred − y_true)²) over the last axis."""

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str = "mean_squared_error",
                 dtype: str | None = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)


class MeanAbsoluteError(_RegressionLoss):
    """Mean absolute error, mean(|y_pred − y_true|) over the last axis."""

    pointwise = staticmethod(_absolute)
    derivative = staticmethod(_absolute_grad)

    def __init__(self, reduction: str | None = "sum_over_batch_size", name: str = "mean_absolute_error",
                 dtype: str | None = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)


class Huber(_RegressionLoss):
    """Huber loss: quadratic for |y_pred − y_true| <= delta, linear beyond; mean over the last axis."""

    pointwise = staticmethod(_huber)
    derivative = staticmethod(_huber_grad)

    def __init__(self, delta: float = 1.0, reduction: str | None = "sum_over_batch_size",
                 name: str = "huber_loss", dtype: str | None = None) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.delta = _delta(delta)

    def _threshold(self) -> float:
        return self.delta

    def get_config(self) -> dict[str, Any]:
        # Keras 3 leaves delta out of Huber's config (a reloaded Huber(2.0) gets delta=1); we keep it.
        return {**super().get_config(), "delta": self.delta}


def regression_loss_and_grad(loss: Loss, y_pred: np.ndarray, y_true: np.ndarray, need_grad: bool,
                             grad_scale: float | np.ndarray = 1.0) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-sample loss (n,) and d loss_i / d y_pred (n, units) for MSE, MAE or Huber, for training.

    y_pred (n, units) float; y_true (n, units), or (n,) when units == 1. The loss is the mean over
    the units, in y_pred's dtype (the loss's own dtype= does not apply: the caller picks y_pred's).
    Row i of the gradient is multiplied by grad_scale (a number, or a float64 array (n,)); all of it
    is computed in float64 and rounded once to y_pred's dtype. The gradient is None without need_grad.
    """
    if not isinstance(loss, _RegressionLoss):
        raise TypeError(f"regression_loss_and_grad takes MeanSquaredError, MeanAbsoluteError or Huber, "
                         f"got {loss!r}")
    if not isinstance(y_pred, np.ndarray) or y_pred.ndim != 2 or y_pred.shape[1] == 0:
        raise ValueError(f"y_pred must be a 2-D array (n, units) with units >= 1, got shape {np.shape(y_pred)}")
    pred, e = _errors(y_true, y_pred, None)
    kind = type(loss)
    per_sample = _mean_over_last(kind.pointwise(e, loss._threshold()), pred.dtype)
    if not need_grad:
        return per_sample, None
    scale = np.asarray(grad_scale, dtype=np.float64)
    if scale.ndim == 1 and scale.shape == (len(e),):
        scale = scale[:, None]
    elif scale.ndim != 0:
        raise ValueError(f"grad_scale must be a number or an array of shape ({len(e)},), "
                         f"got shape {scale.shape}")
    grad = kind.derivative(e, loss._threshold())
    grad *= scale  # the caller's scale, then the mean's 1/units, still in float64
    grad /= e.shape[1]
    return per_sample, grad.astype(pred.dtype)


# The lecture notes' spelling: the very same classes.
BinaryCrossEntropy = BinaryCrossentropy
CategoricalCrossEntropy = CategoricalCrossentropy
SparseCategoricalCrossEntropy = SparseCategoricalCrossentropy


def get(identifier: str | Loss | dict[str, Any]) -> Loss:
    """A loss from its Keras name ('sparse_categorical_crossentropy', 'mse', ...), config dict, or itself."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        cls = _BY_NAME.get(identifier.get("class_name", ""))
        if cls is None:
            raise ValueError(f"unknown loss config {identifier!r}")
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, str) and identifier in _BY_NAME:
        return _BY_NAME[identifier]()
    raise ValueError(
        f"unknown loss {identifier!r}; expected one of {sorted(_BY_NAME)} or a Loss instance"
    )


_BY_NAME: dict[str, type[Loss]] = {
    "binary_crossentropy": BinaryCrossentropy,
    "BinaryCrossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "CategoricalCrossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "SparseCategoricalCrossentropy": SparseCategoricalCrossentropy,
    "BinaryCrossEntropy": BinaryCrossentropy,
    "CategoricalCrossEntropy": CategoricalCrossentropy,
    "SparseCategoricalCrossEntropy": SparseCategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "MSE": MeanSquaredError,
    "MeanSquaredError": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError,
    "MeanAbsoluteError": MeanAbsoluteError,
    "huber": Huber,
    "huber_loss": Huber,
    "Huber": Huber,
}
