"""Weight initializers with Keras' names and formulas; randomness comes from an explicit Generator."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Initializer = Callable[[tuple[int, ...], np.random.Generator, np.dtype], np.ndarray]

# Keras draws "normal" variance-scaling weights from a normal truncated at 2 standard deviations,
# whose standard deviation is 0.8796 of the untruncated one; it divides by this to compensate.
_TRUNCATED_STD = 0.87962566103423978


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 1:
        return shape[0], shape[0]
    return shape[0], shape[1]


def _truncated_normal(shape, rng: np.random.Generator, std: float) -> np.ndarray:
    out = rng.normal(0.0, std, shape)
    bad = np.abs(out) > 2 * std
    while bad.any():
        out[bad] = rng.normal(0.0, std, int(bad.sum()))
        bad = np.abs(out) > 2 * std
    return out


def _variance_scaling(scale: float, mode: str, distribution: str) -> Initializer:
    def init(shape, rng, dtype):
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, n)
        if distribution == "uniform":
            limit = np.sqrt(3.0 * variance)
            return rng.uniform(-limit, limit, shape).astype(dtype)
        return _truncated_normal(shape, rng, np.sqrt(variance) / _TRUNCATED_STD).astype(dtype)

    return init


INITIALIZERS: dict[str, Initializer] = {
    "glorot_uniform": _variance_scaling(1.0, "fan_avg", "uniform"),
    "glorot_normal": _variance_scaling(1.0, "fan_avg", "normal"),
    "he_uniform": _variance_scaling(2.0, "fan_in", "uniform"),
    "he_normal": _variance_scaling(2.0, "fan_in", "normal"),
    "lecun_uniform": _variance_scaling(1.0, "fan_in", "uniform"),
    "lecun_normal": _variance_scaling(1.0, "fan_in", "normal"),
    "random_normal": lambda shape, rng, dtype: rng.normal(0.0, 0.05, shape).astype(dtype),
    "random_uniform": lambda shape, rng, dtype: rng.uniform(-0.05, 0.05, shape).astype(dtype),
    "zeros": lambda shape, rng, dtype: np.zeros(shape, dtype),
    "ones": lambda shape, rng, dtype: np.ones(shape, dtype),
}


def get(identifier: str) -> str:
    """Check an initializer name (Keras spelling) and return it."""
    if not isinstance(identifier, str) or identifier not in INITIALIZERS:
        raise ValueError(f"unknown initializer {identifier!r}; expected one of {sorted(INITIALIZERS)}")
    return identifier


def initialize(name: str, shape: tuple[int, ...], rng: np.random.Generator, dtype) -> np.ndarray:
    """A new array of `shape` drawn by initializer `name` from `rng`."""
    return INITIALIZERS[name](shape, rng, np.dtype(dtype))
