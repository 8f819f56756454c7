"""Classification metrics: functional forms on labels, and stateful epoch metrics read from logits.

The model hands a stateful metric the LOGITS of its last layer; the metric's `task` says how to read
them: "multiclass" (softmax over the last axis), "binary" (one sigmoid unit), "multilabel" (one
sigmoid per label). Thresholds are given on probabilities and applied exactly to logits: σ(z) >= t
exactly when z >= logit(t). Counts are summed over batches, so an epoch result equals the result on
the concatenated data. Zero divisions give 0.0, never NaN or a warning.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from decimal import Decimal, localcontext
from functools import lru_cache

import numpy as np

from . import ops

Array = np.ndarray
CLASSIFICATION = ("multiclass", "binary", "multilabel")
TASKS = (*CLASSIFICATION, "regression")
AVERAGES = ("micro", "macro", None, "binary")


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def _numeric(x: object, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array, got dtype {a.dtype}")
    return a


def _indicators(y: object, name: str) -> np.ndarray:
    """0/1 indicators as int8 (n, L); a vector (n,) is one label."""
    a = _numeric(y, name)
    a = a[:, None] if a.ndim == 1 else a
    if a.ndim != 2:
        raise ValueError(f"{name} must be indicators of shape (n, L) or (n,), got shape {a.shape}")
    bad = (a != 0) & (a != 1)
    if bad.any():
        raise ValueError(f"{name} must hold 0/1 indicators, got the value {a[bad].flat[0].item()!r}")
    return a.astype(np.int8)


def _indicator_pair(y_true: object, y_pred: object) -> tuple[np.ndarray, np.ndarray]:
    t, p = _indicators(y_true, "y_true"), _indicators(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true of shape {t.shape} does not match y_pred of shape {p.shape}")
    return t, p


def _class_indices(y: object, name: str, n_classes: int | None = None) -> np.ndarray:
    """Integer class labels (n,) as int64, each in [0, n_classes)."""
    a = _numeric(y, name)
    a = a[:, 0] if a.ndim == 2 and a.shape[1] == 1 else a
    if a.ndim != 1:
        raise ValueError(f"{name} must hold class indices of shape (n,) or (n, 1), got shape {np.shape(y)}")
    if a.dtype.kind == "f" and not (np.isfinite(a) & (a == np.round(a))).all():
        raise ValueError(f"{name} must hold integer class indices, got {a[a != np.round(a)].flat[0]!r}")
    labels = a.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"{name} holds the label {labels.min()}; class labels must be >= 0")
    if n_classes is not None and labels.size and labels.max() >= n_classes:
        raise ValueError(f"{name} holds the label {labels.max()}, outside [0, {n_classes})")
    return labels


def confusion_matrix(y_true: object, y_pred: object, n_classes: int | None = None) -> np.ndarray:
    """Counts (C, C) int64 from labels (n,): rows are the true class, columns the predicted one."""
    t = _class_indices(y_true, "y_true", n_classes)
    p = _class_indices(y_pred, "y_pred", n_classes)
    if t.shape != p.shape:
        raise ValueError(f"y_true of shape {t.shape} does not match y_pred of shape {p.shape}")
    if n_classes is None:
        n_classes = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    elif n_classes < 0:
        raise ValueError(f"n_classes must be >= 0, got {n_classes}")
    flat = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)


def hamming_loss(y_true: object, y_pred: object) -> float:
    """Fraction of wrong label entries: indicators (n, L), (n, L) -> float."""
    t, p = _indicator_pair(y_true, y_pred)
    return float(_safe_div((t != p).sum(), t.size))


def subset_accuracy(y_true: object, y_pred: object) -> float:
    """Fraction of samples whose whole label set is right: indicators (n, L), (n, L) -> float."""
    t, p = _indicator_pair(y_true, y_pred)
    return float(_safe_div((t == p).all(axis=1).sum(), t.shape[0]))


def _label_counts(t: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Per-label weighted (tp, fp, fn), each (L,) float64, from indicators (n, L) and weights (n,)."""
    w = np.ones((t.shape[0], 1)) if w is None else np.asarray(w, dtype=np.float64)[:, None]
    return ((w * (t & p)).sum(0), (w * (p & (1 - t))).sum(0), (w * (t & (1 - p))).sum(0))


