"""`Sequential`: a stack of Dense layers with Keras' build, compile, fit, evaluate and predict.

All parameters live in one contiguous buffer (and their gradients in another), each layer's
kernel and bias being views into it, so an optimizer step is a few vectorised operations. The
last layer's activation is fused with the loss by the head (`head.py`).
"""

from __future__ import annotations

import contextlib
import numbers
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import activations, losses, optimizers, training
from . import callbacks as callbacks_mod
from . import metrics as metrics_mod
from .head import Head
from .layers import Dense, Input
from .ops._core import all_finite
from .training import DivergenceWarning

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Sequential:
    """Keras' Sequential model for Dense stacks. `seed` makes initialisation and shuffling repeatable."""

    def __init__(self, layers: list | None = None, name: str | None = None, seed: int | None = None,
                 dtype: str = "float32") -> None:
        if np.dtype(dtype) not in _DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.name = name or "sequential"
        self.dtype = np.dtype(dtype)
        self.seed = seed
        init_seq, shuffle_seq = np.random.SeedSequence(seed).spawn(2)
        self._init_rng = np.random.default_rng(init_seq)
        self.shuffle_rng = np.random.default_rng(shuffle_seq)
        self.layers: list[Dense] = []
        self.input_dim: int | None = None
        self.built = False
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: losses.Loss | None = None
        self.head: Head | None = None
        self.metric_names: list = []
        self.stop_training = False
        self.history: callbacks_mod.History | None = None
        self.metadata: dict[str, Any] = {}  # JSON-friendly notes saved with the model (class names, ...)
        self.diverged: str | None = None  # why the last training step was refused, if it was
        self._backup: np.ndarray | None = None
        self._make_locks()
        for layer in layers or []:
            self.add(layer)

    # --- structure ----------------------------------------------------------------------------
    def add(self, layer: Dense | Input) -> None:
        """Append a layer; an `Input` may only come first."""
        if self.built:
            raise ValueError("the model is already built; add every layer before building or training")
        if isinstance(layer, Input):
            if self.layers or self.input_dim is not None:
                raise ValueError("Input(...) must be the first entry of a Sequential model")
            self.input_dim = layer.shape[0]
            return
        if not isinstance(layer, Dense):
            raise TypeError(f"Sequential takes Input and Dense layers, got {layer!r}")
        if layer.input_dim is not None and not self.layers and self.input_dim is None:
            self.input_dim = layer.input_dim
        if layer.name is None:
            count = sum(1 for other in self.layers if other.name and other.name.startswith("dense"))
            layer.name = "dense" if count == 0 else f"dense_{count}"
        if any(layer.name == other.name for other in self.layers):
            raise ValueError(f"two layers are named {layer.name!r}; layer names must be unique")
        self.layers.append(layer)

    def build(self, input_shape: tuple[int, ...] | int | None = None) -> None:
        """Allocate and initialise the weights for samples of `input_shape` = (n_features,)."""
        if not self.layers:
            raise ValueError("the model has no layers: add Dense layers before building it")
        if input_shape is not None:
            dim = Input(input_shape if isinstance(input_shape, int) else input_shape[-1:]).shape[0]
            if self.input_dim is not None and dim != self.input_dim:
                raise ValueError(f"the model expects {self.input_dim} features, got input shape {input_shape}")
            self.input_dim = dim
        if self.input_dim is None:
            raise ValueError("the input width is unknown: start with Input(shape=(n_features,)), "
                             "call build((n_features,)), or call fit/predict on data")
        shapes, width = [], self.input_dim
        for layer in self.layers:
            shapes.append(layer.param_shapes(width))
            width = layer.units
        total = sum(int(np.prod(s)) for layer_shapes in shapes for s in layer_shapes)
        self.params = np.zeros(total, self.dtype)
        self.grads = np.zeros(total, self.dtype)
        self._bind_views()
        for layer in self.layers:
            layer.initialize(self._init_rng)
        self.built = True
        if self.optimizer is not None:
            self.optimizer.build(total, self.dtype)

    def _bind_views(self) -> None:
        """Give each layer views of its kernel and bias (and gradients) in the flat buffers."""
        offset, width = 0, self.input_dim
        for layer in self.layers:
            size = sum(int(np.prod(shape)) for shape in layer.param_shapes(width))
            layer.bind(width, self.params[offset:offset + size], self.grads[offset:offset + size])
            offset += size
            width = layer.units

    def _make_locks(self) -> None:
        # Training reuses work buffers and updates the weights in place: one thread at a time.
        # Building happens once, even when several threads predict on an unbuilt model.
        self._train_lock = threading.Lock()
        self._build_lock = threading.Lock()

    @contextlib.contextmanager
    def _training(self, what: str) -> Iterator[None]:
        """Hold the training lock for `what`, or refuse at once if another thread trains."""
        if not self._train_lock.acquire(blocking=False):
            raise RuntimeError(f"{what}: model {self.name!r} is already training in another thread; "
                               "train a model from one thread at a time (predict and evaluate may "
                               "run in any number of threads)")
        try:
            yield
        finally:
            self._train_lock.release()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_train_lock"], state["_build_lock"]  # locks do not pickle; a copy gets its own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Unpickled layers must view the unpickled buffers again, or updates would not reach them.
        self.__dict__.update(state)
        self._make_locks()
        if self.built:
            self._bind_views()

    @property
    def weights(self) -> list[np.ndarray]:
        """Every weight array in Keras order (W1, b1, W2, b2, ...), as views."""
        self._require_built()
        return [w for layer in self.layers for w in layer.weights]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights in Keras order."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Replace the weights (Keras order); every shape must match and every value be finite."""
        current = self.weights
        if len(weights) != len(current):
            raise ValueError(f"expected {len(current)} weight arrays (W1, b1, ...), got {len(weights)}")
        arrays = [np.asarray(w) for w in weights]
        for i, (new, old) in enumerate(zip(arrays, current)):
            if new.shape != old.shape:
                raise ValueError(f"weight {i} has shape {new.shape}, expected {old.shape}")
            if new.dtype.kind not in "biuf" or not np.isfinite(new).all():
                raise ValueError(f"weight {i} must hold finite numbers")
        for new, old in zip(arrays, current):
            old[...] = new

    def count_params(self) -> int:
        """Number of scalar parameters."""
        self._require_built()
        return int(self.params.size)

    def summary(self, print_fn=print) -> None:
        """Print the layers, their output shapes and parameter counts, as Keras does."""
        self._require_built()
        rows = [(f"{layer.name} (Dense, {layer.activation})", f"(None, {layer.units})",
                 f"{sum(w.size for w in layer.weights):,}") for layer in self.layers]
        head = ("Layer (type)", "Output Shape", "Param #")
        widths = [max(len(r[i]) for r in rows + [head]) + 2 for i in range(3)]
        line = "-" * sum(widths)
        out = [f'Model: "{self.name}"', line, "".join(h.ljust(w) for h, w in zip(head, widths)), line]
        out += ["".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        out += [line, f"Total params: {self.count_params():,} ({self.dtype.name})", line]
        print_fn("\n".join(out))

    # --- compile ------------------------------------------------------------------------------
    def compile(self, optimizer: str | optimizers.Optimizer = "rmsprop", loss: str | losses.Loss | None = None,
                metrics: list | None = None) -> None:
        """Choose the optimizer, the loss (fused with the output activation) and the metrics."""
        if not self.layers:
            raise ValueError("add layers before compiling the model")
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='sparse_categorical_crossentropy'")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        last = self.layers[-1]
        self.head = Head(last.activation, last.units, self.loss)
        self.metric_names = list(metrics or [])
        self._make_metrics()  # fail now on an unknown metric name
        if self.built:
            self.optimizer.build(self.params.size, self.dtype)

    def _make_metrics(self) -> list[metrics_mod.Metric]:
        return [metrics_mod.get(m, self.head.task) for m in self.metric_names]

    # --- data ---------------------------------------------------------------------------------
    def _features(self, x: object, name: str = "x") -> np.ndarray:
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
        if arr.ndim != 2:
            raise ValueError(f"{name} must have shape (n_samples, n_features), got shape {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError(f"{name} is empty: it has no samples")
        if not self.built:
            with self._build_lock:
                if not self.built:
                    self.build((arr.shape[1],))
        if arr.shape[1] != self.input_dim:
            raise ValueError(f"{name} has {arr.shape[1]} features but the model expects {self.input_dim}")
        out = np.ascontiguousarray(arr, dtype=self.dtype)
        if not all_finite(out):
            row, col = np.argwhere(~np.isfinite(out))[0]
            raise ValueError(f"{name} contains {out[row, col]} at row {row}, column {col}; "
                             "features must be finite")
        return out

    def _sample_weights(self, targets: np.ndarray, sample_weight: object,
                        class_weight: dict | None) -> np.ndarray | None:
        n = len(targets)
        weights = None
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            if weights.shape != (n,):
                raise ValueError(f"sample_weight must have one weight per sample ({n}), got shape "
                                 f"{np.shape(sample_weight)}")
            if not (np.isfinite(weights).all() and (weights >= 0).all()):
                raise ValueError("sample_weight must be finite and >= 0")
        if class_weight is not None:
            classes = self.head.class_of(targets)
            table = np.ones(int(classes.max()) + 1 if len(classes) else 1)
            for cls, w in dict(class_weight).items():
                if not (isinstance(w, numbers.Real) and np.isfinite(w) and w >= 0):
                    raise ValueError(f"class_weight[{cls!r}] must be finite and >= 0, got {w!r}")
                if int(cls) < len(table):
                    table[int(cls)] = w
            cw = table[classes]
            weights = cw if weights is None else weights * cw
        return None if weights is None else weights.astype(self.dtype)

    def _prepare(self, x: object, y: object, sample_weight: object = None, class_weight: dict | None = None):
        self._require_compiled()
        features = self._features(x)
        self.optimizer.build(self.params.size, self.dtype)  # a no-op when it already matches
        targets = self.head.check_targets(y, len(features), self.dtype)
        return features, targets, self._sample_weights(targets, sample_weight, class_weight)

    # --- computation --------------------------------------------------------------------------
    def _logits(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        """Logits (n, units) for x (n, d). Training passes reuse the layers' work buffers and keep
        what backward needs; training=False passes share nothing, so threads may run them at once."""
        a = x
        for layer in self.layers[:-1]:  # hidden outputs end in a column of ones (the bias)
            a = layer.forward(a, augment=True, training=training)
        return self.layers[-1].forward(a, activate=False, training=training)

    def _backward(self, grad_z: np.ndarray) -> None:
        grad = grad_z
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            grad = self.layers[i].backward(grad, activate=i != last, need_input_grad=i > 0)

    def _penalty(self) -> float:
        return sum([layer.penalty() for layer in self.layers if layer.kernel_regularizer is not None])

    def _batch_loss(self, z: np.ndarray, targets: np.ndarray, weights: np.ndarray | None,
                    need_grad: bool) -> tuple[float, np.ndarray | None]:
        loss, grad = self.head.batch(z, targets, weights, need_grad)
        return loss + self._penalty(), grad

    def _train_step(self, x: np.ndarray, targets: np.ndarray, weights: np.ndarray | None) -> tuple[float, np.ndarray]:
        """One update; if the loss or the new weights are not finite, the weights stay as they were
        and `self.diverged` is set (fit then stops)."""
        z = self._logits(x)
        loss, grad_z = self._batch_loss(z, targets, weights, need_grad=True)
        if not np.isfinite(loss):
            self.diverged = f"the loss is {loss}"
            return loss, z
        self._backward(grad_z)
        if self._backup is None or self._backup.shape != self.params.shape:
            self._backup = np.empty_like(self.params)
        # Built for these arrays (see _prepare); the gradients are not needed after the step.
        self.optimizer._step(self.params, self.grads, backup=self._backup, grads_as_scratch=True)
        if not all_finite(self.params):
            np.copyto(self.params, self._backup)
            self.diverged = "the update made weights infinite or NaN"
        return loss, z

    def outputs_from_logits(self, z: np.ndarray) -> np.ndarray:
        """What the model outputs for logits z (a new array): probabilities after softmax/sigmoid, else z."""
        out = activations.forward(self.layers[-1].activation, z)
        return out.copy() if out is z else out

    # --- Keras API ----------------------------------------------------------------------------
    def fit(self, x: object = None, y: object = None, batch_size: int | None = 32, epochs: int = 1,
            verbose: str | int = "auto", callbacks: list | None = None, validation_split: float = 0.0,
            validation_data: tuple | None = None, shuffle: bool = True, class_weight: dict | None = None,
            sample_weight: object = None, initial_epoch: int = 0) -> callbacks_mod.History:
        """Train for `epochs` epochs; returns the History (its `.history` dict of per-epoch lists)."""
        batch_size = _check_batch_size(batch_size)
        _check_int("epochs", epochs, 0)
        _check_int("initial_epoch", initial_epoch, 0)
        if not (isinstance(validation_split, numbers.Real) and 0 <= validation_split < 1):
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        with self._training("fit"):
            return training.fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split,
                                validation_data, shuffle, class_weight, sample_weight, initial_epoch)

    def _evaluate(self, x: np.ndarray, targets: np.ndarray, weights: np.ndarray | None,
                  batch_size: int) -> dict[str, float]:
        ms = self._make_metrics()
        loss_sum = 0.0
        for start in range(0, len(x), batch_size):
            sl = slice(start, start + batch_size)
            wb = None if weights is None else weights[sl]
            z = self._logits(x[sl], training=False)
            loss, _ = self._batch_loss(z, targets[sl], wb, need_grad=False)
            loss_sum += loss * len(z)
            for m in ms:
                m.update_state(targets[sl], z, wb)
        return {"loss": loss_sum / len(x), **{m.name: m.result() for m in ms}}

    def evaluate(self, x: object = None, y: object = None, batch_size: int | None = 32,
                 verbose: str | int = "auto", sample_weight: object = None, return_dict: bool = False):
        """Loss (and metrics) on (x, y): a float, a list [loss, *metrics], or a dict."""
        logs = self._evaluate(*self._prepare(x, y, sample_weight), _check_batch_size(batch_size))
        return _format_logs(logs, return_dict)

    def predict(self, x: object, batch_size: int | None = 32, verbose: str | int = "auto") -> np.ndarray:
        """Outputs (n, units): probabilities after a softmax/sigmoid output, logits after a linear one."""
        features = self._features(x)
        size = max(_check_batch_size(batch_size), 1024)  # larger chunks are faster; memory stays bounded
        return np.concatenate([self.outputs_from_logits(self._logits(features[i:i + size], training=False))
                               for i in range(0, len(features), size)])

    def predict_logits(self, x: object, batch_size: int | None = 32) -> np.ndarray:
        """The last layer's pre-activation outputs (n, units): the logits, whatever its activation."""
        features = self._features(x)
        size = _check_batch_size(batch_size)
        return np.concatenate([self._logits(features[i:i + size], training=False)
                               for i in range(0, len(features), size)])

    def predict_on_batch(self, x: object) -> np.ndarray:
        """Outputs for one batch (n, units)."""
        return self.outputs_from_logits(self._logits(self._features(x), training=False))

    def __call__(self, x: object) -> np.ndarray:
        """The model's outputs for x (n, d) -> (n, units), as predict_on_batch."""
        return self.predict_on_batch(x)

    def train_on_batch(self, x: object, y: object, sample_weight: object = None,
                       class_weight: dict | None = None, return_dict: bool = False):
        """One update on this batch; returns its loss (and metrics) computed before the update."""
        with self._training("train_on_batch"):
            xb, yb, wb = self._prepare(x, y, sample_weight, class_weight)
            self.diverged = None
            loss, z = self._train_step(xb, yb, wb)
        if self.diverged:
            warnings.warn(f"train_on_batch: {self.diverged}; the weights were not changed",
                          DivergenceWarning, stacklevel=2)
        ms = self._make_metrics()
        for m in ms:
            m.update_state(yb, z, wb)
        return _format_logs({"loss": loss, **{m.name: m.result() for m in ms}}, return_dict)

    def test_on_batch(self, x: object, y: object, sample_weight: object = None, return_dict: bool = False):
        """Loss (and metrics) on one batch, without updating."""
        xb, yb, wb = self._prepare(x, y, sample_weight)
        return _format_logs(self._evaluate(xb, yb, wb, len(xb)), return_dict)

    def save(self, filepath: str) -> None:
        """Save architecture, weights, compile settings and optimizer state to one file (no pickle)."""
        from .saving import save_model

        save_model(self, filepath)

    def get_config(self) -> dict[str, Any]:
        """The architecture, JSON-friendly."""
        return {"name": self.name, "dtype": self.dtype.name, "seed": self.seed, "input_dim": self.input_dim,
                "layers": [layer.get_config() for layer in self.layers]}

    def _require_built(self) -> None:
        if not self.built and self.input_dim is not None and self.layers:
            self.build()  # the input width is known (Input, or input_shape=): build as Keras does
        if not self.built:
            raise ValueError("the model is not built yet: call build((n_features,)), or fit/predict "
                             "on data, or start with Input(shape=(n_features,))")

    def _require_compiled(self) -> None:
        if self.head is None:
            raise ValueError("the model must be compiled first: model.compile(optimizer=..., loss=...)")


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_batch_size(batch_size: int | None) -> int:
    return 32 if batch_size is None else _check_int("batch_size", batch_size, 1)


def _format_logs(logs: dict[str, float], return_dict: bool):
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values
