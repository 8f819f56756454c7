"""TensorFlow's `tf.nn` functions that course code calls, computed exactly by `logitnet.ops`.

Arguments keep TensorFlow's names (`logits`, `features`, `labels`); the cross-entropies take
`labels=` and `logits=` by keyword, as TensorFlow insists. Each returns a `Tensor`. The
activations carry the name of the logitnet activation they are, so `Dense(activation=tf.nn.relu)`
works.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import activations, ops
from ..tensor import Tensor, plain


def _as_activation(name: str) -> Callable[[Callable], Callable]:
    def mark(fn: Callable) -> Callable:
        fn._logitnet_activation = name
        return fn

    return mark


def _axis(axis: int | None) -> int:
    return -1 if axis is None else int(axis)


@_as_activation("softmax")
def softmax(logits: object, axis: int | None = None, name: str | None = None) -> Tensor:
    """exp(logits) / Σ exp(logits) over `axis` (the last by default), exact."""
    return activations.softmax(logits, axis=_axis(axis))


@_as_activation("log_softmax")
def log_softmax(logits: object, axis: int | None = None, name: str | None = None) -> Tensor:
    """logits − logsumexp(logits) over `axis` (the last by default), exact."""
    return activations.log_softmax(logits, axis=_axis(axis))


@_as_activation("sigmoid")
def sigmoid(x: object, name: str | None = None) -> Tensor:
    """1 / (1 + exp(−x)), exact."""
    return activations.sigmoid(x)


@_as_activation("relu")
def relu(features: object, name: str | None = None) -> Tensor:
    """max(features, 0)."""
    return activations.relu(features)


@_as_activation("leaky_relu")
def leaky_relu(features: object, alpha: float = 0.2, name: str | None = None) -> Tensor:
    """features for features >= 0, alpha·features below."""
    return activations.leaky_relu(features, negative_slope=alpha)


@_as_activation("tanh")
def tanh(x: object, name: str | None = None) -> Tensor:
    """The hyperbolic tangent."""
    return activations.tanh(x)


@_as_activation("elu")
def elu(features: object, name: str | None = None) -> Tensor:
    """features for features > 0, exp(features) − 1 below."""
    return activations.elu(features)


@_as_activation("gelu")
def gelu(features: object, approximate: bool = False, name: str | None = None) -> Tensor:
    """features·Φ(features) (or the tanh approximation)."""
    return activations.gelu(features, approximate=approximate)


@_as_activation("softplus")
def softplus(features: object, name: str | None = None) -> Tensor:
    """log(1 + exp(features)), exact."""
    return activations.softplus(features)


@_as_activation("silu")
def silu(features: object, beta: float = 1.0, name: str | None = None) -> Tensor:
    """features·sigmoid(beta·features)."""
    if beta != 1.0:
        x = plain(features)
        return (x * ops.sigmoid(np.asarray(beta, x.dtype) * x)).view(Tensor)
    return activations.silu(features)


swish = silu


def softmax_cross_entropy_with_logits(*, labels: object, logits: object, axis: int = -1,
                                      name: str | None = None) -> Tensor:
    """−Σ labels·log_softmax(logits) over `axis`, per example, exact: labels and logits (..., C) -> (...)."""
    z = np.moveaxis(plain(logits), axis, -1)
    y = np.moveaxis(plain(labels), axis, -1)
    if y.shape != z.shape:
        raise ValueError(f"labels of shape {y.shape} must match logits of shape {z.shape}; for class "
                         "indices use sparse_softmax_cross_entropy_with_logits")
    return np.asarray(ops.softmax_cross_entropy(z, y, need_grad=False)[0]).view(Tensor)


def sparse_softmax_cross_entropy_with_logits(*, labels: object, logits: object, name: str | None = None) -> Tensor:
    """−log_softmax(logits)[label] per example, exact: labels int (...), logits (..., C) -> (...)."""
    return np.asarray(ops.softmax_cross_entropy(plain(logits), plain(labels), need_grad=False)[0]).view(Tensor)


def sigmoid_cross_entropy_with_logits(*, labels: object, logits: object, name: str | None = None) -> Tensor:
    """max(z, 0) − z·y + log1p(exp(−|z|)) element-wise, exact: labels and logits of one shape."""
    z, y = plain(logits), plain(labels)
    if y.shape != z.shape:
        raise ValueError(f"labels of shape {y.shape} must match logits of shape {z.shape}")
    return np.asarray(ops.sigmoid_binary_cross_entropy(z, y)[0]).view(Tensor)


__all__ = ["elu", "gelu", "leaky_relu", "log_softmax", "relu", "sigmoid", "sigmoid_cross_entropy_with_logits",
           "silu", "softmax", "softmax_cross_entropy_with_logits", "softplus", "sparse_softmax_cross_entropy_with_logits",
           "swish", "tanh"]