def _scores(stat: str, tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, average: str | None
            ) -> float | np.ndarray:
    """Precision, recall or F1 from per-label counts (L,), averaged as asked; 0.0 on 0/0."""
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    if average == "binary" and tp.shape[0] != 1:
        raise ValueError(f"average='binary' needs a single label, got {tp.shape[0]}; use 'micro' or 'macro'")
    if average == "micro":
        tp, fp, fn = tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True)
    num, den = {"precision": (tp, tp + fp), "recall": (tp, tp + fn), "f1": (2 * tp, 2 * tp + fp + fn)}[stat]
    per_label = _safe_div(num, den)
    if average is None:
        return per_label
    return float(per_label.mean()) if per_label.size else 0.0


def precision_score(y_true: object, y_pred: object, average: str | None = "micro") -> float | np.ndarray:
    """Precision from indicators (n, L): a float, or per label (L,) with average=None."""
    return _scores("precision", *_label_counts(*_indicator_pair(y_true, y_pred)), average)


def recall_score(y_true: object, y_pred: object, average: str | None = "micro") -> float | np.ndarray:
    """Recall from indicators (n, L): a float, or per label (L,) with average=None."""
    return _scores("recall", *_label_counts(*_indicator_pair(y_true, y_pred)), average)


def f1_score(y_true: object, y_pred: object, average: str | None = "micro") -> float | np.ndarray:
    """F1 = 2tp / (2tp + fp + fn) from indicators (n, L): a float, or per label (L,) if average=None."""
    return _scores("f1", *_label_counts(*_indicator_pair(y_true, y_pred)), average)


def _check_thresholds(thresholds: object, n_labels: int | None = None) -> np.ndarray:
    """Thresholds as float64, a scalar or one per label (L,), each a probability in [0, 1]."""
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim > 1:
        raise ValueError(f"thresholds must be a scalar or one per label (L,), got shape {t.shape}")
    if not ((t >= 0) & (t <= 1)).all():
        raise ValueError(f"thresholds are probabilities and must lie in [0, 1], got {thresholds!r}")
    if n_labels is not None and t.ndim == 1 and t.shape[0] != n_labels:
        raise ValueError(f"got {t.shape[0]} thresholds for {n_labels} labels")
    return t


@lru_cache(maxsize=1 << 16)
def _logit_cut(t: float) -> float:
    """The least float64 c with σ(c) >= t, so that σ(z) >= t exactly when z >= c, for every float z."""
    # log(t) − log1p(−t) in float64 can land an ulp or two off logit(t) and flip a logit at the
    # boundary, so logit(t) is taken in 100-digit decimals (Decimal's ln is correctly rounded).
    if t == 0.0 or t == 1.0:
        return -np.inf if t == 0.0 else np.inf
    with localcontext() as ctx:
        ctx.prec = 100
        big_t = Decimal(t)
        exact = big_t.ln() - (1 - big_t).ln()  # 0 exactly at t = 0.5
    cut = float(exact)
    return cut if Decimal(cut) >= exact else float(np.nextafter(cut, np.inf))


def _logits_at_least(z: np.ndarray, t: np.ndarray) -> np.ndarray:
    """σ(z) >= t, exactly, for logits z (n, L) and thresholds t () or (L,); NaN is never positive."""
    cuts = np.array([_logit_cut(float(v)) for v in t.ravel()]).reshape(t.shape)
    return z.astype(np.float64) >= cuts  # widening float16/32 is exact


def multilabel_predict(scores: object, thresholds: object = 0.5, from_logits: bool = True) -> np.ndarray:
    """0/1 decisions int8 (n, L) from scores (n, L): positive where the probability is >= its threshold."""
    s = _numeric(scores, "scores")
    if s.ndim not in (1, 2):
        raise ValueError(f"scores must have shape (n, L) or (n,), got {s.shape}")
    s2 = s[:, None] if s.ndim == 1 else s
    t = _check_thresholds(thresholds, s2.shape[1])
    if from_logits:
        out = _logits_at_least(s2, t)
    else:
        if not ((s2 >= 0) & (s2 <= 1)).all():
            raise ValueError("scores must be probabilities in [0, 1] when from_logits=False")
        out = s2 >= t
    return out.astype(np.int8).reshape(s.shape)


def _auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> float | None:
    """Weighted Mann-Whitney AUC, ties counted one half; None when a class has no weight."""
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; ROC AUC needs ordered scores")
    _, group = np.unique(scores, return_inverse=True)
    pos = np.bincount(group.ravel(), weights * labels)
    neg = np.bincount(group.ravel(), weights * (1 - labels))
    below = np.cumsum(neg) - neg  # negative weight strictly below each distinct score
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        return None
    return float(np.dot(pos, below + 0.5 * neg) / (total_pos * total_neg))


