"""Keras-compatible cross-entropy losses, exact from logits and honest from probabilities.

Names, arguments and defaults follow Keras 3. Differences, each on the side of accuracy:
- from logits nothing is clipped: a confident correct prediction has a tiny loss, not 0;
- from probabilities log(p) is taken as given (Keras clips p to [1e-7, 1 − 1e-7] and rescales
  rows to sum to 1): a probability of 0 for the true class gives inf, with a warning;
- `dtype=None` computes in the inputs' float dtype (float64 stays float64).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .ops._core import as_float_array
from .ops.probs import binary_cross_entropy_from_probs, cross_entropy_from_probs
from .ops.sigmoid import binary_cross_entropy as _bce_from_logits
from .ops.softmax_xent import cross_entropy as _ce_from_logits

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
        return _ce_from_logits(pred, y)[0]
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
    loss = _ce_from_logits(pred, y)[0] if from_logits else cross_entropy_from_probs(pred, y)
    return loss if keep is None else np.where(keep, loss, 0).astype(loss.dtype)


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


def get(identifier: str | Loss | dict[str, Any]) -> Loss:
    """A loss from its Keras name ('sparse_categorical_crossentropy', ...), config dict, or itself."""
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
}
