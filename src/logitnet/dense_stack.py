"""Inference on a few rows through a plain stack of Dense layers in one compiled call
(`logitnet[fast]`, ops._kernels.dense_stack): below a few tens of thousands of multiply-adds the
per-layer calls cost more than the arithmetic."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .layers import Dense, Dropout, Flatten
from .ops import fast

# At most this many multiply-adds (rows × the net's) go through the compiled call (measured:
# 784-25-15-10, one row 10.7 µs against 17.1; two rows 16.0 against 18.4; four, slower).
FEW_MACS = 48_000


@dataclass
class DenseStack:
    """The Dense layers, their activations when planned, the kernel's arguments (starts, dims,
    biased, relu) and the multiply-adds per row."""

    layers: list
    names: list
    args: tuple
    macs: int

    @classmethod
    def plan(cls, steps: list, flat: object) -> DenseStack | None:
        """The stack when inference is Dense layers with ReLU or no activation (Dropout passes rows
        through, a Flatten before them reshapes them), else None. steps: the model's forward plan;
        flat: its FlatParameters."""
        start_of = {id(layer): sl.start for layer, sl in zip(flat.layers, flat.slices)}
        dense, names, starts, dims, biased, relu = [], [], [], [], [], []
        for layer, forward_kwargs, _, _ in steps:
            if isinstance(layer, Dropout) or (isinstance(layer, Flatten) and not dense):
                continue
            name = layer.activation_name if isinstance(layer, Dense) else None
            if name not in ("relu", "linear") and forward_kwargs.get("activate", True):
                return None
            dense.append(layer)
            names.append(name)
            starts.append(start_of[id(layer)])
            dims.append(layer.in_shape[0])
            biased.append(layer.use_bias)
            relu.append(name == "relu" and forward_kwargs["activate"])
        if not dense:
            return None
        dims.append(dense[-1].units)
        args = (np.array(starts, np.int64), np.array(dims, np.int64), np.array(biased), np.array(relu))
        return cls(dense, names, args, sum(a * b for a, b in itertools.pairwise(dims)))

    def logits(self, x: np.ndarray, params: np.ndarray) -> np.ndarray | None:
        """Logits (n, units) for a few checked rows x, or None where the compiled call does not
        apply (too many rows, no kernels, an activation changed since the plan)."""
        if len(x) * self.macs > FEW_MACS:
            return None
        kernels = fast.for_dtype(params.dtype)
        if kernels is None:
            return None
        for layer, name in zip(self.layers, self.names):
            if layer.activation_name != name:
                return None
        out = np.empty((len(x), self.layers[-1].units), params.dtype)
        kernels.dense_stack(x.reshape(len(x), -1), params, *self.args, out)
        return out