def _sample_weight(sample_weight: object | None, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(_numeric(sample_weight, "sample_weight"), dtype=np.float64)
    w = w[:, 0] if w.ndim == 2 and w.shape[1] == 1 else w
    if w.shape != (n,):
        raise ValueError(f"sample_weight of shape {np.shape(sample_weight)} does not match {n} samples")
    if not (np.isfinite(w) & (w >= 0)).all():
        raise ValueError("sample_weight must be finite and >= 0")
    return w


def roc_auc(y_true: object, scores: object, sample_weight: object | None = None) -> float:
    """Exact binary ROC AUC from 0/1 labels (n,) and logits or probabilities (n,)."""
    t = _indicators(y_true, "y_true")
    s = np.asarray(_numeric(scores, "scores"), dtype=np.float64)
    s = s[:, None] if s.ndim == 1 else s
    if t.shape[1] != 1 or s.shape != t.shape:
        raise ValueError(f"roc_auc needs y_true and scores of one shape (n,), got {t.shape} and {s.shape}")
    value = _auc(t[:, 0], s[:, 0], _sample_weight(sample_weight, t.shape[0]))
    if value is None:
        raise ValueError("ROC AUC is undefined: y_true needs both positive and negative samples")
    return value


def _read(task: str, y_true: object, logits: object) -> tuple[np.ndarray, np.ndarray]:
    """Multiclass: labels (n,), logits (n, C). Binary/multilabel: targets int8 (n, L), logits (n, L)."""
    z = _numeric(logits, "logits")
    if task == "multiclass":
        if z.ndim != 2 or z.shape[1] < 2:
            raise ValueError(f"multiclass logits must have shape (n, C) with C >= 2, got {z.shape}")
        y = _numeric(y_true, "y_true")
        if y.shape == z.shape:  # one-hot or probability rows
            return np.argmax(y, axis=1), z
        if y.shape not in ((z.shape[0],), (z.shape[0], 1)):
            raise ValueError(f"y_true of shape {y.shape} does not match logits of shape {z.shape}: "
                             f"expected class indices ({z.shape[0]},) or one-hot rows {z.shape}")
        return _class_indices(y, "y_true", z.shape[1]), z
    y = _numeric(y_true, "y_true")
    if task == "binary":
        if z.ndim not in (1, 2) or z.shape[1:] not in ((), (1,)):
            raise ValueError(f"binary logits must have shape (n,) or (n, 1), got {z.shape}; "
                             "for several sigmoid outputs use task='multilabel'")
        z = z.reshape(-1, 1)
        expected = [(z.shape[0],), z.shape]
    elif z.ndim != 2:
        raise ValueError(f"multilabel logits must have shape (n, L), got {z.shape}")
    else:
        expected = [z.shape]
    if y.shape not in expected:
        raise ValueError(f"y_true of shape {y.shape} does not match logits of shape {np.shape(logits)}")
    return _indicators(y.reshape(z.shape), "y_true"), z


class Metric(ABC):
    """Base: update_state(y_true, logits, sample_weight) per batch, result() for the epoch."""

    tasks = CLASSIFICATION
    higher_is_better = True

    def __init__(self, task: str, name: str) -> None:
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if task not in self.tasks:
            raise ValueError(f"{type(self).__name__} is for the task(s) {', '.join(self.tasks)}, not {task!r}")
        self.task, self.name = task, name
        self.reset_state()

    @abstractmethod
    def reset_state(self) -> None:
        """Forget every batch seen."""

    def update_state(self, y_true: Array, logits: Array, sample_weight: Array | None = None) -> None:
        """Add a batch: logits (n, C|L) or (n,), y_true as the task reads it, weights (n,)."""
        labels, z = _read(self.task, y_true, logits)
        self._update(labels, z, _sample_weight(sample_weight, z.shape[0]))

    @abstractmethod
    def result(self) -> float:
        """The metric over every batch since the last reset."""

    def __call__(self, y_true: Array, logits: Array, sample_weight: Array | None = None) -> float:
        """Update with a batch, then return result() (as Keras)."""
        self.update_state(y_true, logits, sample_weight)
        return self.result()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, name={self.name!r})"


class _Thresholded(Metric):
    """A metric of decisions: the argmax for multiclass, σ(z) >= t for sigmoid outputs."""

    def __init__(self, task: str, thresholds: object, name: str) -> None:
        self.thresholds = _check_thresholds(thresholds)
        if task == "multiclass" and not (self.thresholds.ndim == 0 and self.thresholds == 0.5):
            raise ValueError("thresholds apply to sigmoid outputs; a multiclass metric takes the argmax")
        super().__init__(task, name)

    def _decide(self, z: Array) -> Array:
        if self.task == "multiclass":
            return np.argmax(z, axis=1)
        return _logits_at_least(z, _check_thresholds(self.thresholds, z.shape[1])).astype(np.int8)


