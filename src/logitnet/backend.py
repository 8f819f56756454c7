"""Keras' `backend` settings that logitnet has: the default float dtype and the global seed.

`set_floatx('float64')` makes layers and models built afterwards use float64, as in Keras.
`set_random_seed(s)` (also `utils.set_random_seed`) makes every later model, layer and
dropout created without a seed draw its seed from one sequence, so a script rerun gives
the same weights; an explicit `seed=` still wins.
"""

from __future__ import annotations

import threading

import numpy as np

_FLOATX = ["float32"]
_EPSILON = [1e-7]
_SEEDS: list[np.random.SeedSequence | None] = [None]
_SEED_LOCK = threading.Lock()


def floatx() -> str:
    """The default float dtype name for new layers and models: 'float32' unless set."""
    return _FLOATX[0]


def set_floatx(value: str) -> None:
    """Set the default float dtype of layers and models built afterwards ('float32' or 'float64')."""
    name = np.dtype(value).name if isinstance(value, (str, type, np.dtype)) else None
    if name not in ("float32", "float64"):
        raise ValueError(f"floatx must be 'float32' or 'float64' (logitnet trains in these), got {value!r}")
    _FLOATX[0] = name


def epsilon() -> float:
    """Keras' fuzz factor (1e-7), used where Keras uses it: Normalization's smallest divisor."""
    return _EPSILON[0]


def set_epsilon(value: float) -> None:
    """Set the fuzz factor returned by `epsilon()`."""
    value = float(value)
    if not (value > 0 and np.isfinite(value)):
        raise ValueError(f"epsilon must be finite and > 0, got {value!r}")
    _EPSILON[0] = value


def set_global_seed(seed: int | None) -> None:
    """Start the sequence of seeds that unseeded models and layers take (None: fresh entropy)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"the seed must be an integer >= 0 or None, got {seed!r}")
    with _SEED_LOCK:
        _SEEDS[0] = None if seed is None else np.random.SeedSequence(int(seed))


def draw_seed(seed: int | None = None) -> int | None:
    """`seed` if given; else the next seed of the global sequence (an int), or None when none was set."""
    if seed is not None:
        return seed
    with _SEED_LOCK:
        root = _SEEDS[0]
        return None if root is None else int(root.spawn(1)[0].generate_state(1, np.uint64)[0])


def default_dtype(dtype: object | None) -> np.dtype:
    """The float dtype a new layer or model uses: `dtype` if given, else `floatx()`."""
    dt = np.dtype(floatx() if dtype is None else _dtype_name(dtype))
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


def _dtype_name(dtype: object) -> object:
    # Keras' dtype policies arrive as dicts or objects with a `name`; logitnet has plain dtypes.
    return getattr(dtype, "name", dtype)
