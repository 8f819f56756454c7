"""The Layer protocol every layer follows, as Keras' `Layer`, and the input layer.

A layer is built for a feature shape (the sample's shape, without the batch axis) and then:
- `forward(x, training)` maps a batch (n, *in_shape) to (n, *out_shape); in training it keeps
  what `backward` needs, otherwise it keeps nothing, so threads may share the layer;
- `backward(grad_out, need_input_grad)` fills its weights' gradients and returns dL/dx;
- its trainable numbers (`flat_shapes`) live in the model's one flat parameter buffer
  (`params.py`), as views; other weights (Normalization's statistics) it keeps itself.
Called on its own, `layer(x)` builds it from x's shape (its flat weights then live in a small
buffer of its own) and returns a Tensor, as a Keras layer called eagerly does.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .. import backend
from ..tensor import SymbolicTensor, Tensor, plain

FeatureShape = tuple[int, ...]
_LEGACY_KWARGS = ("input_shape", "input_dim", "batch_input_shape", "batch_size")


def feature_shape(shape: object, what: str = "input shape") -> FeatureShape:
    """A sample's shape (d1, d2, ...) from a Keras shape: (None, d), (batch, d1, ...), or (d,).

    A leading None is the batch axis; so is the first entry of a shape with two or more
    entries (Keras' `build((32, 784))`); a one-entry shape (d,) is the features alone, the
    form `Sequential.build((n_features,))` has always taken.
    """
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if len(dims) >= 2 or (dims and dims[0] is None):
        dims = dims[1:]
    if not dims or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1 for d in dims):
        raise ValueError(f"{what} must give positive feature sizes, e.g. (n_features,) or (None, n_features); "
                         f"got {shape!r}")
    return tuple(int(d) for d in dims)


def _snake(name: str) -> str:
    """Keras' default layer names: Dense -> dense, LeakyReLU -> leaky_re_lu, InputLayer -> input_layer."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


class Layer:
    """Base class of logitnet's layers (Keras' Layer protocol)."""

    has_flat_weights = False  # True for layers whose trainable numbers sit in the model's buffer

    def __init__(self, name: str | None = None, trainable: bool = True, dtype: object | None = None,
                 **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(_LEGACY_KWARGS))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected keyword argument(s) {unknown}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"a layer name must be a non-empty string, got {name!r}")
        self._name = name
        self.trainable = bool(trainable)
        self.dtype = backend.default_dtype(dtype)
        self.built = False
        self.declared_shape: FeatureShape | None = None  # from input_shape= / input_dim=
        if kwargs.get("input_shape") is not None:
            self.declared_shape = feature_shape((None, *tuple(kwargs["input_shape"])), "input_shape")
        elif kwargs.get("batch_input_shape") is not None:
            self.declared_shape = feature_shape(kwargs["batch_input_shape"], "batch_input_shape")
        elif kwargs.get("input_dim") is not None:
            self.declared_shape = feature_shape((None, kwargs["input_dim"]), "input_dim")
        self.in_shape: FeatureShape | None = None
        self.out_shape: FeatureShape | None = None
        self._cache: Any = None
        self._own_flat: tuple[np.ndarray, np.ndarray] | None = None

    # --- identity -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The layer's name: given, assigned by its model, or its class in snake case."""
        return self._name or _snake(type(self).__name__)

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    # --- shapes -------------------------------------------------------------------------------
    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """The output shape for `input_shape` (Keras' spelling, batch axis first)."""
        batch = tuple(input_shape)[:1] if len(tuple(input_shape)) >= 2 or tuple(input_shape)[:1] == (None,) else (None,)
        return batch + self.output_features(feature_shape(input_shape))

    def output_features(self, in_shape: FeatureShape) -> FeatureShape:
        """The sample shape this layer outputs for samples of `in_shape`."""
        return in_shape

    @property
    def input(self) -> SymbolicTensor:
        """The input as Keras describes it: `.shape` (None, *features), `.dtype`."""
        self._require_built("input")
        return SymbolicTensor((None, *self.in_shape), self.dtype, f"{self.name}_input")

    @property
    def output(self) -> SymbolicTensor:
        """The output as Keras describes it: `.shape` (None, *features), `.dtype`."""
        self._require_built("output")
        return SymbolicTensor((None, *self.out_shape), self.dtype, self.name)

    @property
    def input_shape(self) -> tuple:
        self._require_built("input_shape")
        return (None, *self.in_shape)

    @property
    def output_shape(self) -> tuple:
        self._require_built("output_shape")
        return (None, *self.out_shape)

    def _require_built(self, what: str) -> None:
        if not self.built:
            raise AttributeError(f"layer {self.name!r} has no {what} yet: it is not built (call it on "
                                 "data, build it, or put it in a model that has an input shape)")

    # --- building -----------------------------------------------------------------------------
    def flat_shapes(self, in_shape: FeatureShape) -> list[tuple[int, ...]]:
        """Shapes of the trainable weights kept in the model's flat buffer (Keras order)."""
        return []

    def check_input(self, in_shape: FeatureShape) -> FeatureShape:
        """Check that samples of `in_shape` suit this layer (allocating nothing); their output shape."""
        return self.output_features(in_shape)

    def nonnegative_weights(self) -> dict[int, str]:
        """Which of the layer's own weights (by index in `own_shapes`) may hold no negative value,
        and what each is (none by default)."""
        return {}

    def validate_weights(self, arrays: list[np.ndarray]) -> None:
        """Refuse values the layer cannot hold (arrays already have the right shapes), before any is set."""

    def own_shapes(self, in_shape: FeatureShape) -> list[tuple[tuple[int, ...], str]]:
        """(shape, dtype kind) of the weights the layer keeps itself, Keras order (none by default)."""
        return []

    def bind(self, params: np.ndarray, grads: np.ndarray) -> None:
        """Attach views of this layer's slice of a flat parameter buffer and its gradients."""

    def initialize(self, rng: np.random.Generator) -> None:
        """Draw the initial values of the flat weights from `rng`, in place."""

    def build_state(self, in_shape: FeatureShape) -> None:
        """Create the weights this layer keeps itself (none by default) for samples of `in_shape`."""

    def set_rng(self, seed: object) -> None:
        """Give a layer that draws random numbers in training (Dropout) its generator."""

    def set_dtype(self, dtype: object) -> None:
        """Change the dtype of a built layer (a model of another dtype adopts it)."""
        self.dtype = np.dtype(dtype)

    def configure(self, in_shape: FeatureShape, dtype: np.dtype) -> None:
        """Fix the input shape and dtype (checks them; allocates nothing in the flat buffer)."""
        self.out_shape = self.check_input(in_shape)
        self.in_shape = in_shape
        self.dtype = np.dtype(dtype)
        self.build_state(in_shape)
        self.built = True

    def build(self, input_shape: object) -> None:
        """Build on its own for `input_shape` (Keras' spelling: (None, d) or (d,)): create and
        initialise the weights in a buffer of its own. A model rebinds them into its buffer."""
        in_shape = feature_shape(input_shape)
        if self.built:
            if in_shape != self.in_shape:
                raise ValueError(f"layer {self.name!r} was built for inputs of shape {self.input_shape}, "
                                 f"got {(None, *in_shape)}")
            return
        self.configure(in_shape, self.dtype)
        size = sum(int(np.prod(s)) for s in self.flat_shapes(in_shape))
        if size:
            self._own_flat = (np.zeros(size, self.dtype), np.zeros(size, self.dtype))
            self.bind(*self._own_flat)
            self.initialize(np.random.default_rng(backend.draw_seed()))
        self.set_rng(backend.draw_seed(getattr(self, "seed", None)))

    # --- computation --------------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        """x (n, *in_shape) -> (n, *out_shape)."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        """From dL/d(output), fill the weight gradients and return dL/dx (or None)."""
        raise NotImplementedError(f"{type(self).__name__} does not define backward()")

    def __call__(self, x: object, training: bool = False) -> Tensor:
        """The layer applied to a batch x (n, *features), building it first if needed -> Tensor."""
        arr = plain(x)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"layer {self.name!r} takes numbers, got dtype {arr.dtype}")
        if arr.ndim < 2:
            raise ValueError(f"layer {self.name!r} takes a batch of shape (n_samples, *features), got shape "
                             f"{arr.shape}; a single sample x needs x.reshape(1, -1)")
        if not self.built:
            self.build((None, *arr.shape[1:]))
        if arr.shape[1:] != self.in_shape:
            raise ValueError(f"layer {self.name!r} expects inputs of shape {self.input_shape}, got {arr.shape}")
        x_in = np.ascontiguousarray(arr, dtype=self.dtype)
        out = self.forward(x_in, training=bool(training))
        # A fresh result: not a training work buffer, and never the caller's own array.
        fresh = training or out is x_in or np.may_share_memory(out, arr)
        return np.array(out, copy=True).view(Tensor) if fresh else np.asarray(out).view(Tensor)

    # --- weights ------------------------------------------------------------------------------
    def own_weights(self) -> list[np.ndarray]:
        """The weights this layer keeps itself (not in the flat buffer), Keras order."""
        return []

    def flat_weights(self) -> list[np.ndarray]:
        """Views of the weights in the flat buffer, Keras order."""
        return []

    @property
    def weights(self) -> list[np.ndarray]:
        """All weight arrays (views), Keras order: the flat ones, then the layer's own."""
        return self.flat_weights() + self.own_weights()

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        return self.flat_weights() if self.trainable else []

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        return self.own_weights() + ([] if self.trainable else self.flat_weights())

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights, Keras order ([] before the layer is built)."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: list) -> None:
        """Replace the weights (Keras order); every shape must match and every value be finite."""
        current = self.weights
        if not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet: call it on data or build it before "
                             "set_weights")
        set_arrays(current, weights, f"layer {self.name!r}: ", self.validate_weights)
        self.weights_changed()

    def weights_changed(self) -> None:
        """Called after the layer's weights were replaced (Normalization refreshes its divisor)."""

    def count_params(self) -> int:
        """Number of scalar weights (ValueError before the layer is built, as Keras)."""
        if not self.built:
            raise ValueError(f"count_params() was called on layer {self.name!r}, which is not built yet: "
                             "call it on data or build it first")
        return int(sum(w.size for w in self.weights))

    def penalty(self) -> float:
        """This layer's regularization loss term (0 without a regularizer)."""
        return 0.0

    # --- configuration ------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-friendly."""
        return {"name": self._name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Rebuild a layer from `get_config()`'s dict."""
        return cls(**config)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_cache"] = None
        return state

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}, built={self.built}>"