class Accuracy(_Thresholded):
    """Multiclass: argmax == label. Binary/multilabel: mean over label entries (Keras BinaryAccuracy)."""

    def __init__(self, task: str, thresholds: object = 0.5, name: str = "accuracy") -> None:
        super().__init__(task, thresholds, name)

    def reset_state(self) -> None:
        self._hits, self._total = 0.0, 0.0

    def _per_sample(self, labels: Array, pred: Array) -> Array:
        return labels == pred if self.task == "multiclass" else (labels == pred).mean(axis=1)

    def _update(self, labels: Array, z: Array, w: Array) -> None:
        self._hits += float(np.dot(w, self._per_sample(labels, self._decide(z))))
        self._total += float(w.sum())

    def result(self) -> float:
        return float(_safe_div(self._hits, self._total))


class HammingLoss(Accuracy):
    """Fraction of wrong label entries (multilabel only)."""

    tasks = ("multilabel",)

    def __init__(self, task: str = "multilabel", thresholds: object = 0.5,
                 name: str = "hamming_loss") -> None:
        super().__init__(task, thresholds, name)

    def _per_sample(self, labels: Array, pred: Array) -> Array:
        return (labels != pred).mean(axis=1)


class SubsetAccuracy(Accuracy):
    """Fraction of samples with every label right (multilabel only)."""

    tasks = ("multilabel",)

    def __init__(self, task: str = "multilabel", thresholds: object = 0.5,
                 name: str = "subset_accuracy") -> None:
        super().__init__(task, thresholds, name)

    def _per_sample(self, labels: Array, pred: Array) -> Array:
        return (labels == pred).all(axis=1)


class _PRF(_Thresholded):
    """Weighted per-class (tp, fp, fn); `stat` says which score result() reports."""

    stat: str
    default_name: str

    def __init__(self, task: str, average: str | None = None, thresholds: object = 0.5,
                 name: str | None = None) -> None:
        self.average = average or {"binary": "binary", "multiclass": "macro"}.get(task, "micro")
        if self.average not in ("micro", "macro", "binary"):
            raise ValueError(f"average must be 'micro', 'macro' or 'binary', got {average!r}")
        if self.average == "binary" and task != "binary":
            raise ValueError(f"average='binary' is for task='binary'; use 'micro' or 'macro' for {task!r}")
        super().__init__(task, thresholds, name or self.default_name)

    def reset_state(self) -> None:
        self._counts: list[Array] | None = None  # [tp, fp, fn, seen], each (K,)

    def _update(self, labels: Array, z: Array, w: Array) -> None:
        pred = self._decide(z)
        if self.task == "multiclass":
            k, hit = z.shape[1], labels == pred
            tp = np.bincount(labels[hit], w[hit], k)
            fp, fn = np.bincount(pred[~hit], w[~hit], k), np.bincount(labels[~hit], w[~hit], k)
            # As scikit-learn, a macro average spans the classes seen in y_true or the predictions.
            seen = (np.bincount(labels, minlength=k) + np.bincount(pred, minlength=k)) > 0
        else:
            tp, fp, fn = _label_counts(labels, pred, w)
            seen = np.ones(z.shape[1], dtype=bool)
        if self._counts is not None and self._counts[0].shape != tp.shape:
            raise ValueError(f"logits have {tp.shape[0]} outputs; earlier batches had {len(self._counts[0])}")
        new = [tp, fp, fn, seen]
        self._counts = new if self._counts is None else [a + b for a, b in zip(self._counts, new, strict=True)]

    def result(self) -> float:
        if self._counts is None:
            return 0.0
        tp, fp, fn, seen = self._counts
        average = "micro" if self.average == "binary" else self.average  # one label: micro = binary
        return _scores(self.stat, tp[seen], fp[seen], fn[seen], average)


class Precision(_PRF):
    """tp / (tp + fp): binary, the positive class; multiclass macro by default; multilabel micro."""

    stat = default_name = "precision"


class Recall(_PRF):
    """tp / (tp + fn): binary, the positive class; multiclass macro by default; multilabel micro."""

    stat = default_name = "recall"


class F1Score(_PRF):
    """2tp / (2tp + fp + fn): binary, the positive class; multiclass macro by default; multilabel micro."""

    stat, default_name = "f1", "f1_score"


