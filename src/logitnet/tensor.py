"""What stands in for TensorFlow's tensors: arrays that answer `.numpy()`, and shapes that
answer `.as_list()`.

`Tensor` is an ndarray (everything NumPy does works on it) returned where TensorFlow returns a
tensor: `model(x)`, `layer(x)`, the activation functions, `tf.nn.*`. `predict` returns a plain
ndarray, as in Keras. `SymbolicTensor` is what `layer.input` / `layer.output` describe: a shape
(with None for the batch) and a dtype, as Keras' KerasTensor.
"""

from __future__ import annotations

import numpy as np


class Tensor(np.ndarray):
    """An ndarray with TensorFlow's `.numpy()` (a plain ndarray of the same values)."""

    def numpy(self) -> np.ndarray:
        """The values as a plain ndarray (a view, as TensorFlow's eager tensors share memory)."""
        return self.view(np.ndarray)

    def __repr__(self) -> str:
        arr = self.view(np.ndarray)
        return f"<Tensor: shape={arr.shape}, dtype={arr.dtype.name}, numpy=\n{arr!r}>"

    def __str__(self) -> str:  # print(t), as TensorFlow shows an eager tensor
        arr = self.view(np.ndarray)
        if arr.ndim == 0:
            return str(arr)
        return f"Tensor(\n{arr}, shape={arr.shape}, dtype={arr.dtype.name})"


def tensor(x: object, dtype: object | None = None) -> Tensor:
    """`x` as a Tensor (no copy when it is already an array of that dtype)."""
    return np.asarray(x, dtype=dtype).view(Tensor)


def plain(x: object) -> np.ndarray:
    """`x` as a plain ndarray: a Tensor's view, or np.asarray of anything else."""
    return x.view(np.ndarray) if isinstance(x, np.ndarray) else np.asarray(x)


class TensorShape(tuple):
    """A shape tuple, None for an unknown (batch) size, with TensorFlow's `as_list()`."""

    def as_list(self) -> list[int | None]:
        """The dimensions as a list, as TensorFlow's TensorShape.as_list()."""
        return list(self)

    @property
    def rank(self) -> int:
        return len(self)

    def __repr__(self) -> str:
        return f"TensorShape({list(self)})"


class SymbolicTensor:
    """A layer's input or output as Keras describes it: `.shape` (None, ...) and `.dtype`."""

    def __init__(self, shape: tuple[int | None, ...], dtype: object, name: str) -> None:
        self.shape = TensorShape(shape)
        self.dtype = np.dtype(dtype).name
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape={tuple(self.shape)}, dtype={self.dtype}, name={self.name}>"
