"""Inside the output layer, for one input row: the logits z, exp(z − max z), the probabilities a,
and the loss for a true label taken two ways, exactly from z and from a rounded a first.

The second way is the seed notes' rounding problem made visible: a probability that rounds to 1 in
float32 gives −log 1 = 0 where the true loss is 4e-31, and one that rounds to 0 gives inf where the
true loss is a finite 140. `explain(model, x, y)` returns an `Explanation`; `.table()` prints it.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import losses, metrics, ops

_SOFTMAX_LOSSES = (losses.SparseCategoricalCrossentropy, losses.CategoricalCrossentropy)


@dataclass
class Explanation:
    """One row's trip through the output layer. Arrays are per output unit (C,), in the model's dtype
    except `shifted_exp` (float64); losses are scalars of the model's dtype, None without a label."""

    kind: str  # the last layer's activation: 'softmax', 'sigmoid' or 'linear'
    head: str  # how the logits become probabilities: 'softmax' or 'sigmoid'
    row: int
    names: list[str]
    logits: np.ndarray  # z
    probs: np.ndarray  # a = softmax(z) or σ(z), exact and rounded once to the model's dtype
    shifted_exp: np.ndarray | None  # exp(z − max z), the softmax numerators (softmax only)
    predicted: int | np.ndarray  # softmax: the argmax class; sigmoid: 0/1 per label (σ(z) >= threshold)
    thresholds: np.ndarray | None = None  # sigmoid: the probability each label is cut at (L,)
    label: int | np.ndarray | None = None  # softmax: the true class; sigmoid: the targets (L,)
    loss: np.floating | None = None  # from the logits, exactly (sigmoid: the mean over labels, as Keras)
    loss_from_probs: np.floating | None = None  # from the rounded probabilities: −log a_y (or the BCE of a)
    label_losses: np.ndarray | None = None  # sigmoid: the exact BCE of each label (L,)
    label_losses_from_probs: np.ndarray | None = None  # sigmoid: each label's BCE from the rounded a (L,)

    @property
    def dtype(self) -> np.dtype:
        return self.logits.dtype

    def table(self) -> str:
        """A plain-text table of the row for the terminal, each number in full (shortest round trip)."""
        return _softmax_table(self) if self.head == "softmax" else _sigmoid_table(self)

    def __str__(self) -> str:
        return self.table()

    def plot(self, path: Any) -> Any:
        """Write a PNG of two bar panels, z and a per unit (needs matplotlib); returns the path."""
        from . import plotting

        if self.label is None:
            true = None
        elif self.head == "softmax":
            true = [int(self.label)]
        else:
            true = [k for k, v in enumerate(np.asarray(self.label)) if v >= 0.5]
        return plotting.logits_and_probabilities(self.logits, self.probs, self.names, path, head=self.head,
                                                 true=true, thresholds=self.thresholds)


def explain(model: Any, x: object, y: object = None, row: int = 0) -> Explanation:
    """Explain the output layer for x[row] (x (n, d), or one sample (d,)). y, optional: labels for
    all of x (classes (n,) or one-hot (n, C); sigmoid targets (n, L)), or the row's own (a class
    index or name, a one-hot (C,) for a single sample, or L targets in [0, 1])."""
    if isinstance(row, bool) or not isinstance(row, numbers.Integral):
        raise TypeError(f"row must be an integer, got {row!r}")
    row = int(row)
    features = np.asarray(x)
    if features.ndim == 0:
        raise ValueError("x must be one sample (d,) or rows (n, d), got a scalar")
    single = features.ndim == 1
    n_rows = 1 if single else len(features)
    if not 0 <= row < n_rows:
        raise ValueError(f"row {row} is out of range: x has {n_rows} row{'s' * (n_rows != 1)}"
                         + (f" (0 to {n_rows - 1})" if n_rows else ""))
    sample = features[None] if single else features[row:row + 1]
    kind, head = _output_kind(model)
    logits = np.asarray(model.predict_logits(sample))[0]
    if logits.ndim != 1:
        raise ValueError(f"explain() needs logits of shape (n, units), got samples of shape {logits.shape}")
    width = logits.shape[0]
    names = _unit_names(model, head, width)
    label = None if y is None else _row_label(y, single, row, n_rows, head, width, names)
    if head == "softmax":
        return _explain_softmax(kind, row, names, logits, label)
    return _explain_sigmoid(model, kind, row, names, logits, label)


