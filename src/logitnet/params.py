"""The model's flat parameter buffer: every trainable number of every layer in one contiguous
array, and the gradients in another of the same layout; each layer's kernel and bias are views.

An optimizer step is then a few vectorised operations over the whole model. Layers that are not
trainable (`layer.trainable = False`) keep their slice, and the model puts their values back
after each step, so they never move whatever the optimizer's state holds.
"""

from __future__ import annotations

import numpy as np


class FlatParameters:
    """Parameters (n,) and gradients (n,) of `layers`, laid out in layer order, Keras order within."""

    def __init__(self, layers: list, dtype: np.dtype) -> None:
        self.layers = layers
        self.slices: list[slice] = []
        offset = 0
        for layer in layers:
            size = sum(int(np.prod(s)) for s in layer.flat_shapes(layer.in_shape))
            self.slices.append(slice(offset, offset + size))
            offset += size
        self.params = np.zeros(offset, dtype)
        self.grads = np.zeros(offset, dtype)
        self.bind()

    def bind(self) -> None:
        """(Re)attach each layer's views; needed after the buffers were replaced or unpickled."""
        for layer, sl in zip(self.layers, self.slices):
            if sl.stop > sl.start:
                layer.bind(self.params[sl], self.grads[sl])

    def frozen(self) -> list[slice]:
        """The slices of the layers that must not move in training."""
        return [sl for layer, sl in zip(self.layers, self.slices) if not layer.trainable and sl.stop > sl.start]

    @property
    def size(self) -> int:
        return int(self.params.size)
