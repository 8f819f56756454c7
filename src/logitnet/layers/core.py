"""Layers without trainable weights: Activation, ReLU, LeakyReLU, Softmax, Dropout, Flatten.

An activation layer that ends a network (Activation('softmax'), Softmax(), ...) is fused with
the loss by the model's head, exactly as a Dense layer's own activation is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import activations
from .base import FeatureShape, Layer


def _number(value: object, name: str, low: float = -math.inf, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value) or value < low:
        raise ValueError(f"{name} must be a finite number >= {low}, got {value!r}")
    return float(value)


class ActivationLayer(Layer):
    """A layer that applies one element-wise (or softmax) activation: shape in = shape out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation_name = "linear"
        self.activation_params: dict[str, Any] = {}

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        a = activations.forward(self.activation_name, x, **self.activation_params)
        if training:
            self._cache = (x, a)
        return a

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        if not need_input_grad:
            return None
        if self._cache is None:
            raise RuntimeError(f"layer {self.name!r}: backward() called before a training forward()")
        x, a = self._cache
        return activations.backward(self.activation_name, x, a, grad_out, **self.activation_params)


class Activation(ActivationLayer):
    """Keras' Activation(activation): applies a named activation (or one of logitnet.activations)."""

    def __init__(self, activation: object, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation_name = activations.name_of(activation)

    @property
    def activation(self):
        """The activation function (`layer.activation == softmax` works, as in Keras)."""
        return activations.get(self.activation_name)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": self.activation_name}


class ReLU(ActivationLayer):
    """Keras' ReLU(max_value=None, negative_slope=0.0, threshold=0.0)."""

    def __init__(self, max_value: float | None = None, negative_slope: float = 0.0, threshold: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_value = _number(max_value, "ReLU max_value", 0.0, allow_none=True)
        self.negative_slope = _number(negative_slope, "ReLU negative_slope", 0.0)
        self.threshold = _number(threshold, "ReLU threshold", 0.0)  # Keras' layer refuses a negative one
        self.activation_name = "relu"
        self.activation_params = {"negative_slope": self.negative_slope, "max_value": self.max_value,
                                  "threshold": self.threshold}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self.activation_params}


class LeakyReLU(ActivationLayer):
    """Keras' LeakyReLU(negative_slope=0.3) (tf.keras 2's `alpha=` is accepted too)."""

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any) -> None:
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        self.negative_slope = _number(negative_slope, "LeakyReLU negative_slope", 0.0)
        self.activation_name = "leaky_relu"
        self.activation_params = {"negative_slope": self.negative_slope}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "negative_slope": self.negative_slope}


class Softmax(ActivationLayer):
    """Keras' Softmax(axis=-1): the exact softmax over `axis`."""

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"Softmax axis must be an integer, got {axis!r}")
        self.axis = int(axis)
        self.activation_name = "softmax"
        self.activation_params = {"axis": self.axis}

    def output_features(self, in_shape: FeatureShape) -> FeatureShape:
        ndim = len(in_shape) + 1  # with the batch axis
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(f"Softmax axis {self.axis} is not a feature axis of inputs (None, *{in_shape})")
        return in_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


class Dropout(Layer):
    """Keras' Dropout(rate): in training, zero each input with probability `rate` and scale the
    rest by 1 / (1 − rate); at inference the identity. `seed` fixes the masks."""

    def __init__(self, rate: float, noise_shape: tuple | None = None, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        rate = _number(rate, "Dropout rate", 0.0)
        if not rate < 1:
            raise ValueError(f"Dropout rate must lie in [0, 1), got {rate!r}")
        self.rate = rate
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"Dropout seed must be an integer >= 0 or None, got {seed!r}")
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def set_rng(self, seed: object) -> None:
        self._rng = np.random.default_rng(seed)

    def check_input(self, in_shape: FeatureShape) -> FeatureShape:
        if self.noise_shape is not None:
            full = (None, *in_shape)
            if len(self.noise_shape) != len(full) or not all(
                    d is None or d == 1 or d == size for d, size in zip(self.noise_shape, full)):
                raise ValueError(f"Dropout noise_shape {self.noise_shape} does not fit inputs of shape {full}: "
                                 "give one entry per axis, each None, 1 or that axis' size")
        return in_shape

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        if not training:  # inference keeps nothing: threads may predict while one trains
            return x
        if self.rate == 0:
            self._cache = None
            return x
        shape = x.shape if self.noise_shape is None else tuple(
            x.shape[i] if d is None else d for i, d in enumerate(self.noise_shape))
        keep = self._rng.random(shape) >= self.rate
        scale = x.dtype.type(1.0 / (1.0 - self.rate))
        mask = np.where(keep, scale, x.dtype.type(0))
        self._cache = mask
        return x * mask

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        if not need_input_grad:
            return None
        return grad_out if self._cache is None else grad_out * self._cache

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape), "seed": self.seed}


class Flatten(Layer):
    """Keras' Flatten(): samples of shape (d1, d2, ...) -> (d1·d2·...,)."""

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"Flatten supports data_format='channels_last' (or None), got {data_format!r}")
        self.data_format = data_format

    def output_features(self, in_shape: FeatureShape) -> FeatureShape:
        return (int(np.prod(in_shape)),)

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        return x.reshape(len(x), -1)

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        return grad_out.reshape((len(grad_out), *self.in_shape)) if need_input_grad else None

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}
