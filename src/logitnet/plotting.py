"""Figures written as PNG files: learning curves, confusion matrices, per-label F1, 2-D decision regions,
and the bars of one row's logits and probabilities.

matplotlib is an optional extra (`pip install "logitnet[plots]"`), imported lazily, so importing this
module works without it. Figures are built as standalone `matplotlib.figure.Figure` objects, never
registered with pyplot, so none is left open and the caller's backend is never touched; a fixed size
and dpi, and PNG metadata without the software version, make the same inputs give the same bytes.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from pathlib import Path

import numpy as np

DPI = 100
MISSING_HINT = 'plots need matplotlib: pip install "logitnet[plots]"'


def require_matplotlib():
    """Import matplotlib (backend "Agg" unless pyplot was already set up) and return pyplot."""
    try:
        import matplotlib
        if "matplotlib.pyplot" not in sys.modules:  # switching later would close the caller's figures
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(MISSING_HINT) from err
    return plt


def _figure(width: float, height: float):
    """A standalone Figure of (width, height) inches, with matplotlib checked first."""
    require_matplotlib()
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig, path: str | os.PathLike) -> Path:
    """Write fig as PNG to path (its folder created); same inputs, same bytes."""
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise ValueError(f"plots are written as PNG: path must end in .png, got {str(out)!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    fig.clear()
    return out


def _class_colors(n_classes: int) -> list:
    """n_classes distinct RGBA colours: tab10, tab20, then an even sampling of turbo."""
    from matplotlib import colormaps
    if n_classes <= 20:
        return [colormaps["tab10" if n_classes <= 10 else "tab20"](k) for k in range(n_classes)]
    return [colormaps["turbo"](t) for t in np.linspace(0.05, 0.95, n_classes)]


def learning_curves(history: dict[str, list[float]], path: str | os.PathLike) -> Path:
    """One panel per quantity ("loss" first), train and "val_" curves against epochs 1..n; returns path."""
    history = getattr(history, "history", history)  # a History object or its dict
    if not history:
        raise ValueError("history is empty: expected per-epoch lists such as {'loss': [...], 'val_loss': [...]}")
    curves = {}
    for key, values in history.items():
        curves[key] = np.asarray(values, dtype=np.float64)
        if curves[key].ndim != 1:
            raise ValueError(f"history[{key!r}] must be a list of per-epoch numbers, got shape {curves[key].shape}")
    names = list(dict.fromkeys(k.removeprefix("val_") for k in curves))
    names.sort(key=lambda name: name != "loss")  # stable: loss first, the rest in their given order
    ncols = min(len(names), 3)
    nrows = math.ceil(len(names) / ncols)
    fig = _figure(4.5 * ncols, 3.4 * nrows + 0.4)
    from matplotlib.ticker import MaxNLocator
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        for key, label, style in ((name, "train", "-"), (f"val_{name}", "validation", "--")):
            if key in curves:
                values = curves[key]
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, style, marker="o" if len(values) <= 30 else None, ms=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend()
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.suptitle("Learning curves")
    return _save(fig, path)


def confusion_matrix_plot(cm: np.ndarray, class_names: list[str], path: str | os.PathLike,
                          title: str = "Confusion matrix") -> Path:
    """Heat map of cm (C, C) (rows true, columns predicted) with each count written in its cell; returns path."""
    cm = np.asarray(cm)
    if cm.dtype.kind not in "biuf":
        raise TypeError(f"cm must be a numeric array, got dtype {cm.dtype}")
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"cm must be a square matrix (C, C) with C >= 1, got shape {cm.shape}")
    n_classes = cm.shape[0]
    if len(class_names) != n_classes:
        raise ValueError(f"class_names has {len(class_names)} names for a {n_classes}x{n_classes} matrix")
    side = min(max(4.5, 0.6 * n_classes + 2.5), 20.0)
    fig = _figure(side + 1.0, side)
    ax = fig.subplots()
    values = cm.astype(np.float64)
    image = ax.imshow(values, cmap="Blues", interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8)
    counts = bool(np.all(values == np.round(values)))
    threshold = (np.nanmin(values) + np.nanmax(values)) / 2  # cells above it are dark: write in white
    fontsize = 10 if n_classes <= 10 else max(4.0, 100.0 / n_classes)
    for (i, j), v in np.ndenumerate(values):
        text = f"{int(v)}" if counts else f"{v:.2f}"
        ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                color="white" if v > threshold else "black")
    ticks = np.arange(n_classes)
    ax.set_xticks(ticks, labels=class_names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, labels=class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    return _save(fig, path)


def per_label_f1(f1: np.ndarray, label_names: list[str], path: str | os.PathLike) -> Path:
    """Horizontal bars of per-label F1 (L,) in [0, 1], each value printed, macro mean marked; returns path."""
    f1 = np.asarray(f1, dtype=np.float64)
    if f1.ndim != 1 or f1.size == 0:
        raise ValueError(f"f1 must be per-label scores of shape (L,) with L >= 1, got shape {f1.shape}")
    if len(label_names) != f1.size:
        raise ValueError(f"label_names has {len(label_names)} names for {f1.size} F1 scores")
    bad = ~((f1 >= 0) & (f1 <= 1))
    if bad.any():
        raise ValueError(f"F1 scores must lie in [0, 1], got {f1[bad][0]!r} for {label_names[int(np.argmax(bad))]!r}")
    fig = _figure(7.0, min(max(2.5, 0.35 * f1.size + 1.3), 40.0))
    ax = fig.subplots()
    rows = np.arange(f1.size)
    ax.barh(rows, f1, color="tab:blue", height=0.7)
    for row, v in zip(rows, f1):
        ax.text(v + 0.01, row, f"{v:.2f}", va="center", fontsize=9)
    ax.axvline(f1.mean(), color="tab:red", ls="--", lw=1)
    ax.set_yticks(rows, labels=label_names)
    ax.invert_yaxis()  # first label on top
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("F1")
    ax.set_title(f"Per-label F1 (dashed: macro F1 = {f1.mean():.2f})")
    return _save(fig, path)


def _activation_name(model) -> str:
    """The output activation's name: a logitnet string, or a Keras function's __name__."""
    activation = getattr(model.layers[-1], "activation", "linear")
    return getattr(activation, "__name__", str(activation))


def _predicted_class(outputs: np.ndarray, activation: str) -> np.ndarray:
    """Class indices (n,) from outputs (n, C): argmax, or one unit cut at 0.5 (sigmoid) / 0 (logits)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    outputs = outputs[:, None] if outputs.ndim == 1 else outputs
    if outputs.shape[1] == 1:
        cut = 0.5 if activation == "sigmoid" else 0.0
        return (outputs[:, 0] >= cut).astype(np.int64)
    return np.argmax(outputs, axis=1)  # the same class for probabilities and for their logits


