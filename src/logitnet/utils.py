"""Keras' `utils` that course code uses: `to_categorical` and `set_random_seed`."""

from __future__ import annotations

import random

import numpy as np

from . import backend


def to_categorical(x: object, num_classes: int | None = None) -> np.ndarray:
    """One-hot rows for integer class labels x (...,) or (..., 1) -> (..., num_classes), float64 as Keras."""
    arr = np.asarray(x)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
            raise ValueError("to_categorical takes integer class labels; got values that are not whole numbers")
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"to_categorical takes integer class labels, got dtype {arr.dtype}")
    labels = arr.astype(np.int64)
    shape = labels.shape[:-1] if labels.ndim > 1 and labels.shape[-1] == 1 else labels.shape
    flat = labels.reshape(-1)
    if flat.size and flat.min() < 0:
        raise ValueError(f"to_categorical takes labels >= 0, got {int(flat.min())}")
    if num_classes is None:
        num_classes = int(flat.max()) + 1 if flat.size else 0
    elif isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if flat.size and flat.max() >= num_classes:
        raise ValueError(f"label {int(flat.max())} is out of range for num_classes={num_classes}")
    out = np.zeros((flat.size, int(num_classes)))
    out[np.arange(flat.size), flat] = 1
    return out.reshape(shape + (int(num_classes),))


def set_random_seed(seed: int) -> None:
    """Seed Python's `random`, NumPy's global generator and logitnet's global seed sequence, as
    Keras' `utils.set_random_seed` does: models, layers and fits created afterwards without a
    seed become reproducible (an explicit seed still wins)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"set_random_seed expects an integer seed, got {seed!r} (of type {type(seed).__name__})")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    backend.set_global_seed(int(seed))
