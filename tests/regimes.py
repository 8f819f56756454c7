"""Seeded logits for every regime the accuracy targets name (shared by tests and the benchmark)."""

from __future__ import annotations

import numpy as np


def _huge(dtype) -> tuple[float, str]:
    """The huge finite logits of a dtype and the regime's name: ±1e30, or ±1e4 in float16
    (whose largest value is 65504: a pos_weight of 4 times 3e4 would overflow)."""
    return (1e30, "huge_1e30") if float(np.finfo(dtype).max) > 1e31 else (1e4, "huge_1e4")


def softmax_regimes(dtype, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (logits (n, C) in dtype, int labels (n,))."""
    rng = np.random.default_rng(seed)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def add(name: str, z: np.ndarray, y: np.ndarray | None = None) -> None:
        n, c = z.shape
        labels = rng.integers(0, c, n) if y is None else y
        out[name] = (z.astype(dtype), labels)

    for scale in (1, 10, 100, 1000):
        add(f"normal_{scale}", rng.normal(0, scale, (12, 10)))
    # The true class ahead of all others by 20-90: true loss down to ~1e-39, which naive forms round to 0.
    z = rng.normal(0, 1, (12, 10))
    y = rng.integers(0, 10, 12)
    z[np.arange(12), y] = z.max(axis=1) + rng.uniform(20, 90, 12)
    add("confident_correct", z, y)
    z = rng.normal(0, 1, (12, 10))
    wrong = (y + 1) % 10
    z[np.arange(12), wrong] = z.max(axis=1) + rng.uniform(20, 90, 12)
    add("confident_wrong", z, y)
    add("classes_1000", rng.normal(0, 3, (3, 1000)))
    add("classes_32768", rng.normal(0, 3, (1, 32768)))
    base = rng.normal(0, 3, (12, 1))
    ties = base + rng.integers(-2, 3, (12, 10)) * np.spacing(np.abs(base).astype(dtype)).astype(np.float64)
    add("near_ties", ties)
    add("offset_1e4", 1e4 + rng.normal(0, 1, (12, 10)))
    # float16 holds nothing near 1e30 (its largest value is 65504): there "huge" is ±1e4.
    big, big_name = _huge(dtype)
    add(big_name, rng.choice([-big, big, 0.0], (12, 10)) * rng.uniform(0.5, 1, (12, 10)))
    add("very_negative", -600 + rng.normal(0, 30, (12, 10)))
    return out


def soft_labels(labels_shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Dirichlet rows (n, C) in float64, plus a few exactly one-hot rows and label-smoothed ones."""
    rng = np.random.default_rng(seed + 1)
    n, c = labels_shape
    y = rng.dirichlet(np.full(c, 0.5), n)
    if n >= 3:
        y[0] = np.eye(c)[0]
        y[1] = np.eye(c)[c - 1] * 0.9 + 0.1 / c
    return y


def bce_regimes(dtype, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (logits (n,) in dtype, targets (n,) in [0, 1])."""
    rng = np.random.default_rng(seed)
    n = 64
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for scale in (1, 10, 100, 1000):
        out[f"normal_{scale}_hard"] = (rng.normal(0, scale, n), rng.integers(0, 2, n).astype(float))
        out[f"normal_{scale}_soft"] = (rng.normal(0, scale, n), rng.uniform(0, 1, n))
    y = rng.integers(0, 2, n).astype(float)
    sign = np.where(y == 1, 1.0, -1.0)
    mag = rng.uniform(20, 90, n)
    out["confident_right"] = (sign * mag, y)
    out["confident_wrong"] = (-sign * mag, y)
    out["near_zero"] = (rng.normal(0, 1e-6, n), rng.integers(0, 2, n).astype(float))
    out["near_zero_soft"] = (rng.normal(0, 1e-3, n), rng.uniform(0, 1, n))
    big, big_name = _huge(dtype)
    out[big_name] = (rng.choice([-big, big], n) * rng.uniform(0.5, 1, n), y)
    return {k: (z.astype(dtype), t.astype(dtype)) for k, (z, t) in out.items()}
