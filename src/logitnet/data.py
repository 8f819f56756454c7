"""Reading labelled data for the command line: CSV with a header, .npz (x, y), .npy pairs, or the
bundled digits. Every problem is a `DataError` whose one-line message names the file, line and
column, and what was expected."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import datasets


class DataError(ValueError):
    """Data that cannot be used: a missing file, a malformed table, unknown columns or labels."""


@dataclass
class Dataset:
    """Features x (n, d), targets y (class indices (n,) or 0/1 labels (n, L), or None), and names."""

    x: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    target_names: list[str] = field(default_factory=list)
    class_names: list[str] | None = None  # multi-class: the label text of class 0, 1, ...
    source: str = ""

    @property
    def multilabel(self) -> bool:
        return self.y is not None and self.y.ndim == 2


def load(path: str | None, labels: str | None = None, *, target: str | None = None,
         targets: list[str] | None = None, multilabel: bool = False, need_target: bool = True,
         feature_names: list[str] | None = None, class_names: list[str] | None = None) -> Dataset:
    """Read `path` (None: the bundled digits; with multilabel, their attributes)."""
    if path is None:
        if multilabel:
            x, y = datasets.load_digit_attributes()
            return Dataset(x.astype(np.float64), y, _pixel_names(), list(datasets.DIGIT_ATTRIBUTES),
                           source="bundled UCI digits, attributes")
        x, y = datasets.load_digits()
        return Dataset(x.astype(np.float64), y, _pixel_names(), ["digit"], [str(d) for d in range(10)],
                       source="bundled UCI digits")
    file = Path(path)
    if not file.is_file():
        raise DataError(f"no such file: {path}")
    suffix = file.suffix.lower()
    if suffix == ".csv":
        return _read_csv(file, target, targets, need_target, feature_names, class_names)
    if suffix == ".npz":
        x, y = _read_npz(file, need_target)
    elif suffix == ".npy":
        x = _read_npy(file, "features")
        if labels is None and need_target:
            raise DataError(f"{path} holds only features: give the labels too, e.g. "
                            "`logitnet train x.npy y.npy`")
        y = None if labels is None else _read_npy(Path(labels), "labels")
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected .csv, .npz or .npy")
    return _from_arrays(x, y, str(path), class_names)


def _pixel_names() -> list[str]:
    return [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]


def _number(text: str, where: str) -> float:
    value = text.strip()
    if value == "" or value.lower() in ("na", "nan", "n/a", "null", "none", "?"):
        raise DataError(f"{where}: missing value")
    try:
        number = float(value)
    except ValueError:
        raise DataError(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise DataError(f"{where}: {value!r} is not a finite number")
    return number


def _read_csv(file: Path, target: str | None, targets: list[str] | None, need_target: bool,
              feature_names: list[str] | None, class_names: list[str] | None) -> Dataset:
    try:
        with file.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except UnicodeDecodeError:
        raise DataError(f"{file}: not a text CSV file (it is not UTF-8)") from None
    except csv.Error as err:
        raise DataError(f"{file}: malformed CSV ({err})") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise DataError(f"{file} is empty: expected a header line and data rows")
    header = [name.strip() for name in rows[0]]
    if len(set(header)) != len(header) or "" in header:
        raise DataError(f"{file}, line 1: the header must name every column once, got {rows[0]}")
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{file}, line {line}: {len(row)} fields, but the header has {len(header)}")
    body = rows[1:]
    if not body:
        raise DataError(f"{file} has a header but no data rows")

    def column(name: str) -> int:
        if name not in header:
            raise DataError(f"{file}: no column named {name!r}; the columns are {', '.join(header)}")
        return header.index(name)

    if targets:
        target_cols = [column(t) for t in targets]
    elif target is not None:
        target_cols = [column(target)]
    elif need_target and feature_names is None:
        target_cols = [len(header) - 1]  # by default the last column is the label
    else:
        target_cols = []
    if feature_names is not None:  # a trained model's columns, by name, in its order
        feature_cols = [column(name) for name in feature_names]
    else:
        feature_cols = [i for i in range(len(header)) if i not in target_cols]
    if not feature_cols:
        raise DataError(f"{file}: no feature columns left besides the target")
    x = np.array([[_number(row[j], f"{file}, line {line}, column {header[j]!r}") for j in feature_cols]
                  for line, row in enumerate(body, start=2)])
    names = [header[j] for j in feature_cols]
    if not (need_target and target_cols):
        return Dataset(x, None, names, source=str(file))
    if targets:
        y = np.empty((len(body), len(target_cols)), dtype=np.int64)
        for line, row in enumerate(body, start=2):
            for k, j in enumerate(target_cols):
                value = _number(row[j], f"{file}, line {line}, column {header[j]!r}")
                if value not in (0.0, 1.0):
                    raise DataError(f"{file}, line {line}, column {header[j]!r}: multi-label targets "
                                    f"must be 0 or 1, got {row[j].strip()!r}")
                y[line - 2, k] = int(value)
        return Dataset(x, y, names, [header[j] for j in target_cols], source=str(file))
    j = target_cols[0]
    texts = [row[j].strip() for row in body]
    for line, text in enumerate(texts, start=2):
        if text == "":
            raise DataError(f"{file}, line {line}, column {header[j]!r}: missing label")
    y, names_out = _encode(texts, class_names, f"{file}, column {header[j]!r}")
    return Dataset(x, y, names, [header[j]], names_out, source=str(file))


def _encode(texts: list[str], class_names: list[str] | None, where: str) -> tuple[np.ndarray, list[str]]:
    """Label texts -> class indices, with the class names (numbers sort as numbers)."""
    if class_names is None:
        unique = set(texts)
        try:
            class_names = sorted(unique, key=float)
        except ValueError:
            class_names = sorted(unique)
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(set(texts) - set(index))
    if unknown:
        raise DataError(f"{where}: label {unknown[0]!r} was not among the training classes "
                        f"({', '.join(class_names)})")
    return np.array([index[t] for t in texts], dtype=np.int64), class_names


def _read_npy(file: Path, what: str) -> np.ndarray:
    if not file.is_file():
        raise DataError(f"no such file: {file}")
    try:
        return np.load(file, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise DataError(f"{file}: not a readable .npy array of {what} ({err})") from None


def _read_npz(file: Path, need_target: bool) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with np.load(file, allow_pickle=False) as archive:
            keys = set(archive.files)
            if "x" not in keys or (need_target and "y" not in keys):
                raise DataError(f"{file}: expected arrays named 'x' and 'y', found {sorted(keys)}")
            return archive["x"], archive["y"] if "y" in keys else None
    except (ValueError, OSError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"{file}: not a readable .npz archive ({err})") from None


def _from_arrays(x: np.ndarray, y: np.ndarray | None, source: str, class_names: list[str] | None) -> Dataset:
    if x.dtype.kind not in "biuf" or x.ndim != 2:
        raise DataError(f"{source}: features must be a numeric 2-D array (n_samples, n_features), "
                        f"got dtype {x.dtype} and shape {x.shape}")
    if not np.isfinite(x).all():
        row, col = np.argwhere(~np.isfinite(x))[0]
        raise DataError(f"{source}: feature [{row}, {col}] is {x[row, col]}; features must be finite")
    names = [f"x{j}" for j in range(x.shape[1])]
    if y is None:
        return Dataset(x.astype(np.float64), None, names, source=source)
    if len(y) != len(x):
        raise DataError(f"{source}: {len(x)} feature rows but {len(y)} labels")
    if y.ndim == 2 and y.shape[1] > 1:
        if not np.isin(y, (0, 1)).all():
            raise DataError(f"{source}: multi-label targets (n, L) must be 0 or 1")
        return Dataset(x.astype(np.float64), y.astype(np.int64), names,
                       [f"label_{k}" for k in range(y.shape[1])], source=source)
    flat = y.reshape(-1)
    if flat.dtype.kind == "f" and not (np.isfinite(flat).all() and (flat == np.round(flat)).all()):
        raise DataError(f"{source}: class labels must be integers or strings, got {flat[:5]}")
    texts = [str(int(v)) if flat.dtype.kind in "biuf" else str(v) for v in flat]
    codes, names_out = _encode(texts, class_names, f"{source} labels")
    return Dataset(x.astype(np.float64), codes, names, ["label"], names_out, source=source)
