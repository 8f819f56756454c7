"""The head: the last layer's activation paired with the loss, taken from the logits exactly.

softmax + (sparse) categorical cross-entropy and sigmoid + binary cross-entropy are fused: the
loss and dL/dz come from the pre-activation z, whatever `from_logits` says, and predictions are
still probabilities. A linear output with from_logits=True is the classic improved form and
predicts logits. Every other pairing is refused at compile time with a message saying the fix.
The regression losses (MSE, MAE, Huber) take the outputs a = activation(z), whatever the
activation, and chain dL/da through its derivative.
"""

from __future__ import annotations

import numpy as np

from . import activations
from . import losses as losses_mod
from .ops.sigmoid import binary_cross_entropy
from .ops.softmax_xent import check_int_labels, check_prob_labels, softmax_cross_entropy

_FIX_SOFTMAX = ("use Dense(n_classes, activation='softmax') with from_logits=False, or "
                "activation='linear' with from_logits=True (logitnet computes the loss from the "
                "logits exactly either way)")
_FIX_SIGMOID = ("use activation='sigmoid' with from_logits=False, or activation='linear' with "
                "from_logits=True (logitnet computes the loss from the logits exactly either way)")


class Head:
    """Loss and dL/dz for the last layer's logits z (n, units); which task the outputs serve."""

    def __init__(self, activation: str, units: int | None, loss: losses_mod.Loss,
                 activation_params: dict | None = None) -> None:
        self.loss = loss
        self.units = units  # None until the model is built
        self.activation = activation
        self.activation_params = dict(activation_params or {})
        self._smoothing = bool(getattr(loss, "label_smoothing", 0.0))
        if isinstance(loss, _REGRESSION):
            self.family, self.task, self.sparse = "regression", "regression", False
        elif isinstance(loss, (losses_mod.SparseCategoricalCrossentropy, losses_mod.CategoricalCrossentropy)):
            _check_pair(activation, loss, "softmax", _FIX_SOFTMAX)
            if units == 1:
                raise ValueError(
                    f"{type(loss).__name__} needs at least 2 output units: a softmax over one unit "
                    "always outputs 1. For a binary task use Dense(1, activation='sigmoid') with "
                    "BinaryCrossentropy, or Dense(2, activation='softmax')"
                )
            self.family, self.task = "softmax", "multiclass"
            self.sparse = isinstance(loss, losses_mod.SparseCategoricalCrossentropy)
            if self.sparse and loss.ignore_class is not None:
                raise ValueError("ignore_class is supported by the loss functions but not in model "
                                 "training; drop those samples or give them sample_weight=0")
        elif isinstance(loss, losses_mod.BinaryCrossentropy):
            _check_pair(activation, loss, "sigmoid", _FIX_SIGMOID)
            self.family, self.sparse = "sigmoid", False
            self.task = "binary" if units == 1 else "multilabel"
        else:
            raise ValueError(f"unsupported loss {loss!r}: logitnet trains with the cross-entropies "
                             "and the regression losses (MSE, MAE, Huber) in logitnet.losses")
        if getattr(loss, "axis", -1) != -1:
            raise ValueError(f"{type(loss).__name__}(axis={loss.axis}) is not supported in a model; use axis=-1")
        if loss.reduction not in ("sum_over_batch_size", "mean", "sum"):
            raise ValueError(f"a model trains on a scalar loss: reduction must be 'sum_over_batch_size' or "
                             f"'sum', got {loss.reduction!r}")

    # --- targets ------------------------------------------------------------------------------
    def check_targets(self, y: object, n_samples: int, dtype: np.dtype) -> np.ndarray:
        """Validate all targets before training and return them in the form the loss uses:
        int labels (n,) for a sparse loss, rows (n, C) for a categorical one, (n, L) for BCE."""
        arr = np.asarray(y)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"y must be numeric (class indices or 0/1 targets), got dtype {arr.dtype}; "
                             "map string labels to integers first")
        if arr.ndim == 0 or len(arr) != n_samples:
            raise ValueError(f"x has {n_samples} samples but y has "
                             f"{'a scalar' if arr.ndim == 0 else len(arr)}")
        name = type(self.loss).__name__
        if self.family == "regression":
            if arr.ndim == 1 and self.units == 1:
                arr = arr[:, None]
            if arr.ndim != 2 or arr.shape[1] != self.units:
                raise ValueError(f"{name} with {self.units} output(s) expects targets of shape "
                                 f"(n, {self.units}){' or (n,)' if self.units == 1 else ''}, got {arr.shape}")
            out = arr.astype(dtype)
            if not np.isfinite(out).all():
                raise ValueError(f"{name} targets must be finite (in {dtype})")
            return out
        if self.family == "softmax" and self.sparse:
            if arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr[:, 0]
            if arr.ndim != 1:
                raise ValueError(
                    f"{name} expects integer class labels of shape (n,) or (n, 1), got shape {arr.shape}"
                    + ("; these look one-hot: use CategoricalCrossentropy, or y.argmax(axis=1)"
                       if arr.ndim == 2 and arr.shape[1] == self.units else "")
                )
            return check_int_labels(arr, self.units)
        if self.family == "softmax":
            if arr.ndim == 1:
                raise ValueError(f"{name} expects one-hot (or probability) rows of shape (n, {self.units}), "
                                 "got integer labels of shape (n,): use SparseCategoricalCrossentropy")
            if arr.shape[1:] != (self.units,):
                raise ValueError(f"{name} expects targets of shape (n, {self.units}), got {arr.shape}")
            check_prob_labels(arr)
            sums = arr.sum(axis=1, dtype=np.float64)
            off = np.flatnonzero(np.abs(sums - 1) > 1e-3)
            if off.size:
                raise ValueError(f"{name} expects each row of y to be one-hot or a probability "
                                 f"distribution summing to 1; row {off[0]} sums to {sums[off[0]]:g}")
            return arr.astype(dtype, copy=False)
        if arr.ndim == 1 and self.units == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != self.units:
            raise ValueError(f"{name} with {self.units} sigmoid output(s) expects targets of shape "
                             f"(n, {self.units}){' or (n,)' if self.units == 1 else ''}, got {arr.shape}")
        if arr.size and not ((arr >= 0) & (arr <= 1)).all():
            bad = arr[~((arr >= 0) & (arr <= 1))].flat[0]
            raise ValueError(f"binary targets must lie in [0, 1], got {bad.item()!r}")
        return arr.astype(dtype, copy=False)

    def class_of(self, targets: np.ndarray) -> np.ndarray:
        """The class of each sample (n,) for class_weight: label, argmax of a row, or the 0/1 target."""
        if self.family == "regression":
            raise ValueError("class_weight applies to classification; a regression loss takes sample_weight")
        if self.family == "softmax":
            return targets if self.sparse else targets.argmax(axis=1)
        if self.units != 1:
            raise ValueError("class_weight applies to single-label targets; for multi-label targets "
                             "pass sample_weight (or BinaryCrossentropy per-label weights via ops.pos_weight)")
        return (targets[:, 0] >= 0.5).astype(np.intp)

    # --- loss ---------------------------------------------------------------------------------
    def per_sample(self, z: np.ndarray, targets: np.ndarray, need_grad: bool,
                   grad_scale: float | np.ndarray = 1.0) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-sample loss (n,) and its gradient dloss_i/dz (n, units), from the logits z; row i of
        the gradient is multiplied by grad_scale (a number, or (n,) float64) before its one rounding."""
        if self.family == "regression":
            a = activations.forward(self.activation, z, **self.activation_params)
            loss, grad_a = losses_mod.regression_loss_and_grad(self.loss, a, targets, need_grad, grad_scale)
            if grad_a is None or self.activation == "linear":
                return loss, grad_a
            return loss, activations.backward(self.activation, z, a, grad_a, **self.activation_params)
        ls = getattr(self.loss, "label_smoothing", 0.0)
        if self.family == "softmax":
            if ls:
                targets = losses_mod.smooth_categorical(targets, ls, self.units)
            # Targets were checked once, before training (check_targets).
            return softmax_cross_entropy(z, targets, need_grad, grad_scale, checked=True)
        if ls:
            targets = losses_mod.smooth_binary(targets, ls)
        per_label = np.asarray(grad_scale, np.float64) / self.units  # Keras: the mean over the labels
        loss, grad = binary_cross_entropy(z, targets, need_grad=need_grad,
                                          grad_scale=per_label[:, None] if per_label.ndim else per_label)
        return loss.mean(axis=1, dtype=np.float64).astype(z.dtype), grad

    def batch(self, z: np.ndarray, targets: np.ndarray, weights: np.ndarray | None,
              need_grad: bool = True, n_batch: int | None = None) -> tuple[float, np.ndarray | None]:
        """The batch loss (a float, reduced as the Loss says) and dL/dz (n, units) for training.

        z may be one part of a batch of `n_batch` rows (data-parallel training): the mean then divides
        by n_batch, so the parts' losses and gradients add up to the batch's.
        dL/dz lives in a work buffer that the next call may overwrite.
        """
        scale = 1.0 if self.loss.reduction == "sum" else 1.0 / (len(z) if n_batch is None else n_batch)
        if self.sparse and weights is None and need_grad and z.dtype == np.float32 and not self._smoothing:
            loss, grad = softmax_cross_entropy(z, targets, True, scale, checked=True, out=self._buffers(z.shape))
            return float(loss.sum(dtype=np.float64)) * scale, grad
        # The mean's 1/n and the weights go into the gradient before its one rounding.
        w64 = None if weights is None else weights.astype(np.float64)
        loss, grad = self.per_sample(z, targets, need_grad, scale if w64 is None else w64 * scale)
        total = float(loss.sum(dtype=np.float64) if w64 is None else np.dot(loss.astype(np.float64), w64))
        return total * scale, grad

    def metric_values(self, z: np.ndarray) -> np.ndarray:
        """What the metrics read: the logits for a classifier, the outputs for a regression."""
        if self.family != "regression":
            return z
        return activations.forward(self.activation, z, **self.activation_params)

    def _buffers(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Per-sample loss (n,) and gradient (n, units) float32 work arrays, kept per batch shape."""
        bufs = getattr(self, "_work", None)
        if bufs is None or bufs[1].shape != shape:
            bufs = self._work = (np.empty(shape[0], np.float32), np.empty(shape, np.float32))
        return bufs

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_work", None)  # work arrays: not worth pickling
        return state


_REGRESSION = tuple(getattr(losses_mod, n) for n in ("MeanSquaredError", "MeanAbsoluteError", "Huber")
                    if hasattr(losses_mod, n))


def _check_pair(activation: str, loss: losses_mod.Loss, probs_activation: str, fix: str) -> None:
    name = type(loss).__name__
    if activation == probs_activation and loss.from_logits:
        raise ValueError(f"{name}(from_logits=True) after a {activation} output: the layer already "
                         f"outputs probabilities, not logits; {fix}")
    if activation == "linear" and not loss.from_logits:
        raise ValueError(f"{name}(from_logits=False) expects probabilities, but the last layer is "
                         f"linear and outputs logits; {fix}")
    if activation not in (probs_activation, "linear"):
        raise ValueError(f"{name} cannot follow a {activation!r} output layer; {fix}")