def _output_kind(model: Any) -> tuple[str, str]:
    """(the last layer's activation, the head: 'softmax' or 'sigmoid') of a classifier."""
    if not getattr(model, "layers", None):
        raise ValueError("explain() needs a model with layers")
    last = model.layers[-1]
    activation = getattr(last, "activation", None)  # a name today; a function (with __name__) in Keras
    if activation is None:
        activation = getattr(last, "activation_name", "linear")  # e.g. a Softmax layer
    kind = str(getattr(activation, "__name__", activation))
    if kind in ("softmax", "sigmoid"):
        return kind, kind
    if kind != "linear":
        raise ValueError(f"explain() looks inside softmax and sigmoid outputs; this model's output "
                         f"activation is {kind!r}")
    loss = getattr(model, "loss", None)
    if isinstance(loss, _SOFTMAX_LOSSES):
        return kind, "softmax"
    if isinstance(loss, losses.BinaryCrossentropy):
        return kind, "sigmoid"
    raise ValueError("the model outputs linear logits; explain() reads them with softmax or sigmoid as its "
                     "loss does, so compile it with a cross-entropy (e.g. SparseCategoricalCrossentropy("
                     f"from_logits=True) or BinaryCrossentropy(from_logits=True)); its loss is {loss!r}")


def _unit_names(model: Any, head: str, width: int) -> list[str]:
    meta = getattr(model, "metadata", None) or {}
    keys = ("class_names",) if head == "softmax" else ("class_names", "target_names")
    for key in keys:
        names = meta.get(key)
        if isinstance(names, list) and len(names) == width:
            return [str(n) for n in names]
    return [str(k) for k in range(width)]


def _row_label(y: object, single: bool, row: int, n_rows: int, head: str, width: int,
               names: list[str]) -> int | np.ndarray:
    """The true label of the explained row: a class index (softmax) or L targets (sigmoid)."""
    labels = np.asarray(y)
    # For rows x (n, d), y holds every row's label: (n,) classes or (n, C) one-hot rows for a softmax,
    # (n, L) targets for sigmoids; a lone class, or L targets, is the explained row's own.
    per_sample_ndim = 0 if head == "softmax" or (width == 1 and labels.ndim < 2) else 1
    if not single and labels.ndim > per_sample_ndim:
        if labels.shape[0] != n_rows:
            count = labels.shape[0]
            raise ValueError(f"x has {n_rows} rows but y has labels for {count} row{'s' * (count != 1)}")
        labels = labels[row]
    if head == "softmax":
        return _class_index(labels, width, names)
    if labels.dtype.kind not in "biuf":
        raise ValueError(f"sigmoid targets must be numbers in [0, 1], got {labels!r}")
    targets = np.broadcast_to(labels.astype(np.float64), (width,)) if labels.ndim == 0 else labels.astype(np.float64)
    if targets.shape != (width,):
        raise ValueError(f"the model has {width} sigmoid outputs; the row's targets must have shape "
                         f"({width},), got {labels.shape}")
    if not ((targets >= 0) & (targets <= 1)).all():
        raise ValueError(f"sigmoid targets must lie in [0, 1], got {targets.tolist()}")
    return targets


def _class_index(label: np.ndarray, width: int, names: list[str]) -> int:
    if label.dtype.kind in "US":
        text = str(label)
        if text not in names:
            raise ValueError(f"label {text!r} is not a class of the model ({', '.join(names)})")
        return names.index(text)
    if label.ndim == 1 and label.dtype.kind in "biuf":  # one-hot
        if label.shape[0] != width or not (np.isin(label, (0, 1)).all() and label.sum() == 1):
            raise ValueError(f"a one-hot label must have {width} entries, one 1 and the rest 0; got {label.tolist()}")
        return int(np.argmax(label))
    value = label.item() if label.ndim == 0 and label.dtype.kind in "iuf" else None
    if value is None or not np.isfinite(value) or value != int(value):
        raise ValueError(f"the true class must be an integer in [0, {width}), got {label.tolist()!r}")
    if not 0 <= int(value) < width:
        raise ValueError(f"the true class {int(value)} is outside [0, {width}) for a {width}-unit softmax")
    return int(value)


def _explain_softmax(kind: str, row: int, names: list[str], logits: np.ndarray, label: int | None) -> Explanation:
    z = logits[None]
    probs = ops.softmax(z)[0]
    with np.errstate(invalid="ignore", over="ignore"):
        wide = logits.astype(np.float64)
        shifted_exp = np.exp(wide - np.max(wide))
    out = Explanation(kind, "softmax", row, names, logits, probs, shifted_exp, predicted=int(np.argmax(logits)))
    if label is not None:
        out.label = label
        out.loss = ops.softmax_cross_entropy(z, np.array([label]), need_grad=False)[0][0]
        with warnings.catch_warnings():  # an inf here is the point being shown
            warnings.simplefilter("ignore", ops.InfiniteLossWarning)
            out.loss_from_probs = ops.cross_entropy_from_probs(probs[None], np.array([label]))[0] + 0  # −log 1 is −0
    return out


