"""`LogitNetClassifier`: a scikit-learn estimator on a logitnet `Sequential`.

The output layer and loss follow the target type (scikit-learn's `type_of_target`): binary -> one
sigmoid unit, multi-class -> softmax, multi-label indicator matrix -> one sigmoid per label.
Probabilities and log-probabilities are computed from the logits, exactly. Needs scikit-learn
(`pip install "logitnet[sklearn]"`); importing `logitnet` itself never imports it.

Dask arrays and DataFrames are taken as they are, never computed whole: fit and partial_fit stream
their blocks through the model, and the predictions on Dask X are Dask arrays, computed block by
block. Dask is imported only when such data arrives.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_feature_names,
    _check_n_features,
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from . import activations, callbacks, ops, optimizers, regularizers
from .layers import Dense
from .metrics import multilabel_predict
from .model import Sequential
from .training import is_dask

if TYPE_CHECKING:
    import dask.array as da


class LogitNetClassifier(ClassifierMixin, BaseEstimator):
    """A multi-layer perceptron classifier trained on losses taken from the logits, exactly.

    Where Keras and scikit-learn differ, it follows scikit-learn (as `MLPClassifier` does):

    - `batch_size='auto'` means min(200, n_samples); an int larger than n_samples is one full batch.
    - `dtype=None` trains in the input's float type: float32 X gives a float32 model, float64 X (and
      any other X, which scikit-learn converts to float64) a float64 model. 'float32' or 'float64'
      forces one. Later data (predict, further partial_fit calls) is converted to the fitted model's.
    - sample_weight means repetition: the weights are divided by their mean over the data passed
      (class weights multiply them afterwards), so a batch's loss Σ wᵢ·lᵢ / batch size is
      MLPClassifier's Σ wᵢ·lᵢ / Σ wᵢ for one full batch, and that in expectation for minibatches.
      One full batch (n_samples <= 200 with 'auto') hence trains on a weight of 2 as on the row
      repeated, identically up to rounding.
    - alpha is an L2 penalty with scikit-learn's meaning: 0.5·alpha·‖W‖² per batch, divided by the
      batch's size times the mean sample weight (its expected sum of weights).

    `thresholds` (a probability, or one per label) decide multi-label predictions.
    """

    _parameter_constraints: ClassVar[dict] = {
        "hidden_layer_sizes": ["array-like"],
        "activation": [StrOptions(set(activations.HIDDEN))],
        "optimizer": [StrOptions(set(optimizers.OPTIMIZERS))],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "dtype": [StrOptions({"float32", "float64"}), None],
        "shuffle": ["boolean"],
        "thresholds": ["array-like", Interval(Real, 0, 1, closed="both")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, hidden_layer_sizes: tuple[int, ...] = (100,), activation: str = "relu",
                 optimizer: str = "adam", learning_rate: float = 1e-3, batch_size: int | str = "auto",
                 epochs: int = 200, early_stopping: bool = False, validation_fraction: float = 0.1,
                 n_iter_no_change: int = 10, tol: float = 1e-4, alpha: float = 0.0,
                 class_weight: dict | str | None = None, dtype: str | None = None, shuffle: bool = True,
                 thresholds: float | Any = 0.5, random_state: Any = None, verbose: int = 0) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.alpha = alpha
        self.class_weight = class_weight
        self.dtype = dtype
        self.shuffle = shuffle
        self.thresholds = thresholds
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    # --- fitting ------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LogitNetClassifier:
        """Train a new network for `epochs` epochs (fewer with early stopping). X (n, d), y (n,) or (n, L)."""
        self._validate_params()
        X, y = self._validate(X, y, reset=True)
        self._setup_targets(_target_summary(y), classes=None)
        self.model_ = self._build(X.shape[1], X.dtype)
        targets, weights, sw_mean = self._targets_and_weights(y, sample_weight, X.shape[0])
        cbs: list[callbacks.Callback] = []
        validation_split = 0.0
        n_train = X.shape[0]
        if self.early_stopping:
            validation_split = self.validation_fraction
            n_train = max(int(n_train * (1 - validation_split)), 1)  # Keras' split: the first part trains
            cbs.append(callbacks.EarlyStopping("val_loss", min_delta=self.tol, patience=self.n_iter_no_change,
                                               restore_best_weights=True))
        else:  # as MLPClassifier: stop when the training loss stops improving by tol
            cbs.append(callbacks.EarlyStopping("loss", min_delta=self.tol, patience=self.n_iter_no_change))
        batch_size = self._batch_size(n_train)
        self._scale_penalty(batch_size, sw_mean)
        validation: dict[str, Any] = {"validation_split": validation_split}
        if validation_split and is_dask(X):  # the model streams Dask data, and takes no split of it
            X, targets, weights, validation = _split_off_validation(X, targets, weights, validation_split)
        history = self.model_.fit(X, targets, batch_size=batch_size, epochs=self.epochs,
                                  verbose=self.verbose, callbacks=cbs, shuffle=self.shuffle,
                                  sample_weight=weights, **validation)
        self.loss_curve_ = list(history.history["loss"])
        self.n_iter_ = len(self.loss_curve_)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> LogitNetClassifier:
        """One pass over (X, y) in minibatches, keeping the weights and optimizer state between calls.

        The first call needs `classes` (all labels that will appear) unless y is multi-label; it
        also fixes the model's dtype, to which later calls convert X.
        """
        first = not hasattr(self, "model_")
        if first:
            self._validate_params()
        X, y = self._validate(X, y, reset=first)
        if first:
            summary = _target_summary(y)
            if classes is None and type_of_target(summary) != "multilabel-indicator":
                raise ValueError("classes must be passed on the first call to partial_fit")
            self._setup_targets(summary, classes)
            self.model_ = self._build(X.shape[1], X.dtype)
            self.loss_curve_, self.n_iter_ = [], 0
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={classes!r} differs from the first call's {self.classes_!r}")
        targets, weights, sw_mean = self._targets_and_weights(y, sample_weight, X.shape[0])
        batch_size = self._batch_size(X.shape[0])
        self._scale_penalty(batch_size, sw_mean)
        history = self.model_.fit(X, targets, batch_size=batch_size, epochs=1, verbose=self.verbose,
                                  shuffle=self.shuffle, sample_weight=weights)
        self.loss_curve_.append(history.history["loss"][0])
        self.n_iter_ += 1
        return self

    def _validate(self, X: Any, y: Any, reset: bool) -> tuple[Any, Any]:
        if is_dask(X):
            return self._validate_dask(X, y, reset)
        X, y = validate_data(self, X, y, multi_output=True, dtype=self._input_dtype(reset), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:  # a column vector: labels, as scikit-learn reads it
            y = column_or_1d(y, warn=True)
        return X, y

    def _validate_dask(self, X: Any, y: Any, reset: bool) -> Any:
        """Dask X (and y) checked as validate_data checks arrays, computing no more than a DataFrame's
        partition lengths: X as a Dask array (n, n_features) in the training dtype, y as a Dask array
        whose blocks hold the rows of X's blocks."""
        from .distribution import blocks  # imports Dask: only for Dask data

        # scikit-learn reads column names from pandas, not Dask: a collection's _meta is its empty
        # pandas (or NumPy) counterpart, with the same columns.
        _check_feature_names(self, getattr(X, "_meta", X), reset=reset)
        X, _ = blocks._as_array(X, "X", None)  # numeric, with known chunk sizes, one chunk of columns
        if X.ndim != 2 or 0 in X.shape:
            raise ValueError(f"X must have shape (n_samples, n_features), at least 1 of each, got shape {X.shape}")
        _check_n_features(self, X, reset=reset)
        if not reset:
            dtype = self.model_.dtype
        elif self.dtype is not None:
            dtype = np.dtype(self.dtype)
        else:  # as validate_data: float32 and float64 stay, anything else becomes float64
            dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        X = X if X.dtype == dtype else X.astype(dtype)
        if y is None:
            return X
        y = _dask_rows(y, "y", X.chunks[0])
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the shape "
                          "of y to (n_samples, ), for example using ravel().", DataConversionWarning, stacklevel=4)
            y = y[:, 0]
        if y.ndim not in (1, 2):
            raise ValueError(f"y must have shape (n_samples,) or (n_samples, n_labels), got shape {y.shape}")
        return X, y

    def _input_dtype(self, reset: bool) -> Any:
        """What validate_data converts X to: the fitted model's dtype, else `dtype`, else float32
        and float64 kept as they are (anything else becomes float64)."""
        if not reset:
            return self.model_.dtype
        return [np.float64, np.float32] if self.dtype is None else np.dtype(self.dtype)

    def _batch_size(self, n: int) -> int:
        """The batch size for n training rows: min(200, n) for 'auto', else min(batch_size, n)."""
        return min(200 if self.batch_size == "auto" else int(self.batch_size), n)

    def _setup_targets(self, y: np.ndarray, classes: Any) -> None:
        kind = type_of_target(y)
        if kind == "multilabel-indicator":
            self._task = "multilabel"
            self.classes_ = np.arange(y.shape[1])
            return
        check_classification_targets(y)
        self.classes_ = np.unique(y if classes is None else classes)
        if self.classes_.size < 2:
            raise ValueError(f"y contains only one class ({self.classes_[0]!r}); "
                             "a classifier needs at least 2 classes")
        self._task = "binary" if self.classes_.size == 2 else "multiclass"

    def _build(self, n_features: int, dtype: np.dtype) -> Sequential:
        sizes = [int(h) for h in np.atleast_1d(self.hidden_layer_sizes)]
        if any(h < 1 for h in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive, got {self.hidden_layer_sizes!r}")
        # One penalty shared by every layer; its factor is set for each call's batches (_scale_penalty).
        penalty = regularizers.l2(0.0) if self.alpha else None
        if self._task == "multiclass":
            out = Dense(self.classes_.size, "softmax", kernel_regularizer=penalty)
            loss = "sparse_categorical_crossentropy"
        else:
            units = 1 if self._task == "binary" else self.classes_.size
            out, loss = Dense(units, "sigmoid", kernel_regularizer=penalty), "binary_crossentropy"
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        model = Sequential([Dense(h, self.activation, kernel_regularizer=penalty) for h in sizes] + [out],
                           seed=seed, dtype=np.dtype(dtype).name)
        model.compile(optimizer=optimizers.OPTIMIZERS[self.optimizer](learning_rate=self.learning_rate), loss=loss)
        model.build((n_features,))
        return model

    def _scale_penalty(self, batch_size: int, sw_mean: float) -> None:
        """alpha's penalty per batch: 0.5·alpha·‖W‖² over the batch's expected sum of sample weights,
        batch_size·sw_mean (MLPClassifier divides by the batch's sum of weights)."""
        if not self.alpha:
            return
        factor = self.alpha / (2 * batch_size * sw_mean)
        for layer in self.model_.layers:
            if layer.kernel_regularizer is not None:
                layer.kernel_regularizer.l2 = factor

    def _targets_and_weights(self, y: Any, sample_weight: Any, n: int) -> tuple[Any, Any, float]:
        """Integer targets (or the indicator matrix), the weights for the model (sample weights over
        their mean, times class weights; None when all are 1) and the sample weights' mean. For Dask
        y these are Dask arrays split as y; only scalars (sums, class counts) are computed."""
        if self._task == "multilabel":
            if y.ndim != 2 or y.shape[1] != self.classes_.size:
                raise ValueError(f"y must be a multi-label indicator matrix with {self.classes_.size} columns")
            targets = y
        elif y.ndim != 1:
            raise ValueError(f"y of shape {y.shape} is neither labels (n_samples,) nor a 0/1 indicator "
                             "matrix; multi-output targets are not supported")
        elif is_dask(y):
            targets = y.map_blocks(_encode_labels, classes=self.classes_, dtype=np.intp,
                                   meta=np.empty(0, np.intp))
        else:
            targets = _encode_labels(y, self.classes_)
        weights, sw_mean = self._sample_weights(sample_weight, targets, n)
        if self.class_weight is not None:
            if self._task == "multilabel":
                raise ValueError("class_weight is for single-label targets; use sample_weight for multi-label")
            cw = self._class_weights(targets)
            weights = cw if weights is None else weights * cw
        return targets, weights, sw_mean

    @staticmethod
    def _sample_weights(sample_weight: Any, targets: Any, n: int) -> tuple[Any, float]:
        """Sample weights over their mean (None when not given), split as Dask targets are, and the mean."""
        if sample_weight is None:
            return None, 1.0
        if is_dask(targets) and is_dask(sample_weight):
            import dask

            sw = _dask_rows(sample_weight, "sample_weight", targets.chunks[0], np.float64)
            if sw.ndim != 1:
                raise ValueError(f"Sample weights must be 1D array or scalar, got {sw.ndim}D array. Expected "
                                 f"either a scalar value or a 1D array of length {n}.")
            total, lowest = (float(v) for v in dask.compute(sw.sum(), sw.min()))
            if not np.isfinite(total):
                raise ValueError("Input sample_weight contains NaN or infinity.")
            if lowest < 0:
                raise ValueError("Negative values in data passed to `sample_weight`.")
            if total == 0:
                raise ValueError("Sample weights must contain at least one non-zero number.")
            sw_mean = total / n  # np.mean's own formula: the sum over n
        else:
            sw = _check_sample_weight(sample_weight, np.empty((n, 0)), dtype=np.float64, ensure_non_negative=True)
            sw_mean = float(np.mean(sw))
            if is_dask(targets):
                sw = _dask_rows(sw, "sample_weight", targets.chunks[0])
        # The model divides a batch's Σ wᵢ·lᵢ by its row count; weights over their mean make that
        # Σ wᵢ·lᵢ / Σ wᵢ for one full batch (in expectation for minibatches), as repeated rows give.
        return sw / sw_mean, sw_mean

    def _class_weights(self, targets: Any) -> Any:
        """Each row's class weight, as compute_sample_weight gives it ('balanced': n / (k · n_c), k the
        number of classes present in targets). Dask targets: one pass to count the classes."""
        n_classes = self.classes_.size
        if is_dask(targets):
            import dask.array as da

            counts = da.bincount(targets, minlength=n_classes).compute()
        else:
            counts = np.bincount(targets, minlength=n_classes)
        present = np.flatnonzero(counts)
        table = np.ones(n_classes)
        if self.class_weight == "balanced":  # compute_class_weight's formula, operation for operation
            table[present] = counts.sum() / (present.size * counts[present].astype(np.float64))
        else:
            labels = self.classes_[present]
            table[present] = compute_class_weight(self.class_weight, classes=labels, y=labels)
        if is_dask(targets):
            return targets.map_blocks(_lookup, table=table, dtype=np.float64, meta=np.empty(0, np.float64))
        return table[targets]

    # --- predicting ---------------------------------------------------------------------------
    # For Dask X each method returns a Dask array, computed block by block (as dask-ml's ParallelPostFit).
    def _logits(self, X: Any) -> Any:
        """The network's logits (n, units); for Dask X a Dask array."""
        check_is_fitted(self)
        if is_dask(X):
            return self.model_.predict_logits(self._validate_dask(X, None, reset=False))
        X = validate_data(self, X, reset=False, dtype=self._input_dtype(reset=False))
        chunk = 1024 if self.batch_size == "auto" else max(self.batch_size, 1024)
        return self.model_.predict_logits(X, batch_size=chunk)

    def _from_logits(self, X: Any, fn: Any, columns: int | None, dtype: Any, **kwargs: Any) -> Any:
        """fn(logits, **kwargs), per block for Dask X: an output of `columns` columns (None: (n,))."""
        z = self._logits(X)
        if not is_dask(z):
            return fn(z, **kwargs)
        shape, chunks = ((0,), (z.chunks[0],)) if columns is None else ((0, columns), (z.chunks[0], (columns,)))
        return z.map_blocks(fn, **kwargs, dtype=dtype, chunks=chunks, drop_axis=1 if columns is None else None,
                            meta=np.empty(shape, dtype))

    def decision_function(self, X: Any) -> np.ndarray | da.Array:
        """Logits: (n,) for binary, (n, n_classes) multi-class, (n, n_labels) multi-label."""
        z = self._logits(X)
        return z[:, 0] if self._task == "binary" else z

    def predict_proba(self, X: Any) -> np.ndarray | da.Array:
        """Probabilities: (n, n_classes) (binary: [P(class 0), P(class 1)]), or (n, n_labels)."""
        return self._from_logits(X, _proba, self._n_outputs(), self.model_.dtype, task=self._task)

    def predict_log_proba(self, X: Any) -> np.ndarray | da.Array:
        """log of predict_proba, exact from the logits (no log of a rounded probability)."""
        return self._from_logits(X, _log_proba, self._n_outputs(), self.model_.dtype, task=self._task)

    def predict(self, X: Any) -> np.ndarray | da.Array:
        """Class labels (n,), or a 0/1 indicator matrix (n, n_labels) using `thresholds`."""
        check_is_fitted(self)
        multilabel = self._task == "multilabel"
        return self._from_logits(X, _labels, self.classes_.size if multilabel else None,
                                 np.int64 if multilabel else self.classes_.dtype, task=self._task,
                                 classes=self.classes_, thresholds=self.thresholds)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy of predict(X) against y (subset accuracy for multi-label). With Dask data, only
        the predictions, y and sample_weight are computed, never X whole."""
        if not any(is_dask(v) for v in (X, y, sample_weight)):
            return super().score(X, y, sample_weight)
        from sklearn.metrics import accuracy_score

        # One compute each: Dask refuses to mix DataFrame expressions with arrays efficiently.
        y, predicted, sample_weight = (v.compute() if is_dask(v) else v for v in (y, self.predict(X), sample_weight))
        return float(accuracy_score(y, predicted, sample_weight=sample_weight))

    def _n_outputs(self) -> int:
        check_is_fitted(self)
        return 2 if self._task == "binary" else self.classes_.size

    # --- exporting ----------------------------------------------------------------------------
    def export(self, path: str, opset: int = 17) -> None:
        """Write the fitted network as ONNX (needs `pip install "logitnet[onnx]"`): input (batch,
        n_features) in the fitted model's dtype; outputs logits (batch, units), probabilities as
        predict_proba and label as predict (the classes themselves, strings included), with no ZipMap."""
        check_is_fitted(self)
        from . import onnx_export

        onnx_export.export(self.model_, path, opset=opset, thresholds=self.thresholds, task=self._task,
                           class_labels=None if self._task == "multilabel" else self.classes_)


# --- helpers (module level, so that Dask graphs carry them by name) -------------------------------
def _proba(z: np.ndarray, task: str) -> np.ndarray:
    """Probabilities from logits z (n, units): (n, 2) for binary, else (n, units)."""
    if task == "binary":
        z = z[:, 0]
        return np.stack([ops.sigmoid(-z), ops.sigmoid(z)], axis=1)  # 1 − p without a subtraction
    return ops.softmax(z) if task == "multiclass" else ops.sigmoid(z)


def _log_proba(z: np.ndarray, task: str) -> np.ndarray:
    """log of _proba(z), exact from the logits."""
    if task == "binary":
        z = z[:, 0]
        return np.stack([ops.log_sigmoid(-z), ops.log_sigmoid(z)], axis=1)
    return ops.log_softmax(z) if task == "multiclass" else ops.log_sigmoid(z)


def _labels(z: np.ndarray, task: str, classes: np.ndarray, thresholds: Any) -> np.ndarray:
    """Predictions from logits z (n, units): class labels (n,), or a 0/1 int64 matrix (n, n_labels)."""
    if task == "multilabel":
        return multilabel_predict(z, thresholds, from_logits=True).astype(np.int64)
    if task == "binary":
        return classes[multilabel_predict(z, thresholds, from_logits=True)[:, 0]]
    return classes[z.argmax(axis=1)]


def _encode_labels(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Indices (n,) of labels (n,) in the sorted classes; ValueError naming the labels not among them."""
    idx = np.searchsorted(classes, labels)
    found = idx < classes.size
    found[found] = classes[idx[found]] == labels[found]
    if not found.all():
        raise ValueError(f"y contains labels {np.unique(labels[~found])[:5]!r} not in classes {classes!r}")
    return idx


def _lookup(indices: np.ndarray, table: np.ndarray) -> np.ndarray:
    return table[indices]


def _target_summary(y: Any) -> Any:
    """What type_of_target and np.unique need of y: y itself in memory; for Dask y (n,) or (n, L)
    its distinct values, found in one pass, as a column or tiled across y's L columns."""
    if not is_dask(y):
        return y
    import dask.array as da

    values = da.unique(y).compute()
    return values if y.ndim == 1 else np.tile(values[:, None], (1, y.shape[1]))


def _dask_rows(value: Any, name: str, chunks: tuple[int, ...], dtype: Any = None) -> Any:
    """value (a Dask array, DataFrame or Series, or in memory) as a Dask array whose blocks hold
    the rows of X's blocks (`chunks`, rows per block)."""
    import dask.array as da

    from .distribution import blocks

    n = sum(chunks)
    if not is_dask(value):
        arr = np.asarray(value, dtype=dtype)
        if arr.ndim == 0 or len(arr) != n:
            raise ValueError(f"X has {n} samples but {name} has {'none' if arr.ndim == 0 else len(arr)}")
        return da.from_array(arr, chunks=(chunks, *arr.shape[1:]))
    if not isinstance(value, da.Array):
        if not hasattr(value, "to_dask_array"):
            raise TypeError(f"{name} must be a Dask array, DataFrame or Series, got {type(value).__name__}")
        # Partitions like X's are taken to hold the same rows (each block's rows are checked in training).
        same = getattr(value, "npartitions", None) == len(chunks)
        with warnings.catch_warnings():  # string labels become an object array, as they should
            warnings.filterwarnings("ignore", "Dask currently has limited support for converting pandas extension")
            value = value.to_dask_array(lengths=list(chunks) if same else True)
    if value.ndim == 0:
        raise ValueError(f"{name} must have a first axis of samples, got a 0-d Dask array")
    blocks._unknown(value.chunks[0], name)
    if value.shape[0] != n:
        raise ValueError(f"X has {n} samples but {name} has {value.shape[0]}")
    if value.chunks[0] != tuple(chunks):
        value = value.rechunk({0: chunks})
    return value if dtype is None else value.astype(dtype)


def _split_off_validation(X: Any, targets: Any, weights: Any, fraction: float) -> tuple[Any, Any, Any, dict]:
    """Keras' validation_split on Dask rows: the first part trains, the last `fraction` validates."""
    n = X.shape[0]
    split = int(n * (1 - fraction))
    if split == 0 or split == n:
        raise ValueError(f"validation_split={fraction} leaves no training or no validation samples out of {n}")
    val = (X[split:], targets[split:], None if weights is None else weights[split:])
    return X[:split], targets[:split], None if weights is None else weights[:split], {"validation_data": val}
