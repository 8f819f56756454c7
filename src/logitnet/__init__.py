"""logitnet: neural-network classifiers whose losses and gradients are computed from logits, exactly.

The package reads as Keras does: `import logitnet as keras` (or `from logitnet.layers import
Dense`) runs code written for `keras` / `tensorflow.keras`; `logitnet.tf` holds the TensorFlow
names course code uses (`import logitnet.tf as tf`).
"""

from . import (
    activations,
    backend,
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
    utils,
)
from .layers import Dense, Input, InputLayer
from .model import Sequential

__version__ = "0.1.0"

__all__ = [
    "Dense",
    "Input",
    "InputLayer",
    "Sequential",
    "__version__",
    "activations",
    "backend",
    "callbacks",
    "datasets",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "optimizers",
    "regularizers",
    "utils",
]