def _explain_sigmoid(model: Any, kind: str, row: int, names: list[str], logits: np.ndarray,
                     targets: np.ndarray | None) -> Explanation:
    meta = getattr(model, "metadata", None) or {}
    stored = meta.get("thresholds", 0.5)
    thresholds = np.broadcast_to(np.asarray(stored, dtype=np.float64), logits.shape).copy()
    predicted = metrics.multilabel_predict(logits[None], stored, from_logits=True)[0]  # exact, from z
    out = Explanation(kind, "sigmoid", row, names, logits, ops.sigmoid(logits), None, predicted=predicted,
                      thresholds=thresholds)
    if targets is not None:
        out.label = targets
        out.label_losses = ops.sigmoid_binary_cross_entropy(logits, targets)[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ops.InfiniteLossWarning)
            out.label_losses_from_probs = ops.binary_cross_entropy_from_probs(out.probs, targets) + 0
        dtype = logits.dtype.type
        out.loss = dtype(np.mean(out.label_losses, dtype=np.float64))
        out.loss_from_probs = dtype(np.mean(out.label_losses_from_probs, dtype=np.float64))
    return out


# --- the table ---------------------------------------------------------------------------------
def _full(value: object, dtype: np.dtype) -> str:
    """The shortest text that reads back as this value of `dtype` ('3.9754497e-31', '1.0', 'inf')."""
    return str(np.dtype(dtype).type(value))


def _short(value: float) -> str:
    """6 significant digits ('1.62e-61', '1', '0.0497871')."""
    return f"{float(value):.6g}"


def _grid(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    widths = [max(len(r[j]) for r in [header, *rows]) for j in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if j in right else c.ljust(w)
                         for j, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(header), line(["-" * w for w in widths]), *map(line, rows)]


def _title(e: Explanation) -> str:
    units = f"{len(e.logits)} unit{'s' * (len(e.logits) != 1)}, {e.dtype}, row {e.row}"
    if e.kind == "linear":
        return f"Output: linear logits z, read with {e.head} as the loss does ({units})"
    return f"Output: {e.head} ({units})"


def _loss_lines(e: Explanation, what: str) -> list[str]:
    exact, first = _full(e.loss, e.dtype), _full(e.loss_from_probs, e.dtype)
    lines = [f"{what} from the logits (exact):        {exact}",
             f"{what} from rounded probabilities:     {first}"]
    if e.loss != e.loss_from_probs and not (np.isnan(e.loss) and np.isnan(e.loss_from_probs)):
        lines.append(f"  (the probabilities were rounded to {e.dtype} before the log: "
                     + ("the difference is that rounding)" if np.isfinite(e.loss_from_probs)
                        else "a probability of exactly 0 or 1 makes the log infinite)"))
    return lines


def _softmax_table(e: Explanation) -> str:
    rows = []
    for k, name in enumerate(e.names):
        marks = [m for m, on in (("predicted", k == e.predicted), ("true", k == e.label)) if on]
        rows.append([str(k), name, _full(e.logits[k], e.dtype), _short(e.shifted_exp[k]),
                     _full(e.probs[k], e.dtype), ", ".join(marks)])
    header = ["unit", "class", "z", "exp(z - max z)", "a = softmax(z)", ""]
    lines = [_title(e), *_grid(header, rows, right={0, 2, 3, 4})]
    lines.append(f"sum of exp(z - max z): {_short(np.sum(e.shifted_exp))};  a = exp(z - max z) / that sum")
    if e.label is not None:
        y = int(e.label)
        lines.append(f"True class: {y} ({e.names[y]}); its loss -log a_y:")
        lines += _loss_lines(e, "  loss")
    return "\n".join(lines)


def _sigmoid_table(e: Explanation) -> str:
    labelled = e.label is not None
    header = ["unit", "label", "z", "a = sigmoid(z)", "threshold", "predicted"]
    if labelled:
        header += ["y", "loss (exact)", "loss (from rounded a)"]
    rows = []
    for k, name in enumerate(e.names):
        cells = [str(k), name, _full(e.logits[k], e.dtype), _full(e.probs[k], e.dtype),
                 f"{e.thresholds[k]:g}", "yes" if e.predicted[k] else "no"]
        if labelled:
            cells += [f"{e.label[k]:g}", _full(e.label_losses[k], e.dtype),
                      _full(e.label_losses_from_probs[k], e.dtype)]
        rows.append(cells)
    lines = [_title(e), *_grid(header, rows, right={0, 2, 3, 4, 7, 8})]
    chosen = [name for name, on in zip(e.names, e.predicted) if on]
    lines.append("Predicted labels: " + (", ".join(chosen) if chosen else "none"))
    if labelled:
        lines.append("Binary cross-entropy, the mean over the labels:")
        lines += _loss_lines(e, "  loss")
    return "\n".join(lines)