def set_arrays(current: list[np.ndarray], weights: list, what: str, validate=None, order: str = "") -> None:
    """Copy `weights` into the arrays `current`, after checking count, shapes, finiteness and
    (`validate`, given the new arrays) what the layers require; nothing is changed if a check fails.
    Messages start with `what` ('layer 'L1': ', or '' for a model); `order` hints at the layout."""
    if len(weights) != len(current):
        raise ValueError(f"{what}expected {len(current)} weight arrays{order}, got {len(weights)}")
    arrays = [np.asarray(w) for w in weights]
    for i, (new, old) in enumerate(zip(arrays, current)):
        if new.shape != old.shape:
            raise ValueError(f"{what}weight {i} has shape {new.shape}, expected {old.shape}")
        if new.dtype.kind not in "biuf" or not np.isfinite(new).all():
            raise ValueError(f"{what}weight {i} must hold finite numbers")
    if validate is not None:
        validate(arrays)
    for new, old in zip(arrays, current):
        old[...] = new


class InputLayer(Layer):
    """Keras' InputLayer: declares the shape of the samples a Sequential model takes."""

    def __init__(self, shape: object = None, batch_size: int | None = None, dtype: object | None = None,
                 name: str | None = None, input_shape: object = None, batch_shape: object = None,
                 **kwargs: Any) -> None:
        kwargs.pop("sparse", None), kwargs.pop("ragged", None)
        super().__init__(name=name, dtype=dtype, **kwargs)
        if shape is None:
            shape = input_shape
        if shape is None and batch_shape is not None:
            shape = tuple(batch_shape)[1:]
        if shape is None:
            raise ValueError("InputLayer needs shape=(n_features,) (or batch_shape=(None, n_features))")
        dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        self.shape = feature_shape((None, *dims), "Input shape")
        self.batch_size = batch_size
        self.configure(self.shape, self.dtype)

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        return x

    def backward(self, grad_out: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        return grad_out if need_input_grad else None

    def get_config(self) -> dict[str, Any]:
        return {"name": self._name, "shape": list(self.shape), "dtype": self.dtype.name}


class KerasInput(SymbolicTensor):
    """What `Input(shape=...)` returns: the symbolic input (shape (None, *features)) of its
    InputLayer, which a Sequential model takes as its first entry."""

    def __init__(self, layer: InputLayer) -> None:
        super().__init__((None, *layer.shape), layer.dtype, layer.name)
        self.layer = layer


def Input(shape: object = None, batch_size: int | None = None, dtype: object | None = None,
          name: str | None = None, batch_shape: object = None, **kwargs: Any) -> KerasInput:
    """Keras' `Input(shape=(d,))`: the model's input, for the first entry of a Sequential."""
    return KerasInput(InputLayer(shape, batch_size=batch_size, dtype=dtype, name=name,
                                 batch_shape=batch_shape, **kwargs))