class AUC(Metric):
    """Exact ROC AUC of every score seen, flattened over labels (one-vs-rest for multiclass)."""

    def __init__(self, task: str, name: str = "auc") -> None:
        super().__init__(task, name)

    def reset_state(self) -> None:
        self._chunks: list[tuple[Array, Array, Array]] = []

    def _update(self, labels: Array, z: Array, w: Array) -> None:
        # Sigmoid logits rank exactly as their probabilities, with no ties from rounding to 1.0;
        # across softmax rows log p ranks as p does, again without the ties of rounded probabilities.
        z = z.astype(np.float64)
        if self.task == "multiclass":
            labels, z = (labels[:, None] == np.arange(z.shape[1])).astype(np.int8), ops.log_softmax(z)
        self._chunks.append((labels.ravel(), z.ravel(), np.repeat(w, z.shape[1])))

    def result(self) -> float:
        """The AUC, or 0.0 (as Keras) until both classes have been seen."""
        if not self._chunks:
            return 0.0
        labels, scores, weights = (np.concatenate(parts) for parts in zip(*self._chunks, strict=True))
        value = _auc(labels, scores, weights)
        return 0.0 if value is None else value


class _RegressionMetric(Metric):
    """A mean of per-sample errors over every batch, read from the model's outputs (not logits)."""

    tasks = ("regression",)
    higher_is_better = False

    def reset_state(self) -> None:
        self._total, self._weight = 0.0, 0.0

    def update_state(self, y_true: Array, y_pred: Array, sample_weight: Array | None = None) -> None:
        pred = _numeric(y_pred, "y_pred").astype(np.float64)
        y = _numeric(y_true, "y_true").astype(np.float64)
        if y.ndim == pred.ndim - 1 and pred.shape[-1:] == (1,):
            y = y[..., None]
        if y.shape != pred.shape:
            raise ValueError(f"y_true of shape {y.shape} does not match predictions of shape {pred.shape}")
        per_sample = self._error(pred - y).reshape(len(pred), -1).mean(axis=1)
        w = _sample_weight(sample_weight, len(pred))
        self._total += float(np.dot(per_sample, w))
        self._weight += float(w.sum())

    def result(self) -> float:
        return self._total / self._weight if self._weight else 0.0


class MeanSquaredError(_RegressionMetric):
    """The mean of (prediction − target)², as Keras' 'mse' metric."""

    def __init__(self, task: str = "regression", name: str = "mean_squared_error") -> None:
        super().__init__(task, name)

    def _error(self, d: Array) -> Array:
        return d * d


class MeanAbsoluteError(_RegressionMetric):
    """The mean of |prediction − target|, as Keras' 'mae' metric."""

    def __init__(self, task: str = "regression", name: str = "mean_absolute_error") -> None:
        super().__init__(task, name)

    def _error(self, d: Array) -> Array:
        return np.abs(d)


HammingLoss.higher_is_better = False

# The one registry of metric names: the model, the CLI, the estimator, saving and the callbacks
# (which direction is an improvement) look names up here.
METRICS: dict[str, tuple[type[Metric], dict]] = {
    "accuracy": (Accuracy, {}), "acc": (Accuracy, {}), "precision": (Precision, {}), "recall": (Recall, {}),
    "f1": (F1Score, {}), "f1_score": (F1Score, {}), "micro_f1": (F1Score, {"average": "micro"}),
    "macro_f1": (F1Score, {"average": "macro"}), "auc": (AUC, {}),
    "hamming_loss": (HammingLoss, {}), "subset_accuracy": (SubsetAccuracy, {}),
    "mse": (MeanSquaredError, {}), "mean_squared_error": (MeanSquaredError, {}),
    "mae": (MeanAbsoluteError, {}), "mean_absolute_error": (MeanAbsoluteError, {}),
}


def higher_is_better(name: str) -> bool:
    """Whether a larger value of the logged quantity `name` ('val_accuracy', 'loss', ...) is an
    improvement: True for the registry's scores, False for losses and errors."""
    entry = METRICS.get(name.removeprefix("val_").lower())
    return entry is not None and entry[0].higher_is_better


def get(identifier: str | Metric, task: str) -> Metric:
    """A metric from its name (its .name is the name as given) or a Metric instance, as is."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if isinstance(identifier, Metric):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"a metric is a name or a Metric instance, got {type(identifier).__name__}")
    if identifier.lower() not in METRICS:
        raise ValueError(f"unknown metric {identifier!r}; known names: {', '.join(sorted(METRICS))}")
    cls, kwargs = METRICS[identifier.lower()]
    return cls(task, name=identifier, **kwargs)
