"""Normalization: (x − mean) / √variance per feature, with `adapt(data)` as in Keras.

`adapt` computes the statistics in float64 with the corrected two-pass formula
(var = (Σd² − (Σd)²/n) / n with d = x − mean), so data far from zero (mean 1e8, unit spread)
keeps its variance to ~1e-15 relative, where a one-pass E[x²] − E[x]² loses every digit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..tensor import plain
from .base import FeatureShape, Layer


class Normalization(Layer):
    """Keras' Normalization(axis=-1, mean=None, variance=None, invert=False).

    The statistics are kept per position of the `axis` dimensions (the last one by default) and
    shared over the others. Given `mean` and `variance` it uses those; otherwise it holds them as
    non-trainable weights [mean, variance, count] that `adapt` fills. `invert=True` maps
    normalized values back: x·√variance + mean.
    """

    def __init__(self, axis: int | tuple | None = -1, mean: object = None, variance: object = None,
                 invert: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if axis is None:
            axes: tuple = ()
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            axes = (int(axis),)
        else:
            axes = tuple(axis)
            if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
                raise ValueError(f"Normalization axis must be an integer, a tuple of integers or None, got {axis!r}")
        self.axis = axes
        if (mean is None) != (variance is None):
            raise ValueError("Normalization needs both mean and variance, or neither (then call adapt)")
        self.input_mean = None if mean is None else np.asarray(mean, np.float64)
        self.input_variance = None if variance is None else np.asarray(variance, np.float64)
        if mean is not None:
            if self.input_mean.shape != self.input_variance.shape:
                raise ValueError(f"Normalization mean and variance must have the same shape, got "
                                 f"{self.input_mean.shape} and {self.input_variance.shape}")
            if not (np.isfinite(self.input_mean).all() and np.isfinite(self.input_variance).all()
                    and (self.input_variance >= 0).all()):
                raise ValueError("Normalization mean must be finite and variance finite and >= 0")
        self.invert = bool(invert)
        self.mean = self.variance = self.count = None
        self._shift = self._scale = None  # mean and max(√variance, ε), broadcast over a sample

    # --- shapes -------------------------------------------------------------------------------
    def _axes(self, in_shape: FeatureShape) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The kept axes (of the batched input) and the shape of the statistics."""
        ndim = len(in_shape) + 1
        keep = []
        for a in self.axis:
            if not -ndim <= a < ndim:
                raise ValueError(f"Normalization axis {a} is out of range for inputs of rank {ndim}")
            if a % ndim == 0:
                raise ValueError("Normalization cannot keep statistics per sample (axis 0, the batch axis)")
            keep.append(a % ndim)
        keep = sorted(set(keep))
        return tuple(keep), tuple(in_shape[k - 1] for k in keep)

    def _broadcast_shape(self, in_shape: FeatureShape) -> tuple[int, ...]:
        keep, _ = self._axes(in_shape)
        return tuple(in_shape[d - 1] if d in keep else 1 for d in range(1, len(in_shape) + 1))

    def check_input(self, in_shape: FeatureShape) -> FeatureShape:
        keep, _ = self._axes(in_shape)
        if self.input_mean is not None:
            target = tuple(in_shape[d - 1] if d in keep else 1 for d in range(1, len(in_shape) + 1))
            shape = self._aligned_shape(self.input_mean.shape, keep, len(in_shape))
            try:
                if np.broadcast_shapes(shape, target) != target:
                    raise ValueError
            except ValueError:
                raise ValueError(f"Normalization mean/variance of shape {self.input_mean.shape} do not fit "
                                 f"inputs of shape (None, *{in_shape}) with axis={self.axis}") from None
        return in_shape

    def nonnegative_weights(self) -> dict[int, str]:
        return {} if self.input_mean is not None else {1: "variance", 2: "sample count"}

    def validate_weights(self, arrays: list[np.ndarray]) -> None:
        if any((arrays[i] < 0).any() for i in self.nonnegative_weights()):
            raise ValueError(f"layer {self.name!r}: the variance and the count must be >= 0")

    def own_shapes(self, in_shape: FeatureShape) -> list[tuple[tuple[int, ...], str]]:
        """[mean, variance, count] as (shape, dtype kind) when adapting; none with fixed statistics."""
        if self.input_mean is not None:
            return []
        _, stats = self._axes(in_shape)
        return [(stats, "f"), (stats, "f"), ((), "i")]

    def build_state(self, in_shape: FeatureShape) -> None:
        _, stats = self._axes(in_shape)
        if self.input_mean is None:
            self.mean = np.zeros(stats, self.dtype)
            self.variance = np.ones(stats, self.dtype)
            self.count = np.zeros((), np.int64)
        self.weights_changed()

    def set_dtype(self, dtype: object) -> None:
        super().set_dtype(dtype)
        if self.mean is not None:
            self.mean, self.variance = self.mean.astype(self.dtype), self.variance.astype(self.dtype)
        self.weights_changed()

    def own_weights(self) -> list[np.ndarray]:
        return [] if self.mean is None or self.input_mean is not None else [self.mean, self.variance, self.count]

    def weights_changed(self) -> None:
        shape = self._broadcast_shape(self.in_shape)
        if self.input_mean is not None:  # they fit: check_input made sure
            mean = np.broadcast_to(self._aligned(self.input_mean), shape)
            var = np.broadcast_to(self._aligned(self.input_variance), shape)
        else:
            mean = self.mean.astype(np.float64).reshape(shape)
            var = self.variance.astype(np.float64).reshape(shape)
        self._shift = mean.astype(self.dtype)
        self._scale = np.maximum(np.sqrt(var), backend.epsilon()).astype(self.dtype)

    def _aligned(self, stat: np.ndarray) -> np.ndarray:
        keep, _ = self._axes(self.in_shape)
        return stat.reshape(self._aligned_shape(stat.shape, keep, len(self.in_shape)))

    def _aligned_shape(self, shape: tuple[int, ...], keep: tuple[int, ...], rank: int) -> tuple[int, ...]:
        """Given statistics of `shape`, their shape over a sample's `rank` axes: Keras aligns them
        with the kept axes from the right."""
        if len(shape) == 0:
            return ()
        if len(shape) > len(keep):
            raise ValueError(f"Normalization mean/variance have rank {len(shape)}, more than the "
                             f"{len(keep)} kept axes {self.axis}")
        expanded = [1] * rank
        for i in range(1, len(shape) + 1):
            expanded[keep[-i] - 1] = shape[-i]
        return tuple(expanded)

    # --- adapt --------------------------------------------------------------------------------
    def adapt(self, data: object, batch_size: int | None = None, steps: int | None = None) -> None:
        """Set mean and variance (population variance, as Keras) from `data` (n, *features)."""
        if self.input_mean is not None:
            raise ValueError("this Normalization was given mean and variance; adapt() would ignore them")
        x = plain(data)
        if x.dtype.kind not in "biuf":
            raise ValueError(f"adapt() takes numbers, got dtype {x.dtype}")
        if x.ndim < 2 or len(x) == 0:
            raise ValueError(f"adapt() takes a non-empty batch (n_samples, *features), got shape {x.shape}")
        if steps is not None:
            x = x[: int(steps) * (batch_size or 32)]
        if not self.built:
            self.build((None, *x.shape[1:]))
        elif x.shape[1:] != self.in_shape:
            raise ValueError(f"adapt() data has samples of shape {x.shape[1:]}; the layer was built for {self.in_shape}")
        x64 = x.astype(np.float64)
        if not np.isfinite(x64).all():
            raise ValueError("adapt() data must be finite")
        keep, stats = self._axes(self.in_shape)
        reduce = tuple(d for d in range(x.ndim) if d not in keep)
        n = int(np.prod([x.shape[d] for d in reduce]))
        mean = x64.mean(axis=reduce, keepdims=True)
        dev = x64 - mean
        correction = dev.sum(axis=reduce, keepdims=True)
        var = (np.square(dev).sum(axis=reduce, keepdims=True) - correction * correction / n) / n
        mean = mean + correction / n
        self.mean[...] = mean.reshape(stats)
        self.variance[...] = np.maximum(var, 0).reshape(stats)
        self.count[...] = n
        self.weights_changed()

    # --- computation --------------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        if self.invert:
            return x * self._scale + self._shift
        return (x - self._shift) / self._scale

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        if not need_input_grad:
            return None
        return grad_out * self._scale if self.invert else grad_out / self._scale

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": list(self.axis), "invert": self.invert,
                "mean": None if self.input_mean is None else self.input_mean.tolist(),
                "variance": None if self.input_variance is None else self.input_variance.tolist()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Normalization:
        config = dict(config)
        axis = config.pop("axis", -1)
        return cls(axis=tuple(axis) if isinstance(axis, list) else axis, **config)
