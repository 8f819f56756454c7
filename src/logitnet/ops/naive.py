"""The naive twins: probabilities first, then the log - what the seed notes warn against.

Each mirrors an exact op in logitnet.ops and computes, in the input's dtype, the activation
(the usual max-shifted softmax, or 1 / (1 + exp(−z))) and then the cross-entropy of those
rounded probabilities, as a framework does when the loss is given probabilities
(from_logits=False). Kept only to show the difference (`logitnet numerics`, tests); never used
for training.
"""

from __future__ import annotations

import numpy as np

from ._core import as_float_array


def naive_softmax(x: object, axis: int = -1) -> np.ndarray:
    """exp(x − max) / Σ exp(x − max) in the input dtype."""
    z = as_float_array(x, "x")
    with np.errstate(under="ignore", invalid="ignore"):
        e = np.exp(z - z.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)


def naive_sigmoid(x: object) -> np.ndarray:
    """1 / (1 + exp(−x)) in the input dtype."""
    z = as_float_array(x, "x")
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-z))


def naive_softmax_cross_entropy(logits: object, labels: object) -> tuple[np.ndarray, np.ndarray]:
    """−log(softmax(z)[y]) and p − onehot(y), from rounded probabilities; int labels (n,)."""
    p = naive_softmax(logits)
    y = np.asarray(labels, dtype=np.intp)
    p_true = np.take_along_axis(p, y[..., None], axis=-1)[..., 0]
    with np.errstate(divide="ignore"):
        loss = -np.log(p_true)
    grad = p.copy()
    np.put_along_axis(grad, y[..., None], (p_true - 1)[..., None], axis=-1)
    return loss, grad


def naive_sigmoid_binary_cross_entropy(logits: object, targets: object) -> tuple[np.ndarray, np.ndarray]:
    """−[y log σ + (1 − y) log(1 − σ)] and σ − y, from the rounded σ; elementwise."""
    s = naive_sigmoid(logits)
    y = np.asarray(targets, dtype=s.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        # 0·log(0) taken as 0, as every framework does.
        loss = -(np.where(y == 0, 0, y * np.log(s)) + np.where(y == 1, 0, (1 - y) * np.log(1 - s)))
    return loss.astype(s.dtype), s - y
