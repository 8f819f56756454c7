"""Weight penalties (Keras' L1, L2, L1L2): value added to the loss, gradient added to the weights'."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class Regularizer:
    """penalty(w) = l1·Σ|w| + l2·Σw², added once per batch to the loss, as Keras does."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        for name, value in (("l1", l1), ("l2", l2)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"regularization factor {name} must be finite and >= 0, got {value!r}")
        self.l1, self.l2 = float(l1), float(l2)

    def penalty(self, w: np.ndarray) -> float:
        """The penalty for weights w (any shape)."""
        value = 0.0
        if self.l1:
            value += self.l1 * float(np.abs(w).sum(dtype=np.float64))
        if self.l2:
            value += self.l2 * float(np.square(w).sum(dtype=np.float64))
        return value

    def add_gradient(self, w: np.ndarray, grad: np.ndarray) -> None:
        """grad += d penalty / dw, in place."""
        if self.l1:
            grad += self.l1 * np.sign(w)
        if self.l2:
            grad += (2 * self.l2) * w

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}

    def __repr__(self) -> str:
        return f"Regularizer(l1={self.l1}, l2={self.l2})"


def l1(l1: float = 0.01) -> Regularizer:  # noqa: E741 - Keras' name
    """Keras' `regularizers.l1(0.01)`."""
    return Regularizer(l1=l1)


def l2(l2: float = 0.01) -> Regularizer:
    """Keras' `regularizers.l2(0.01)`."""
    return Regularizer(l2=l2)


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> Regularizer:  # noqa: E741
    """Keras' `regularizers.l1_l2(l1=0.01, l2=0.01)`."""
    return Regularizer(l1=l1, l2=l2)


def get(identifier: str | Regularizer | dict | None) -> Regularizer | None:
    """None, 'l1', 'l2', 'l1_l2' (Keras' default factors), a config dict, or a Regularizer."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        return Regularizer(**identifier)
    makers = {"l1": l1, "l2": l2, "l1_l2": l1_l2}
    if isinstance(identifier, str) and identifier in makers:
        return makers[identifier]()
    raise ValueError(f"unknown regularizer {identifier!r}; expected None, 'l1', 'l2', 'l1_l2' or a Regularizer")
