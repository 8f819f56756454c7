"""`LogitNetClassifier`: a scikit-learn estimator on a logitnet `Sequential`.

The output layer and loss follow the target type (scikit-learn's `type_of_target`): binary -> one
sigmoid unit, multi-class -> softmax, multi-label indicator matrix -> one sigmoid per label.
Probabilities and log-probabilities are computed from the logits, exactly. Needs scikit-learn
(`pip install "logitnet[sklearn]"`); importing `logitnet` itself never imports it.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from . import activations, callbacks, ops, optimizers, regularizers
from .layers import Dense
from .metrics import multilabel_predict
from .model import Sequential


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
        self._setup_targets(y, classes=None)
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
        history = self.model_.fit(X, targets, batch_size=batch_size, epochs=self.epochs,
                                  verbose=self.verbose, callbacks=cbs, shuffle=self.shuffle,
                                  sample_weight=weights, validation_split=validation_split)
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
            if classes is None and type_of_target(y) != "multilabel-indicator":
                raise ValueError("classes must be passed on the first call to partial_fit")
            self._setup_targets(y, classes)
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

    def _validate(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y, multi_output=True, dtype=self._input_dtype(reset), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:  # a column vector: labels, as scikit-learn reads it
            y = column_or_1d(y, warn=True)
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

    def _targets_and_weights(self, y: np.ndarray, sample_weight: Any,
                             n: int) -> tuple[np.ndarray, np.ndarray | None, float]:
        """Integer targets (or the indicator matrix), the weights for the model (sample weights over
        their mean, times class weights; None when all are 1) and the sample weights' mean."""
        if self._task == "multilabel":
            if y.ndim != 2 or y.shape[1] != self.classes_.size:
                raise ValueError(f"y must be a multi-label indicator matrix with {self.classes_.size} columns")
            targets = y
        else:
            labels = y.ravel() if y.ndim == 2 else y
            unknown = np.setdiff1d(labels, self.classes_)
            if unknown.size:
                raise ValueError(f"y contains labels {unknown[:5]!r} not in classes {self.classes_!r}")
            targets = np.searchsorted(self.classes_, labels)
        weights, sw_mean = None, 1.0
        if sample_weight is not None:
            sw = _check_sample_weight(sample_weight, np.empty((n, 0)), dtype=np.float64, ensure_non_negative=True)
            # The model divides a batch's Σ wᵢ·lᵢ by its row count; weights over their mean make that
            # Σ wᵢ·lᵢ / Σ wᵢ for one full batch (in expectation for minibatches), as repeated rows give.
            sw_mean = float(np.mean(sw))
            weights = sw / sw_mean
        if self.class_weight is not None:
            if self._task == "multilabel":
                raise ValueError("class_weight is for single-label targets; use sample_weight for multi-label")
            cw = compute_sample_weight(self.class_weight, targets if self.class_weight == "balanced"
                                       else self.classes_[targets])
            weights = cw if weights is None else weights * cw
        return targets, weights, sw_mean

    # --- predicting ---------------------------------------------------------------------------
    def decision_function(self, X: Any) -> np.ndarray:
        """Logits: (n,) for binary, (n, n_classes) multi-class, (n, n_labels) multi-label."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=self._input_dtype(reset=False))
        chunk = 1024 if self.batch_size == "auto" else max(self.batch_size, 1024)
        z = self.model_.predict_logits(X, batch_size=chunk)
        return z[:, 0] if self._task == "binary" else z

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities: (n, n_classes) (binary: [P(class 0), P(class 1)]), or (n, n_labels)."""
        z = self.decision_function(X)
        if self._task == "binary":
            return np.stack([ops.sigmoid(-z), ops.sigmoid(z)], axis=1)  # 1 − p without a subtraction
        return ops.softmax(z) if self._task == "multiclass" else ops.sigmoid(z)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """log of predict_proba, exact from the logits (no log of a rounded probability)."""
        z = self.decision_function(X)
        if self._task == "binary":
            return np.stack([ops.log_sigmoid(-z), ops.log_sigmoid(z)], axis=1)
        return ops.log_softmax(z) if self._task == "multiclass" else ops.log_sigmoid(z)

    def predict(self, X: Any) -> np.ndarray:
        """Class labels (n,), or a 0/1 indicator matrix (n, n_labels) using `thresholds`."""
        z = self.decision_function(X)
        if self._task == "multilabel":
            return multilabel_predict(z, self.thresholds, from_logits=True).astype(np.int64)
        if self._task == "binary":
            return self.classes_[multilabel_predict(z[:, None], self.thresholds, from_logits=True)[:, 0]]
        return self.classes_[z.argmax(axis=1)]

    # --- exporting ----------------------------------------------------------------------------
    def export(self, path: str, opset: int = 17) -> None:
        """Write the fitted network as ONNX (needs `pip install "logitnet[onnx]"`): input (batch,
        n_features) in the fitted model's dtype; outputs logits (batch, units), probabilities as
        predict_proba and label as predict (the classes themselves, strings included), with no ZipMap."""
        check_is_fitted(self)
        from . import onnx_export

        onnx_export.export(self.model_, path, opset=opset, thresholds=self.thresholds, task=self._task,
                           class_labels=None if self._task == "multilabel" else self.classes_)
