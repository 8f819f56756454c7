"""Dense: z = x·W + b, then an activation; x (n, in) -> (n, units).

The kernel (in, units) and bias (units,) are views into a flat parameter buffer, and their
gradients views into the flat gradient buffer, so an optimizer step is a few vectorised
operations over the whole model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import activations, initializers, regularizers
from ..ops import fast
from .base import FeatureShape, Layer

_ZERO = np.zeros((), np.float32)  # a 0-d array: NumPy handles it faster than the Python scalar 0
_NO_BIAS = {t: np.empty(0, t) for t in "fd"}  # bias_relu's "no bias to add", by dtype char


class Dense(Layer):
    """A fully connected layer: outputs activation(x·kernel + bias), x (n, in) -> (n, units)."""

    has_flat_weights = True

    def __init__(
        self,
        units: int,
        activation: object = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        kernel_regularizer: str | regularizers.Regularizer | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"Dense units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = activation
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.kernel = self.bias = self.kernel_grad = self.bias_grad = None
        self._kernel_bias = self._kernel_bias_grad = None
        self._buffers: dict = {}  # work arrays by row count: n (forward), ("backward", n)

    @property
    def activation(self):
        """The activation function (`layer.activation == relu`, `.__name__` works, as in Keras)."""
        return activations.get(self.activation_name)

    @activation.setter
    def activation(self, identifier: object) -> None:
        self.activation_name = activations.name_of(identifier)

    @property
    def input_dim(self) -> int | None:
        """The width of the inputs once built (or declared with input_dim= / input_shape=)."""
        shape = self.in_shape or self.declared_shape
        return None if shape is None else shape[0]

    # --- parameters -------------------------------------------------------------------------
    def output_features(self, in_shape: FeatureShape) -> FeatureShape:
        if len(in_shape) != 1:
            raise ValueError(f"Dense layer {self.name!r} takes inputs of shape (n_samples, n_features); got "
                             f"samples of shape {in_shape}: put a Flatten() layer before it")
        return (self.units,)

    def flat_shapes(self, in_shape: FeatureShape) -> list[tuple[int, ...]]:
        """Kernel (in, units), then bias (units,) when the layer has one (Keras order)."""
        return [(in_shape[0], self.units)] + ([(self.units,)] if self.use_bias else [])

    def bind(self, params: np.ndarray, grads: np.ndarray) -> None:
        """The slice holds the kernel (in, units) then the bias (units,): together one (in + 1,
        units) matrix, so an input ending in a column of ones needs one GEMM for x·W + b."""
        d = self.in_shape[0]
        rows = d + (1 if self.use_bias else 0)
        self._kernel_bias = params.reshape(rows, self.units)
        self._kernel_bias_grad = grads.reshape(rows, self.units)
        self.kernel, self.kernel_grad = self._kernel_bias[:d], self._kernel_bias_grad[:d]
        if self.use_bias:
            self.bias, self.bias_grad = self._kernel_bias[d], self._kernel_bias_grad[d]
        self._buffers = {}

    def initialize(self, rng: np.random.Generator) -> None:
        """Draw the initial kernel and bias from `rng`, in place."""
        self.kernel[...] = initializers.initialize(self.kernel_initializer, self.kernel.shape, rng, self.kernel.dtype)
        if self.use_bias:
            self.bias[...] = initializers.initialize(self.bias_initializer, self.bias.shape, rng, self.bias.dtype)

    def flat_weights(self) -> list[np.ndarray]:
        """[kernel, bias] (views, Keras order)."""
        return [w for w in (self.kernel, self.bias) if w is not None]

    def penalty(self) -> float:
        """The kernel regularizer's loss term (0 without one)."""
        return 0.0 if self.kernel_regularizer is None else self.kernel_regularizer.penalty(self.kernel)

    # --- computation ------------------------------------------------------------------------
    def _backward_buffers(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """For n rows: the ReLU mask (n, units) and dL/dx (n, in), kept like the forward buffers."""
        key = ("backward", n)
        bufs = self._buffers.get(key)
        if bufs is None:
            bufs = self._buffers[key] = (np.empty((n, self.units), np.bool_),
                                         np.empty((n, self.in_shape[0]), self.kernel.dtype))
        return bufs

    def _forward_buffers(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For n rows: z (n, units), and the augmented output (n, units + 1) ending in ones with
        its view (n, units). Kept for the last few batch sizes (a batch and the last, short one)."""
        bufs = self._buffers.get(n)
        if bufs is None:
            if len(self._buffers) > 8:
                self._buffers.clear()
            out = np.ones((n, self.units + 1), self.kernel.dtype)
            bufs = self._buffers[n] = (np.empty((n, self.units), self.kernel.dtype), out, out[:, :self.units])
        return bufs

    def _new_buffers(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fresh arrays shaped as `_forward_buffers(n)`'s, for a forward pass that keeps nothing."""
        out = np.ones((n, self.units + 1), self.kernel.dtype)
        return np.empty((n, self.units), self.kernel.dtype), out, out[:, :self.units]

    def forward(self, x: np.ndarray, training: bool = True, activate: bool = True,
                augment: bool = False) -> np.ndarray:
        """x (n, in) -> outputs (n, units); with activate=False the pre-activation z (a head's logits).

        x may also be (n, in + 1) ending in a column of ones, which folds the bias into the GEMM;
        augment=True returns such an array, (n, units + 1), for the next layer. In training the
        result lives in a work buffer that the next forward pass overwrites, and the inputs are
        kept for `backward`. With training=False the pass writes only fresh arrays and keeps
        nothing, so any number of threads may run it at once.
        """
        n = len(x)
        folded = x.shape[1] != self.in_shape[0]
        if folded and not self.use_bias:
            x, folded = x[:, :-1], False
        z, out, out_units = self._forward_buffers(n) if training else self._new_buffers(n)
        z = np.matmul(x, self._kernel_bias if folded else self.kernel, out=z)
        add_bias = self.use_bias and not folded
        if not augment:
            out = out_units = None
        activation = self.activation_name if activate else "linear"
        kernels = fast.for_dtype(z.dtype) if activation == "relu" and (add_bias or out is not None) else None
        if kernels is not None:  # bias and ReLU in one pass (in place and without a bias, NumPy's is faster)
            a = z if out is None else out_units
            kernels.bias_relu(z, self.bias if add_bias else _NO_BIAS[z.dtype.char], a)
        else:
            if add_bias:
                z += self.bias
            if activation == "relu":  # backward takes its mask from z > 0, z being contiguous
                a = np.maximum(z, _ZERO, out=z if out is None else out_units)
            elif activation == "linear":
                a = z
                if out is not None:
                    out_units[...] = z
            else:
                a = activations.forward(activation, z)
                if out is not None:
                    out_units[...] = a
        if training:
            self._cache = (x, z, a, folded)
        return a if out is None else out

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True, activate: bool = True) -> np.ndarray | None:
        """Given dL/d(output) (n, units), fill the weight gradients and return dL/dx (n, in).

        With activate=False, grad_out is dL/dz (the head already went through the activation).
        grad_out may be overwritten.
        """
        if self._cache is None:
            raise RuntimeError(f"layer {self.name!r}: backward() called before a training forward()")
        x, z, a, folded = self._cache
        activation = self.activation_name if activate else "linear"
        if activation == "linear":
            grad_z = grad_out
        elif activation == "relu":  # in place: one compiled pass, or with a mask buffer
            kernels = fast.for_dtype(grad_out.dtype)
            if kernels is not None:
                kernels.relu_backward(grad_out, z)
                grad_z = grad_out
            else:
                mask = np.greater(z, _ZERO, out=self._backward_buffers(len(z))[0])
                grad_z = np.multiply(grad_out, mask, out=grad_out)
        else:
            grad_z = activations.backward(activation, z, a, grad_out)
        if folded:  # [x, 1]ᵀ·grad_z gives the kernel's and the bias' gradients in one GEMM
            np.matmul(x.T, grad_z, out=self._kernel_bias_grad)
        else:
            np.matmul(x.T, grad_z, out=self.kernel_grad)
            if self.use_bias:
                np.add.reduce(grad_z, axis=0, out=self.bias_grad)
        if self.kernel_regularizer is not None:
            self.kernel_regularizer.add_gradient(self.kernel, self.kernel_grad)
        if not need_input_grad:
            return None
        return np.matmul(grad_z, self.kernel.T, out=self._backward_buffers(len(grad_z))[1])

    def __getstate__(self) -> dict[str, Any]:
        # The weights are views of a flat buffer, which the model (or the layer) pickles and rebinds.
        state = super().__getstate__()
        state.update(kernel=None, bias=None, kernel_grad=None, bias_grad=None, _kernel_bias=None,
                     _kernel_bias_grad=None, _buffers={})
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._own_flat is not None:
            self.bind(*self._own_flat)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-friendly (the activation by name)."""
        reg = self.kernel_regularizer
        return {
            "units": self.units, "activation": self.activation_name, "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer, "bias_initializer": self.bias_initializer,
            "kernel_regularizer": None if reg is None else reg.get_config(), "name": self._name,
            "trainable": self.trainable,
        }

    def __repr__(self) -> str:
        return f"Dense({self.units}, activation={self.activation_name!r}, name={self.name!r})"
