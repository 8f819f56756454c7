"""logitnet.ops: exact softmax / sigmoid primitives and cross-entropies from logits.

Pure functions on NumPy arrays, dtype-preserving (float16/32/64), reducing the last axis by
default. Losses and gradients are taken from the logits with formulas that lose no accuracy.
"""

from ._core import num_threads, set_num_threads
from .probs import (
    InfiniteLossWarning,
    binary_cross_entropy_from_probs,
    cross_entropy_from_probs,
)
from .sigmoid import log_sigmoid, sigmoid, sigmoid_binary_cross_entropy, softplus
from .softmax import log_softmax, logsumexp, softmax
from .softmax_xent import softmax_cross_entropy

__all__ = [
    "InfiniteLossWarning",
    "binary_cross_entropy_from_probs",
    "cross_entropy_from_probs",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "num_threads",
    "set_num_threads",
    "sigmoid",
    "sigmoid_binary_cross_entropy",
    "softmax",
    "softmax_cross_entropy",
    "softplus",
]
