"""CSV and Parquet files (a glob, or a Parquet folder) as Dask arrays for `logitnet train`: one
pass over the files finds the classes, the split's rows and the training rows' mean and spread;
then every block is split, standardised and encoded lazily, where it is read.

The split is drawn per partition from (seed, partition number): a row goes to the test part with
probability test_split, to validation with (1 - test_split) * val_split, so the same files and
seed give the same parts in every run (and on resume).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np

from ..data import DataError

TRAIN, VAL, TEST = 0, 1, 2


@dataclass
class Table:
    """The files' rows as Dask arrays per part (standardised features, encoded targets), with what
    the model's metadata keeps about them."""

    parts: dict[int, tuple[da.Array, da.Array]]  # TRAIN/VAL/TEST -> (x, y)
    counts: dict[int, int]
    mean: np.ndarray
    scale: np.ndarray
    feature_names: list[str]
    target_names: list[str]
    class_names: list[str] | None
    source: str

    @property
    def multilabel(self) -> bool:
        return self.class_names is None


def files(pattern: str) -> tuple[list[str], str]:
    """The files a pattern names, sorted, and their kind ('csv' or 'parquet')."""
    if any(c in pattern for c in "*?["):
        found = sorted(glob.glob(pattern))
        if not found:
            raise DataError(f"no files match {pattern}")
    elif os.path.isdir(pattern):
        found = sorted(glob.glob(os.path.join(pattern, "*.parquet")))
        if not found:
            raise DataError(f"{pattern} is a folder without .parquet files")
    elif os.path.isfile(pattern):
        found = [pattern]
    else:
        raise DataError(f"no such file: {pattern}")
    kinds = {os.path.splitext(f)[1].lower() for f in found}
    if kinds == {".csv"}:
        return found, "csv"
    if kinds == {".parquet"}:
        return found, "parquet"
    raise DataError(f"{pattern}: streaming reads .csv or .parquet files, all of one kind; found "
                    f"{', '.join(sorted(kinds))}")


def read(pattern: str, *, target: str | None, targets: list[str] | None, seed: int, val_split: float,
         test_split: float, dtype: str, blocksize: str = "64MB") -> Table:
    """Read and split the files `pattern` names (see the module's docstring)."""
    import dask.dataframe as dd

    names, kind = files(pattern)
    if kind == "csv":
        header = dd.read_csv(names[0], blocksize=blocksize, dtype=str).columns
        label_cols = _targets(list(header), target, targets, pattern)
        frame = dd.read_csv(names, blocksize=blocksize, assume_missing=True,
                            dtype=dict.fromkeys(label_cols, str), skipinitialspace=True)
    else:
        frame = dd.read_parquet(names)
        label_cols = _targets(list(frame.columns), target, targets, pattern)
    feature_cols = [str(c) for c in frame.columns if c not in label_cols]
    if not feature_cols:
        raise DataError(f"{pattern}: no feature columns left besides the target")
    for column in feature_cols:
        kind_of = np.dtype(frame[column].dtype).kind if isinstance(frame[column].dtype, np.dtype) else "O"
        if kind_of not in "biuf":
            raise DataError(f"{pattern}: column {column!r} holds {frame[column].dtype}, not numbers; "
                            "drop it or encode it as numbers")
    multilabel = targets is not None
    split = (seed, test_split, val_split)
    partitions = frame.to_delayed()
    stats = dask.compute(*[dask.delayed(_stats)(p, i, feature_cols, label_cols, multilabel, split, pattern)
                           for i, p in enumerate(partitions)])
    counts = np.array([s[0] for s in stats])  # (partitions, 3) rows per part
    total = counts.sum(axis=0)
    if total.sum() < 10 or total[TRAIN] < 2 or (test_split and total[TEST] < 1) or (val_split and total[VAL] < 1):
        raise DataError(f"too few rows: {int(total.sum())} samples cannot be split into training, validation "
                        f"({val_split:g}) and test ({test_split:g}) parts; give more rows")
    mean, scale = _combine([s[1] for s in stats])
    class_names = None if multilabel else _classes(set().union(*[s[2] for s in stats]))
    if class_names is not None and len(class_names) < 2:
        raise DataError(f"{pattern}: the target has a single class ({class_names[0]!r}); a classifier "
                        "needs at least 2")
    out_dtype = np.dtype(dtype)
    prepared = [dask.delayed(_prepare, nout=6)(p, i, feature_cols, label_cols, class_names, split, mean, scale,
                                               out_dtype) for i, p in enumerate(partitions)]
    parts = {}
    for which in (TRAIN, VAL, TEST):
        xs = [da.from_delayed(pr[2 * which], (int(c[which]), len(feature_cols)), out_dtype)
              for pr, c in zip(prepared, counts)]
        y_shape = (len(label_cols),) if multilabel else ()
        ys = [da.from_delayed(pr[2 * which + 1], (int(c[which]), *y_shape), np.int64) for pr, c in zip(prepared, counts)]
        keep = [k for k, c in enumerate(counts) if c[which]]
        if keep:
            parts[which] = (da.concatenate([xs[k] for k in keep]), da.concatenate([ys[k] for k in keep]))
    return Table(parts, {w: int(total[w]) for w in (TRAIN, VAL, TEST)}, mean, scale, feature_cols,
                 [str(c) for c in label_cols], class_names, pattern)


