"""Weight penalties (Keras' L1, L2, L1L2): value added to the loss, gradient added to the weights'.

Every regularizer is a `Regularizer` with factors l1 and l2; `get_config()` is always the flat
`{"l1": ..., "l2": ...}` the model file stores (Keras' L1 and L2 store one key; both read back).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class Regularizer:
    """penalty(w) = l1·Σ|w| + l2·Σw², added once per batch to the loss, as Keras does."""

    _factors: tuple[str, ...] = ("l1", "l2")  # the constructor's arguments

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

    def __call__(self, w: object) -> float:
        """Keras' `regularizer(w)`: the penalty for weights w (any shape), as a float."""
        return self.penalty(np.asarray(w))

    def add_gradient(self, w: np.ndarray, grad: np.ndarray) -> None:
        """grad += d penalty / dw, in place."""
        if self.l1:
            grad += self.l1 * np.sign(w)
        if self.l2:
            grad += (2 * self.l2) * w

    def get_config(self) -> dict[str, Any]:
        """{"l1": ..., "l2": ...}, the form the model file stores."""
        return {"l1": self.l1, "l2": self.l2}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        """Rebuild from `get_config()`'s dict or Keras' (L1's `{"l1": ...}`, L2's `{"l2": ...}`)."""
        config = dict(config)
        for key in set(config) - set(cls._factors):
            if key in ("l1", "l2") and config[key] in (0, None):  # e.g. L2's flat config: l1 = 0
                del config[key]
        unknown = sorted(set(config) - set(cls._factors))
        if unknown:
            raise ValueError(f"{cls.__name__} config has unexpected keys {unknown}; expected "
                             f"{list(cls._factors)}")
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={getattr(self, key)}" for key in self._factors)
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """Keras' `L1L2(l1=0.0, l2=0.0)`: l1·Σ|w| + l2·Σw² (None counts as 0)."""

    def __init__(self, l1: float | None = 0.0, l2: float | None = 0.0) -> None:
        super().__init__(l1=0.0 if l1 is None else l1, l2=0.0 if l2 is None else l2)


class L1(Regularizer):
    """Keras' `L1(l1=0.01)`: l1·Σ|w| (None means the default 0.01)."""

    _factors = ("l1",)

    def __init__(self, l1: float | None = 0.01) -> None:
        super().__init__(l1=0.01 if l1 is None else l1)


class L2(Regularizer):
    """Keras' `L2(l2=0.01)`: l2·Σw², with no 1/2, as Keras (None means the default 0.01)."""

    _factors = ("l2",)

    def __init__(self, l2: float | None = 0.01) -> None:
        super().__init__(l2=0.01 if l2 is None else l2)


# As in Keras, the lower-case names are the classes themselves: `isinstance(r, regularizers.l2)`.
l1 = L1
l2 = L2


def l1_l2(l1: float = 0.01, l2: float = 0.01) -> Regularizer:  # noqa: E741
    """TF 2.x Keras' `regularizers.l1_l2(l1=0.01, l2=0.01)` (Keras 3's is L1L2, defaults 0)."""
    return L1L2(l1=l1, l2=l2)


_CLASSES: dict[str, type[Regularizer]] = {"Regularizer": Regularizer, "L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier: str | Regularizer | type[Regularizer] | dict | None) -> Regularizer | None:
    """None; 'l1', 'l2', 'l1_l2' (factors 0.01) or 'L1', 'L2', 'L1L2' (the classes' defaults); a
    flat `{"l1": ..., "l2": ...}` or Keras `{"class_name": "L2", "config": {...}}` dict; a Regularizer."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Regularizer):
        return identifier()
    if isinstance(identifier, dict):
        if "class_name" not in identifier:
            return Regularizer(**identifier)
        cls = _CLASSES.get(identifier["class_name"]) if isinstance(identifier["class_name"], str) else None
        if cls is None:
            raise ValueError(f"unknown regularizer class_name {identifier['class_name']!r}; "
                             f"expected one of {sorted(_CLASSES)}")
        return cls.from_config(identifier.get("config") or {})
    makers = {"l1": l1, "l2": l2, "l1_l2": l1_l2, "L1": L1, "L2": L2, "L1L2": L1L2}
    if isinstance(identifier, str) and identifier in makers:
        return makers[identifier]()
    raise ValueError(f"unknown regularizer {identifier!r}; expected None, one of {sorted(makers)}, "
                     "a config dict or a Regularizer")
