"""Cross-entropies from probabilities, computed honestly: log(p) as given, no clipping.

A probability of exactly 0 where the label has mass gives an infinite loss, with a warning that
says why and how to avoid it (pass logits). Terms with zero label mass are 0, never 0·log(0).
float16/float32 inputs are computed in float64 and rounded once.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._core import F64, as_float_array
from .sigmoid import check_targets
from .softmax_xent import check_int_labels, check_prob_labels


class InfiniteLossWarning(RuntimeWarning):
    """A probability of 0 (or 1) was given where the label needs the opposite: the loss is inf."""


def _check_probs(p: np.ndarray) -> None:
    if p.size and not ((p >= 0) & (p <= 1)).all():
        bad = p[~((p >= 0) & (p <= 1))].flat[0]
        if not np.isnan(bad):
            raise ValueError(
                f"probabilities must lie in [0, 1], got {bad.item()!r}; if these are logits "
                "(raw scores), use from_logits=True"
            )


def _xlog(weight: np.ndarray, logs: np.ndarray) -> np.ndarray:
    """−weight·logs with 0 where weight == 0; warns once when an infinite term appears."""
    with np.errstate(invalid="ignore"):
        terms = np.where(weight == 0, 0.0, -weight * logs)
    if np.isinf(terms).any():
        warnings.warn(
            "a predicted probability of exactly 0 was given for an outcome the labels say "
            "happened, so the cross-entropy is inf; probabilities rounded to 0 or 1 lose this "
            "information - pass the logits and use from_logits=True",
            InfiniteLossWarning,
            stacklevel=4,
        )
    return terms


def cross_entropy_from_probs(probs: object, labels: object) -> np.ndarray:
    """Per-sample −Σ_j y_j log(p_j). probs (..., C); labels int (...) or rows (..., C) -> (...)."""
    a = as_float_array(probs, "probabilities")
    if a.ndim == 0:
        raise ValueError("probabilities must have a class axis: expected shape (..., n_classes)")
    p = a.astype(F64, copy=False)
    _check_probs(p)
    lab = np.asarray(labels)
    if lab.shape == p.shape[:-1]:
        idx = check_int_labels(lab, p.shape[-1])
        p_true = np.take_along_axis(p, idx[..., None], axis=-1)[..., 0]
        with np.errstate(divide="ignore"):
            loss = _xlog(np.ones_like(p_true), np.log(p_true))
    elif lab.shape == p.shape:
        check_prob_labels(lab)
        y = lab.astype(F64, copy=False)
        with np.errstate(divide="ignore"):
            loss = _xlog(y, np.log(p)).sum(axis=-1)
    else:
        raise ValueError(
            f"labels must have shape {p.shape[:-1]} (class indices) or {p.shape} (probability rows) "
            f"for probabilities of shape {p.shape}; got {lab.shape}"
        )
    return loss.astype(a.dtype, copy=False)


def binary_cross_entropy_from_probs(probs: object, targets: object) -> np.ndarray:
    """Elementwise −[y log p + (1 − y) log(1 − p)], log(1 − p) as log1p(−p); shaped like probs."""
    a = as_float_array(probs, "probabilities")
    p = a.astype(F64, copy=False)
    _check_probs(p)
    y = check_targets(targets, p.shape)
    with np.errstate(divide="ignore"):
        loss = _xlog(y, np.log(p)) + _xlog(1.0 - y, np.log1p(-p))
    return loss.astype(a.dtype, copy=False)
