"""`Sequential`: a container of layers with Keras' build, compile, fit, evaluate and predict.

The model holds the layers and their order, builds them for an input shape, and keeps their
trainable numbers in one flat buffer (`params.py`). At compile time the network's output
activation (the last Dense layer's, or a final Activation/Softmax layer) is paired with the loss
into a head (`head.py`) that takes the loss and its gradient from the logits exactly. The
training loop is `training.py`; files are `saving.py`.
"""

from __future__ import annotations

import contextlib
import numbers
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import activations, backend, keras_files, losses, optimizers, saving, training
from . import callbacks as callbacks_mod
from . import metrics as metrics_mod
from .dense_stack import DenseStack
from .head import Head
from .layers import Dense, InputLayer, KerasInput, Layer, output_activation
from .layers.base import feature_shape, set_arrays
from .ops._core import all_finite
from .params import FlatParameters
from .tensor import SymbolicTensor, Tensor
from .training import DivergenceWarning


class Sequential:
    """Keras' Sequential model. `seed` makes initialisation, dropout and shuffling repeatable;
    `dtype` (default `backend.floatx()`) is the float type of its weights and computations."""

    def __init__(self, layers: list | None = None, name: str | None = None, seed: int | None = None,
                 dtype: str | None = None, trainable: bool = True) -> None:
        try:
            self.dtype = backend.default_dtype(dtype)
        except (TypeError, ValueError):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from None
        self.name = name or "sequential"
        self.seed = backend.draw_seed(seed)
        init_seq, shuffle_seq, self._dropout_seq = np.random.SeedSequence(self.seed).spawn(3)
        self._init_rng = np.random.default_rng(init_seq)
        self.shuffle_rng = np.random.default_rng(shuffle_seq)
        self.layers: list[Layer] = []
        self._input_layer: InputLayer | None = None
        self.built = False
        self._flat: FlatParameters | None = None
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: losses.Loss | None = None
        self.head: Head | None = None
        self.metric_names: list = []
        self.stop_training = False
        self.history: callbacks_mod.History | None = None
        self.metadata: dict[str, Any] = {}  # JSON-friendly notes saved with the model (class names, ...)
        self.diverged: str | None = None  # why the last training step was refused, if it was
        self._backup: np.ndarray | None = None
        self._steps: list[tuple[Layer, dict, dict, bool]] = []
        self._dense_stack: DenseStack | None = None  # the compiled few-rows inference, when it applies
        self._output: tuple[str, dict] = ("linear", {})
        self._make_locks()
        for layer in layers or []:
            self.add(layer)
        if not trainable:
            self.trainable = False

    # --- structure ----------------------------------------------------------------------------
    def add(self, layer: Layer | KerasInput) -> None:
        """Append a layer; an `Input`/`InputLayer` may only come first. A built model is rebuilt,
        keeping the weights of the layers it had."""
        if isinstance(layer, KerasInput):
            layer = layer.layer
        if isinstance(layer, InputLayer):
            if self.layers or self._input_layer is not None:
                raise ValueError("Input(...) must be the first entry of a Sequential model (so must an InputLayer)")
            self._input_layer = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential takes logitnet layers (Dense, Activation, Dropout, ...), got {layer!r}")
        if layer.declared_shape is not None and not self.layers and self._input_layer is None:
            self._input_layer = InputLayer(layer.declared_shape, dtype=self.dtype)
        if layer._name is None:
            base = layer.name
            taken = {other.name for other in self.layers}
            count = 0
            while (base if count == 0 else f"{base}_{count}") in taken:
                count += 1
            layer.name = base if count == 0 else f"{base}_{count}"
        if any(layer.name == other.name for other in self.layers):
            raise ValueError(f"two layers are named {layer.name!r}; layer names must be unique")
        self.layers.append(layer)
        try:
            self._rebuild(build_now=self.in_shape is not None)  # Keras builds once the input shape is known
        except Exception:
            self.layers.pop()
            self._rebuild()
            raise

    def pop(self) -> Layer:
        """Remove and return the last layer (a built model is rebuilt without it)."""
        if not self.layers:
            raise ValueError("there are no layers in the model to pop")
        layer = self.layers.pop()
        self._rebuild()
        return layer

    def _rebuild(self, build_now: bool = False) -> None:
        """Build again after the layers changed, keeping the weights of the layers built before."""
        if self.built or build_now:
            self.built = False
            if self.layers:
                self.build()
        self._refresh_head()

    def _refresh_head(self) -> None:
        """Pair the output with the compiled loss again after the layers changed or were built."""
        if self.loss is not None and self.layers:
            try:
                self._make_head()
            except ValueError as err:  # as Keras: the changed model is compiled again before training
                self.head, self._head_error = None, str(err)

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """The layer called `name`, or at position `index` of `model.layers` (Keras' get_layer)."""
        if index is not None:
            if name is not None:
                raise ValueError("give get_layer a name or an index, not both")
            if isinstance(index, bool) or not isinstance(index, numbers.Integral):
                raise ValueError(f"index must be an integer, got {index!r}")
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"index {index} is out of range: the model has {len(self.layers)} layers")
            return self.layers[index]
        if name is None:
            raise ValueError("get_layer needs a layer name or an index")
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; the layers are {[layer.name for layer in self.layers]}")

    @property
    def in_shape(self) -> tuple[int, ...] | None:
        """The shape of one sample, without the batch axis (None while unknown)."""
        return None if self._input_layer is None else self._input_layer.shape

    @property
    def input_dim(self) -> int | None:
        """The number of input features (for inputs of shape (n, d)); None while unknown."""
        shape = self.in_shape
        return None if shape is None or len(shape) != 1 else shape[0]

    def build(self, input_shape: object = None) -> None:
        """Build every layer for samples of `input_shape` ((None, d), (batch, d) or (d,)) and
        allocate the weights; layers built before keep their weights."""
        if not self.layers:
            raise ValueError("the model has no layers: add layers before building it")
        if input_shape is not None:
            shape = feature_shape(input_shape)
            if self.in_shape is not None and shape != self.in_shape:
                raise ValueError(f"the model expects samples of shape {self.in_shape}, got input shape {input_shape}")
            if self._input_layer is None:
                self._input_layer = InputLayer(shape, dtype=self.dtype)
        if self.in_shape is None:
            raise ValueError("the input shape is unknown: start with Input(shape=(n_features,)), "
                             "call build((None, n_features)), or call fit/predict on data")
        width, kept = self.in_shape, []
        for layer in self.layers:
            if layer.built:
                if layer.in_shape != width:
                    raise ValueError(f"layer {layer.name!r} was built for inputs of shape {layer.input_shape}, "
                                     f"but here it receives {(None, *width)}")
                kept.append([w.copy() for w in layer.flat_weights()])
                if layer.dtype != self.dtype:
                    layer.set_dtype(self.dtype)
            else:
                layer.dtype = self.dtype
                layer.configure(width, self.dtype)
                kept.append(None)
            width = layer.out_shape
        self._flat = FlatParameters(self.layers, self.dtype)
        for layer, old in zip(self.layers, kept):
            if old is None:
                layer.initialize(self._init_rng)
                layer.set_rng(self._dropout_seq.spawn(1)[0] if getattr(layer, "seed", None) is None else layer.seed)
            else:
                for view, value in zip(layer.flat_weights(), old):
                    view[...] = value
            layer._own_flat = None
        self._plan()
        self.built = True
        self._refresh_head()
        if self.optimizer is not None:
            self.optimizer.build(self._flat.size, self.dtype)

    def _plan(self) -> None:
        """Which layers the forward pass runs, with what, and which activation goes to the head:
        the last Dense layer's, or that of a final activation layer (then not run)."""
        name, params, n_body = output_activation(self.layers)
        body, last = self.layers[:n_body], self.layers[-1]
        self._output = (name, params)
        steps = []
        for i, layer in enumerate(body):
            need_input_grad = any(b.has_flat_weights for b in body[:i])
            if isinstance(layer, Dense):
                fused = layer is last
                nxt = body[i + 1] if i + 1 < len(body) else None
                augment = not fused and isinstance(nxt, Dense) and nxt.use_bias
                steps.append((layer, {"activate": not fused, "augment": augment}, {"activate": not fused},
                              need_input_grad))
            else:
                steps.append((layer, {}, {}, need_input_grad))
        self._steps = steps
        self._logits_shape = body[-1].out_shape if body else self.in_shape
        self._dense_stack = DenseStack.plan(steps, self._flat)

    @property
    def params(self) -> np.ndarray:
        """Every trainable number of the model, in one flat array (the layers' weights are views)."""
        self._require_built()
        return self._flat.params

    @property
    def grads(self) -> np.ndarray:
        self._require_built()
        return self._flat.grads

    @property
    def trainable(self) -> bool:
        """False when every layer is frozen; setting it freezes or unfreezes every layer."""
        return any(layer.trainable for layer in self.layers) if self.layers else True

    @trainable.setter
    def trainable(self, value: bool) -> None:
        for layer in self.layers:
            layer.trainable = bool(value)

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
            self._flat.bind()

    # --- weights and shapes -------------------------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        """Every weight array in Keras order (layer by layer: W1, b1, ...), as views."""
        self._require_built()
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        self._require_built()
        return [w for layer in self.layers for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list[np.ndarray]:
        self._require_built()
        return [w for layer in self.layers for w in layer.non_trainable_weights]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights in Keras order."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Replace the weights (Keras order); every shape must match and every value be finite."""
        def validate(arrays: list[np.ndarray]) -> None:  # each layer checks its own slice
            start = 0
            for layer in self.layers:
                count = len(layer.weights)
                layer.validate_weights(arrays[start:start + count])
                start += count

        set_arrays(self.weights, weights, "", validate, order=" (W1, b1, ...)")
        for layer in self.layers:
            layer.weights_changed()

    def count_params(self) -> int:
        """Number of scalar weights (trainable or not)."""
        self._require_built()
        return int(sum(w.size for w in self.weights))

    @property
    def input(self) -> SymbolicTensor:
        """The model's input as Keras describes it: `.shape` (None, *features)."""
        self._require_built()
        return SymbolicTensor((None, *self.in_shape), self.dtype, f"{self.name}_input")

    @property
    def output(self) -> SymbolicTensor:
        """The model's output as Keras describes it: `.shape` (None, *outputs)."""
        self._require_built()
        return self.layers[-1].output

    @property
    def input_shape(self) -> tuple:
        self._require_built()
        return (None, *self.in_shape)

    @property
    def output_shape(self) -> tuple:
        self._require_built()
        return (None, *self.layers[-1].out_shape)

    def summary(self, print_fn=print, line_length: int = 65) -> None:
        """Print the layers, output shapes and parameter counts in tf.keras' layout."""
        self._require_built()
        stops = [int(line_length * f) for f in (0.45, 0.85, 1.0)]

        def row(cells: list[str]) -> str:  # tf.keras' print_row: each cell cut at its column's end
            line = ""
            for i, (cell, stop) in enumerate(zip([" " + cells[0], *cells[1:]], stops)):
                line = (line[:-1] + " " if i else line) + cell
                line = line[:stop].ljust(stop)
            return line

        out = [f'Model: "{self.name}"', "_" * line_length, row(["Layer (type)", "Output Shape", "Param #"]),
               "=" * line_length]
        for i, layer in enumerate(self.layers):
            out.append(row([f"{layer.name} ({type(layer).__name__})", str(layer.output_shape),
                            str(layer.count_params())]))
            out.append(" " * line_length if i < len(self.layers) - 1 else "=" * line_length)
        total = self.count_params()
        trainable = int(sum(w.size for w in self.trainable_weights))
        size = self.dtype.itemsize
        out += [f"Total params: {total:,} ({_bytes(total * size)})",
                f"Trainable params: {trainable:,} ({_bytes(trainable * size)})",
                f"Non-trainable params: {total - trainable:,} ({_bytes((total - trainable) * size)})",
                "_" * line_length]
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
        self.metric_names = list(metrics or [])
        self._head_error = None
        self._make_head()
        self._make_metrics()  # fail now on an unknown metric name
        if self.built:
            self.optimizer.build(self._flat.size, self.dtype)

    def _make_head(self) -> None:
        """Pair the output activation with the loss (checks that they fit together)."""
        if self.built:
            name, params = self._output
            logits_shape = self._logits_shape
        else:  # not built yet: the last layer tells the activation; the width waits for build
            name, params, n_body = output_activation(self.layers)
            last = self.layers[n_body - 1] if n_body else None
            logits_shape = (last.units,) if isinstance(last, Dense) else None
        if name == "softmax" and params.get("axis", -1) not in (-1, len(logits_shape or (0,))):
            raise ValueError(f"a softmax output over axis {params['axis']} cannot be fused with a loss; "
                             "a classifier's softmax runs over the last axis (axis=-1)")
        if logits_shape is not None and len(logits_shape) != 1:
            raise ValueError(f"the network outputs samples of shape {logits_shape}; a classifier's output "
                             "must be (n_samples, n_units): add Flatten() and a Dense layer")
        self.head = Head(name, None if logits_shape is None else logits_shape[0], self.loss, params)

    def _make_metrics(self) -> list[metrics_mod.Metric]:
        return [metrics_mod.get(m, self.head.task) for m in self.metric_names]

    # --- data ---------------------------------------------------------------------------------
    def _features(self, x: object, name: str = "x") -> np.ndarray:
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
        if arr.ndim < 2:
            raise ValueError(f"{name} must have shape (n_samples, n_features), got shape {arr.shape}"
                             + ("; a single sample x needs x.reshape(1, -1)" if arr.ndim == 1 else ""))
        if arr.shape[0] == 0:
            raise ValueError(f"{name} is empty: it has no samples")
        if not self.built:
            with self._build_lock:
                if not self.built:
                    self.build((None, *arr.shape[1:]))
        if arr.shape[1:] != self.in_shape:
            if len(self.in_shape) == 1 and arr.ndim == 2:
                raise ValueError(f"{name} has {arr.shape[1]} features but the model expects {self.in_shape[0]}")
            raise ValueError(f"{name} has samples of shape {arr.shape[1:]} but the model expects {self.in_shape}")
        out = np.ascontiguousarray(arr, dtype=self.dtype)
        if not all_finite(out):
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(out))[0])
            place = f"row {where[0]}, column {where[1]}" if len(where) == 2 else f"index {where}"
            raise ValueError(f"{name} contains {out[where]} at {place}; features must be finite")
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
        """Logits (n, units) for x (n, *features). Training passes reuse the layers' work buffers and
        keep what backward needs; training=False passes share nothing, so threads may run them at once."""
        if not training and self._dense_stack is not None:
            z = self._dense_stack.logits(x, self._flat.params)
            if z is not None:
                return z
        a = x
        for layer, forward_kwargs, _, _ in self._steps:  # Dense outputs may end in a column of ones (the bias)
            a = layer.forward(a, training, **forward_kwargs)
        return a

    def _backward(self, grad_z: np.ndarray) -> None:
        grad = grad_z
        for layer, _, backward_kwargs, need_input_grad in reversed(self._steps):
            grad = layer.backward(grad, need_input_grad, **backward_kwargs)
            if grad is None:
                break

    def _penalty(self) -> float:
        return sum([layer.penalty() for layer in self.layers if getattr(layer, "kernel_regularizer", None) is not None])

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
        self._apply_gradients()
        return loss, z

    def _apply_gradients(self) -> None:
        """One optimizer step from the gradients in the flat buffer; frozen layers stay; if the new
        weights are not finite they are put back and `self.diverged` is set."""
        params, grads = self._flat.params, self._flat.grads
        if self._backup is None or self._backup.shape != params.shape:
            self._backup = np.empty_like(params)
        frozen = self._flat.frozen()
        for sl in frozen:
            grads[sl] = 0
        # Built for these arrays (see _prepare); the gradients are not needed after the step.
        finite = self.optimizer._step(params, grads, backup=self._backup, grads_as_scratch=True)
        for sl in frozen:  # frozen layers keep their values whatever the optimizer's slots hold
            params[sl] = self._backup[sl]
        if (frozen or finite is not True) and not all_finite(params):  # the compiled step checked them
            np.copyto(params, self._backup)
            self.diverged = "the update made weights infinite or NaN"

    def outputs_from_logits(self, z: np.ndarray) -> np.ndarray:
        """What the model outputs for logits z (a new array): probabilities after softmax/sigmoid, else z."""
        name, params = self._output
        out = activations.forward(name, z, **params)
        return out.copy() if out is z else out

    # --- Keras API ----------------------------------------------------------------------------
    def fit(self, x: object = None, y: object = None, batch_size: int | None = 32, epochs: int = 1,
            verbose: str | int = "auto", callbacks: list | None = None, validation_split: float = 0.0,
            validation_data: tuple | None = None, shuffle: bool = True, class_weight: dict | None = None,
            sample_weight: object = None, initial_epoch: int = 0,
            distribution: object = None) -> callbacks_mod.History:
        """Train for `epochs` epochs; returns the History (its `.history` dict of per-epoch lists).

        x, y (and validation data, sample weights) may be Dask arrays or DataFrames: they are then
        streamed block by block, on a Dask cluster with `distribution=DataParallel(client=...)` (or
        one set by `logitnet.distribution.set_distribution`)."""
        batch_size = _check_batch_size(batch_size)
        _check_int("epochs", epochs, 0)
        _check_int("initial_epoch", initial_epoch, 0)
        if not (isinstance(validation_split, numbers.Real) and 0 <= validation_split < 1):
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        with self._training("fit"):
            return training.fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split,
                                validation_data, shuffle, class_weight, sample_weight, initial_epoch,
                                distribution)

    def _evaluate(self, x: object, targets: np.ndarray | None = None, weights: np.ndarray | None = None,
                  batch_size: int = 32) -> dict[str, float]:
        """Loss and metrics over arrays (x, targets, weights), or over `x` = an iterable of such
        batches (a stream: targets unused)."""
        batches = x
        if targets is not None:
            batches = ((x[i:i + batch_size], targets[i:i + batch_size],  # type: ignore[index]
                        None if weights is None else weights[i:i + batch_size])
                       for i in range(0, len(x), batch_size))  # type: ignore[arg-type]
        ms = self._make_metrics()
        loss_sum, n = 0.0, 0
        for xb, tb, wb in batches:  # type: ignore[union-attr]
            z = self._logits(xb, training=False)
            loss, _ = self._batch_loss(z, tb, wb, need_grad=False)
            loss_sum += loss * len(z)
            n += len(z)
            for m in ms:
                m.update_state(tb, self.head.metric_values(z), wb)
        return {"loss": loss_sum / n, **{m.name: m.result() for m in ms}}

    def evaluate(self, x: object = None, y: object = None, batch_size: int | None = 32,
                 verbose: str | int = "auto", sample_weight: object = None, return_dict: bool = False):
        """Loss (and metrics) on (x, y): a float, a list [loss, *metrics], or a dict. Dask (x, y)
        are read block by block."""
        if training.is_dask(x) or training.is_dask(y):
            from .distribution import stream

            return _format_logs(stream.evaluate(self, x, y, sample_weight, _check_batch_size(batch_size)),
                                return_dict)
        logs = self._evaluate(*self._prepare(x, y, sample_weight), _check_batch_size(batch_size))
        return _format_logs(logs, return_dict)

    def predict(self, x: object, batch_size: int | None = 32, verbose: str | int = "auto") -> np.ndarray:
        """Outputs (n, units): probabilities after a softmax/sigmoid output, logits after a linear one.
        For a Dask x, a Dask array computed block by block (on the workers when a cluster is in use)."""
        if training.is_dask(x):
            from .distribution import stream

            return stream.predict(self, x)
        features = self._features(x)
        size = max(_check_batch_size(batch_size), 1024)  # larger chunks are faster; memory stays bounded
        with training.inference_threads(self, min(size, len(features))):
            return np.concatenate([self.outputs_from_logits(self._logits(features[i:i + size], training=False))
                                   for i in range(0, len(features), size)])

    def predict_logits(self, x: object, batch_size: int | None = 32) -> np.ndarray:
        """The last layer's pre-activation outputs (n, units): the logits, whatever its activation
        (a Dask array for a Dask x)."""
        if training.is_dask(x):
            from .distribution import stream

            return stream.predict(self, x, logits=True)
        features = self._features(x)
        size = _check_batch_size(batch_size)
        with training.inference_threads(self, min(size, len(features))):
            return np.concatenate([self._logits(features[i:i + size], training=False)
                                   for i in range(0, len(features), size)])

    def predict_on_batch(self, x: object) -> np.ndarray:
        """Outputs for one batch (n, units)."""
        features = self._features(x)
        with training.inference_threads(self, len(features)):
            return self.outputs_from_logits(self._logits(features, training=False))

    def __call__(self, x: object, training: bool = False) -> Tensor:
        """The model's outputs for x (n, *features) -> (n, units) as a Tensor (`.numpy()` works);
        training=True applies Dropout as in training."""
        if not training:
            return self.predict_on_batch(x).view(Tensor)
        with self._training("model(x, training=True)"):
            return np.array(self.outputs_from_logits(self._logits(self._features(x), training=True))).view(Tensor)

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
            m.update_state(yb, self.head.metric_values(z), wb)
        return _format_logs({"loss": loss, **{m.name: m.result() for m in ms}}, return_dict)

    def test_on_batch(self, x: object, y: object, sample_weight: object = None, return_dict: bool = False):
        """Loss (and metrics) on one batch, without updating."""
        xb, yb, wb = self._prepare(x, y, sample_weight)
        return _format_logs(self._evaluate(xb, yb, wb, len(xb)), return_dict)

    def save(self, filepath: str, include_optimizer: bool = True) -> None:
        """Save architecture, weights, compile settings and optimizer state to one file (no pickle):
        a name ending in .keras gives a Keras 3 file (needs the `keras` extra), any other logitnet's own."""
        if str(filepath).endswith(".keras"):
            keras_files.save(self, filepath, include_optimizer=include_optimizer)
        else:
            saving.save_model(self, filepath, include_optimizer=include_optimizer)

    def export(self, filepath: str, format: str = "onnx", *, opset: int = 17,
               thresholds: object = 0.5) -> None:
        """Write the model for serving elsewhere: `format="onnx"` (needs the `onnx` extra) gives a
        graph with outputs logits, probabilities and label; `thresholds` (one, or one per label)
        decide sigmoid outputs' labels."""
        if format != "onnx":
            raise ValueError(f"format={format!r} is not supported; logitnet exports format='onnx'")
        from . import onnx_export

        onnx_export.export(self, filepath, opset=opset, thresholds=thresholds)

    def get_config(self) -> dict[str, Any]:
        """The architecture, JSON-friendly."""
        return {"name": self.name, "dtype": self.dtype.name, "seed": self.seed,
                "input_shape": None if self.in_shape is None else list(self.in_shape),
                "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                           for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        """A new (unbuilt unless the input shape is known) model from `get_config()`'s dict."""
        from .layers import LAYERS

        layers = [LAYERS[entry["class_name"]].from_config(entry["config"]) for entry in config["layers"]]
        shape = config.get("input_shape")
        first = [] if shape is None else [InputLayer(tuple(shape))]
        return cls(first + layers, name=config.get("name"), seed=config.get("seed"), dtype=config.get("dtype"))

    def _require_built(self) -> None:
        if not self.built and self.in_shape is not None and self.layers:
            with self._build_lock:  # the input shape is known (Input, or input_shape=): build as Keras does
                if not self.built:
                    self.build()
        if not self.built:
            raise ValueError("the model is not built yet: call build((None, n_features)), or fit/predict "
                             "on data, or start with Input(shape=(n_features,))")

    def _require_compiled(self) -> None:
        if self.head is None and getattr(self, "_head_error", None):
            raise ValueError(f"the layers changed since compile() and no longer fit its loss "
                             f"({self._head_error}); compile the model again")
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


def _bytes(n: int) -> str:
    """A byte count as Keras' summary writes it: 40.75 KB."""
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.2f} B"
