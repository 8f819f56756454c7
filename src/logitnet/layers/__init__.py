"""Keras' layers that Dense classifiers use, each following one protocol (`base.Layer`).

`LAYERS` is the registry by class name that model files and configs use.
"""

from .base import Input, InputLayer, KerasInput, Layer
from .core import (
    Activation,
    ActivationLayer,
    Dropout,
    Flatten,
    LeakyReLU,
    ReLU,
    Softmax,
)
from .dense import Dense
from .normalization import Normalization

LAYERS: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (InputLayer, Dense, Activation, ReLU, LeakyReLU, Softmax, Dropout, Normalization, Flatten)
}



def output_activation(layers: list[Layer]) -> tuple[str, dict, int]:
    """The activation the network ends with and how many of `layers` compute its input (the
    logits): a final activation layer is not run but fused with the loss, as is the last Dense
    layer's own activation (that layer runs without it)."""
    last = layers[-1]
    if isinstance(last, ActivationLayer):
        return last.activation_name, last.activation_params, len(layers) - 1
    if isinstance(last, Dense):
        return last.activation_name, {}, len(layers)
    return "linear", {}, len(layers)


__all__ = ["LAYERS", "Activation", "ActivationLayer", "Dense", "Dropout", "Flatten", "Input", "InputLayer",
           "KerasInput", "Layer", "LeakyReLU", "Normalization", "ReLU", "Softmax", "output_activation"]
