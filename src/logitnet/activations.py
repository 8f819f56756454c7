"""Hidden-layer activations: value and derivative side by side, built on the exact ops.

An output softmax or sigmoid is normally fused with its loss by the model's head (see
`head.py`), so the derivatives here serve hidden layers and standalone use.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import ops

Forward = Callable[[np.ndarray], np.ndarray]
Backward = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0, dtype=z.dtype)


def _relu_grad(z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
    return np.where(z > 0, grad_a, np.zeros((), grad_a.dtype))


def _sigmoid_grad(z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
    return grad_a * a * (1 - a)


def _tanh_grad(z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
    return grad_a * (1 - a * a)


def _softmax_grad(z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
    return a * (grad_a - (grad_a * a).sum(axis=-1, keepdims=True))


# name -> (forward z -> a, backward (z, a, dL/da) -> dL/dz); shapes (n, units).
ACTIVATIONS: dict[str, tuple[Forward, Backward]] = {
    "linear": (lambda z: z, lambda z, a, g: g),
    "relu": (_relu, _relu_grad),
    "sigmoid": (ops.sigmoid, _sigmoid_grad),
    "tanh": (np.tanh, _tanh_grad),
    "softmax": (ops.softmax, _softmax_grad),
}


def get(identifier: str | None) -> str:
    """The canonical activation name for a Keras identifier (None means 'linear')."""
    name = "linear" if identifier is None else identifier
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {identifier!r}; expected one of {sorted(ACTIVATIONS)} or None"
        )
    return name


def forward(name: str, z: np.ndarray) -> np.ndarray:
    """The activation `name` applied to pre-activations z (n, units)."""
    return ACTIVATIONS[name][0](z)


def backward(name: str, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray) -> np.ndarray:
    """dL/dz (n, units) from dL/da, given z and a = activation(z)."""
    return ACTIVATIONS[name][1](z, a, grad_a)