def decision_regions(model, x: np.ndarray, y: np.ndarray, class_names: list[str], path: str | os.PathLike,
                     resolution: int = 300) -> Path:
    """Plane of 2-D inputs x (n, 2) coloured by predicted class, points by true class y (n,); returns path."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2 or len(x) == 0:
        raise ValueError(f"decision_regions needs 2-D inputs x of shape (n, 2), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("x must be finite to place the grid, got NaN or inf")
    labels = np.asarray(y)
    labels = labels[:, 0] if labels.ndim == 2 and labels.shape[1] == 1 else labels
    if labels.shape != (len(x),) or labels.dtype.kind not in "biu":
        raise ValueError(f"y must hold integer class indices of shape ({len(x)},), got {labels.dtype} {labels.shape}")
    n_classes = len(class_names)
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"y holds labels in [{labels.min()}, {labels.max()}], outside [0, {n_classes}) for "
                         f"{n_classes} class names")
    if not (isinstance(resolution, numbers.Integral) and resolution >= 2):
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    require_matplotlib()
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = np.where(hi > lo, 0.1 * (hi - lo), 1.0)  # a margin, and a unit one for a flat axis
    lo, hi = lo - pad, hi + pad
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], int(resolution)),
                         np.linspace(lo[1], hi[1], int(resolution)))
    grid = np.column_stack([g0.ravel(), g1.ravel()])
    predicted = _predicted_class(model.predict(grid, batch_size=8192, verbose=0), _activation_name(model))
    if predicted.max() >= n_classes:
        raise ValueError(f"the model predicts class {predicted.max()}, but only {n_classes} class names were given")
    from matplotlib.colors import ListedColormap
    colors = _class_colors(n_classes)
    fig = _figure(6.4, 5.2)
    ax = fig.subplots()
    ax.imshow(predicted.reshape(g0.shape), cmap=ListedColormap(colors), vmin=-0.5,
              vmax=n_classes - 0.5, alpha=0.35, origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]),
              aspect="auto", interpolation="nearest")
    size = 24 if len(x) <= 500 else 8
    for k, name in enumerate(class_names):
        mine = labels == k
        ax.scatter(x[mine, 0], x[mine, 1], s=size, color=colors[k], edgecolors="black", linewidths=0.4, label=name)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("feature 0")
    ax.set_ylabel("feature 1")
    ax.set_title("Decision regions")
    ax.legend(title="true class", loc="best", fontsize=8)
    return _save(fig, path)


def logits_and_probabilities(logits: np.ndarray, probs: np.ndarray, names: list[str], path: str | os.PathLike,
                             head: str = "softmax", true: list[int] | None = None,
                             thresholds: np.ndarray | None = None) -> Path:
    """Two panels of bars per output unit: the logits z (C,) and the probabilities a (C,) that softmax
    or sigmoid makes of them; `true` units drawn in orange, sigmoid `thresholds` (C,) marked; returns path."""
    z = np.asarray(logits, dtype=np.float64)
    a = np.asarray(probs, dtype=np.float64)
    if z.ndim != 1 or z.size == 0:
        raise ValueError(f"logits must have shape (C,) with C >= 1, got shape {z.shape}")
    if a.shape != z.shape:
        raise ValueError(f"probs must have the logits' shape {z.shape}, got {a.shape}")
    if len(names) != z.size:
        raise ValueError(f"names has {len(names)} names for {z.size} output units")
    if head not in ("softmax", "sigmoid"):
        raise ValueError(f"head must be 'softmax' or 'sigmoid', got {head!r}")
    if ((a < 0) | (a > 1)).any():
        raise ValueError(f"probabilities must lie in [0, 1], got {float(a[(a < 0) | (a > 1)][0])!r}")
    marked = sorted(set(true or []))
    if marked and not (0 <= marked[0] and marked[-1] < z.size):
        raise ValueError(f"true units must be in [0, {z.size}), got {marked}")
    if thresholds is not None:
        thresholds = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), z.shape)
    fig = _figure(min(max(8.0, 0.9 * z.size + 3.0), 30.0), 4.2)
    units = np.arange(z.size)
    colors = ["tab:orange" if k in marked else "tab:blue" for k in units]
    label_size = 9 if z.size <= 6 else 7
    show_values = z.size <= 20
    for ax, values, title, text in (
            (fig.add_subplot(1, 2, 1), z, "logits z", lambda v: f"{v:.3g}"),
            (fig.add_subplot(1, 2, 2), a, f"a = {head}(z)", lambda v: f"{v:.3g}")):
        heights = np.where(np.isfinite(values), values, 0.0)  # an inf or NaN bar is written, not drawn
        ax.bar(units, heights, color=colors, width=0.7)
        if show_values:
            for k, (v, h) in enumerate(zip(values, heights)):
                ax.text(k, h, text(v), ha="center", va="bottom" if h >= 0 else "top", fontsize=label_size)
        ax.axhline(0.0, color="black", lw=0.8)
        ax.margins(y=0.12)  # room for the values written at the bars' ends
        ax.set_xticks(units, labels=names, rotation=45 if z.size > 8 else 0,
                      ha="right" if z.size > 8 else "center")
        ax.set_xlabel("output unit")
        ax.set_title(title)
        ax.grid(True, axis="y", alpha=0.3)
    prob_ax = fig.axes[1]
    prob_ax.set_ylim(0.0, 1.12)
    if thresholds is not None:
        prob_ax.hlines(thresholds, units - 0.45, units + 0.45, colors="tab:red", linestyles="--", lw=1,
                       label="threshold")
    if marked:
        from matplotlib.patches import Patch
        handles = [Patch(color="tab:orange", label="true " + ("class" if head == "softmax" else "label"))]
        if thresholds is not None:
            handles += prob_ax.get_legend_handles_labels()[0]
        prob_ax.legend(handles=handles, loc="upper right", fontsize=8)
    elif thresholds is not None:
        prob_ax.legend(loc="upper right", fontsize=8)
    fig.suptitle("Inside the softmax layer" if head == "softmax" else "Inside the sigmoid outputs")
    return _save(fig, path)
