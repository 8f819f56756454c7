"""Datasets: the bundled handwritten digits and the lecture's generated sets, as NumPy arrays."""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np

SCENE_LABELS = ("car", "bus", "pedestrian")
# Attributes of each digit's class, several true at once: the multi-label version of the digits.
DIGIT_ATTRIBUTES = ("even", "prime", "loop", "large")
_ATTRIBUTE_SETS = ({0, 2, 4, 6, 8}, {2, 3, 5, 7}, {0, 6, 8, 9}, {5, 6, 7, 8, 9})


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """UCI optical digits (bundled, see data/SOURCES.md): x (1797, 64) float32 in [0, 1], y (1797,) int64."""
    with resources.files(__package__).joinpath("data/digits.csv.gz").open("rb") as raw, \
            gzip.open(raw) as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.int64)
    return (table[:, :64] / 16.0).astype(np.float32), table[:, 64]


def load_digit_attributes() -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits with 4 labels each (multi-label): x (1797, 64), y (1797, 4) int64 0/1.

    Columns follow DIGIT_ATTRIBUTES: even (0 2 4 6 8), prime (2 3 5 7), loop (0 6 8 9: a closed
    loop as usually written) and large (5 to 9). A 6 is even, has a loop and is large.
    """
    x, digit = load_digits()
    y = np.array([[d in members for members in _ATTRIBUTE_SETS] for d in digit], dtype=np.int64)
    return x, y


def make_blobs(n_samples: int = 2000, centers: object = ((-5, 2), (-2, -2), (1, 2), (5, -2)),
               std: float = 1.0, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The lecture's 4-class blobs: x (n, 2) float32 around `centers` with spread `std`, y (n,) int64."""
    rng = np.random.default_rng(seed)
    c = np.asarray(centers, dtype=np.float64)
    y = rng.integers(0, len(c), n_samples)
    return (c[y] + rng.normal(0.0, std, (n_samples, c.shape[1]))).astype(np.float32), y


def make_scenes(n_samples: int = 2000, n_features: int = 20, noise: float = 1.0,
                seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Multi-label 'scenes' as in the lecture: is there a car, a bus, a pedestrian (any number)?

    Each object is present independently (probabilities 0.5, 0.3, 0.4) and adds its own random
    signature to the features, plus Gaussian noise. x (n, n_features) float32, y (n, 3) int64 0/1.
    """
    rng = np.random.default_rng(seed)
    signatures = rng.normal(0.0, 1.0, (len(SCENE_LABELS), n_features))
    y = (rng.random((n_samples, len(SCENE_LABELS))) < [0.5, 0.3, 0.4]).astype(np.int64)
    x = y @ signatures + rng.normal(0.0, noise, (n_samples, n_features))
    return x.astype(np.float32), y