def _targets(header: list[str], target: str | None, targets: list[str] | None, pattern: str) -> list[str]:
    wanted = targets if targets else [target] if target is not None else [str(header[-1])]
    for name in wanted:
        if name not in header:
            raise DataError(f"{pattern}: no column named {name!r}; the columns are "
                            f"{', '.join(str(h) for h in header)}")
    return wanted


def _assign(n: int, number: int, split: tuple[int, float, float]) -> np.ndarray:
    """Each row's part (TRAIN, VAL or TEST) in partition `number`."""
    seed, test_split, val_split = split
    u = np.random.default_rng([seed, number]).random(n)
    return np.where(u < test_split, TEST, np.where(u < test_split + (1 - test_split) * val_split, VAL, TRAIN))


def _features(frame: Any, number: int, columns: list[str], pattern: str) -> np.ndarray:
    x = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{pattern}, partition {number}, row {row}, column {columns[col]!r}: "
                        f"{'missing value' if np.isnan(x[row, col]) else x[row, col]}; features must be finite")
    return x


def _label_texts(column: Any, number: int, name: str, pattern: str) -> np.ndarray:
    """Class labels as text, as the in-memory reader writes them (integral numbers without '.0')."""
    if column.isna().any():
        raise DataError(f"{pattern}, partition {number}, row {int(np.argmax(column.isna().to_numpy()))}, "
                        f"column {name!r}: missing label")
    values = column.to_numpy()
    if values.dtype.kind in "biu":
        return values.astype(str)
    if values.dtype.kind == "f":
        if not (values == np.round(values)).all():
            raise DataError(f"{pattern}, column {name!r}: class labels must be integers or text, got "
                            f"{values[values != np.round(values)][0]}")
        return values.astype(np.int64).astype(str)
    return np.array([str(v).strip() for v in values])


def _labels01(frame: Any, number: int, columns: list[str], pattern: str) -> np.ndarray:
    import pandas as pd

    y = np.column_stack([pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
                         for c in columns])
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{pattern}, partition {number}, row {row}, column {columns[col]!r}: multi-label "
                        f"targets must be 0 or 1, got {frame[columns[col]].iloc[row]!r}")
    return y.astype(np.int64)


def _stats(frame: Any, number: int, features: list[str], labels: list[str], multilabel: bool,
           split: tuple, pattern: str) -> tuple[np.ndarray, tuple, set]:
    """Rows per part, (n, mean, M2) of the training rows, and the label texts seen."""
    x = _features(frame, number, features, pattern)
    part = _assign(len(x), number, split)
    counts = np.bincount(part, minlength=3)
    xt = x[part == TRAIN]
    mean = xt.mean(axis=0) if len(xt) else np.zeros(x.shape[1])
    m2 = ((xt - mean) ** 2).sum(axis=0)
    if multilabel:
        _labels01(frame, number, labels, pattern)
        seen: set = set()
    else:
        seen = set(_label_texts(frame[labels[0]], number, labels[0], pattern).tolist())
    return counts, (len(xt), mean, m2), seen


def _combine(parts: list[tuple[int, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The mean and standard deviation (ddof 0) of all training rows from per-partition (n, mean, M2)
    (Chan et al.'s pairwise update: no cancellation from summing squares)."""
    n, mean, m2 = 0, np.zeros_like(parts[0][1]), np.zeros_like(parts[0][2])
    for nb, mb, m2b in parts:
        if nb == 0:
            continue
        total = n + nb
        delta = mb - mean
        mean = mean + delta * (nb / total)
        m2 = m2 + m2b + delta**2 * (n * nb / total)
        n = total
    scale = np.sqrt(m2 / n)
    return mean, np.where(scale > 0, scale, 1.0)


def _classes(texts: set) -> list[str]:
    """Label texts in the in-memory reader's order: numbers sort as numbers."""
    try:
        return sorted(texts, key=float)
    except ValueError:
        return sorted(texts)


def _prepare(frame: Any, number: int, features: list[str], labels: list[str], class_names: list[str] | None,
             split: tuple, mean: np.ndarray, scale: np.ndarray, dtype: np.dtype) -> tuple:
    """(x, y) of the train, validation and test rows of one partition, standardised and encoded."""
    import pandas as pd

    x = ((_features(frame, number, features, "data") - mean) / scale).astype(dtype)
    if class_names is None:
        y = _labels01(frame, number, labels, "data")
    else:
        texts = _label_texts(frame[labels[0]], number, labels[0], "data")
        y = pd.Categorical(texts, categories=class_names).codes.astype(np.int64)
    part = _assign(len(x), number, split)
    out: list = []
    for which in (TRAIN, VAL, TEST):
        rows = part == which
        out += [x[rows], y[rows]]
    return tuple(out)

