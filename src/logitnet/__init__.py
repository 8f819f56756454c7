"""logitnet: neural-network classifiers whose losses and gradients are computed from logits, exactly."""

from . import losses, ops

__version__ = "0.1.0"

__all__ = ["losses", "ops", "__version__"]
