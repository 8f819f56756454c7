"""logitnet: neural-network classifiers whose losses and gradients are computed from logits, exactly."""

from . import (
    activations,
    callbacks,
    datasets,
    initializers,
    layers,
    losses,
    metrics,
    models,
    ops,
    optimizers,
    regularizers,
)
from .layers import Dense, Input
from .model import Sequential

__version__ = "0.1.0"

__all__ = [
    "Dense", "Input", "Sequential", "activations", "callbacks", "datasets", "initializers", "layers", "losses",
    "metrics", "models", "ops", "optimizers", "regularizers", "__version__",
]
