"""Dask collections as blocks of rows: the checks made before training, each block as one Delayed
(x, y, w) tuple, and the per-epoch order in which rows are visited.

The order: the blocks are permuted, taken `window` at a time, and the rows of each window are
permuted; batches are cut from the rows in that order, a batch straddling two windows where they
meet, so that an epoch has as many batches as in memory. Without shuffling this is the rows' own
order, and the batches are those of an in-memory fit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np


def is_dask(value: object) -> bool:
    return hasattr(value, "__dask_graph__") and type(value).__module__.startswith("dask")


@dataclass
class Blocks:
    """Rows split into blocks: `parts[i]` computes block i's (x, y or None, w or None) as NumPy."""

    parts: list
    rows: np.ndarray  # (n_blocks,) rows per block
    sample_shape: tuple[int, ...]
    x_dtype: np.dtype
    y_sample_shape: tuple[int, ...] | None = None
    y_dtype: np.dtype | None = None
    feature_names: list[str] | None = None
    numbers: np.ndarray | None = None  # each block's number in the collection (empty blocks are left out)

    @property
    def n(self) -> int:
        return int(self.rows.sum())

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.rows)])

    def load(self, ids: list[int]) -> list[tuple]:
        """Compute blocks `ids` (on the current Dask scheduler, a cluster's when a Client is active)."""
        return list(dask.compute(*[self.parts[i] for i in ids]))


def _unknown(chunks: tuple, name: str) -> None:
    if any(np.isnan(c) for c in chunks):
        raise ValueError(f"{name} is a Dask array with unknown chunk sizes (nan rows per block, as after "
                         f"boolean indexing or DataFrame.values); call {name}.compute_chunk_sizes() first, "
                         "or pass the DataFrame itself")


def _as_array(value: object, name: str, lengths: list[int] | None) -> tuple[da.Array, list[str] | None]:
    """A Dask array with one chunk across every axis but the first; DataFrames and Series checked
    for numeric columns and converted with the given (or computed) partition lengths."""
    names = None
    if not isinstance(value, da.Array):
        dtypes = getattr(value, "dtypes", None)
        if dtypes is None or not hasattr(value, "to_dask_array"):
            raise TypeError(f"{name} must be a Dask array, DataFrame or Series, got {type(value).__name__}")
        columns = dtypes.items() if hasattr(dtypes, "items") else [(getattr(value, "name", name), dtypes)]
        for column, dtype in columns:
            if not (isinstance(dtype, np.dtype) and dtype.kind in "biuf"):
                raise ValueError(f"{name}'s column {column!r} has dtype {dtype}, which is not numeric; "
                                 "convert it (e.g. with .astype or categorical codes) or drop it")
        names = [str(c) for c, _ in columns] if hasattr(dtypes, "items") else None
        if lengths is None:
            lengths = [int(v) for v in value.map_partitions(len).compute()]
        value = value.to_dask_array(lengths=lengths)
    if value.ndim == 0:
        raise ValueError(f"{name} must have a first axis of samples, got a 0-d Dask array")
    if value.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {value.dtype}")
    _unknown(value.chunks[0], name)
    if any(len(c) > 1 for c in value.chunks[1:]):
        value = value.rechunk({axis: -1 for axis in range(1, value.ndim)})
    return value, names


def from_collections(x: object, y: object = None, w: object = None) -> Blocks:
    """Check and split Dask x (n, ...) and y, w (Dask, NumPy or None) into row blocks."""
    if not is_dask(x):
        raise TypeError(f"x must be a Dask array or DataFrame when y is one, got {type(x).__name__}")
    lengths = None
    frames = not isinstance(x, da.Array) and is_dask(y) and not isinstance(y, da.Array)
    if frames and getattr(x, "npartitions", None) != getattr(y, "npartitions", None):
        raise ValueError(f"x and y are split into different partitions ({x.npartitions} and "
                             f"{y.npartitions}); take both from one DataFrame, or repartition one like the other")
    xa, names = _as_array(x, "x", lengths)
    if xa.ndim < 2:
        raise ValueError(f"x must have shape (n_samples, n_features), got shape {xa.shape}")
    rows = np.array(xa.chunks[0], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(rows)])
    x_parts = xa.to_delayed().reshape(-1)
    columns = [x_parts]
    y_info = (None, None)
    for value, name in ((y, "y"), (w, "sample_weight")):
        if value is None:
            columns.append([None] * len(rows))
            continue
        if is_dask(value):
            arr, _ = _as_array(value, name, [int(r) for r in rows])
            if arr.chunks[0] != xa.chunks[0]:
                raise ValueError(f"x and {name} are split into blocks differently: x has rows per block "
                                 f"{xa.chunks[0][:6]}, {name} has {arr.chunks[0][:6]}; rechunk one like the "
                                 f"other, e.g. {name} = {name}.rechunk({{0: x.chunks[0]}})")
            parts = list(arr.to_delayed().reshape(-1))
            sample_shape, dtype = arr.shape[1:], arr.dtype
        else:
            arr = np.asarray(value)
            if arr.ndim == 0 or len(arr) != offsets[-1]:
                raise ValueError(f"x has {offsets[-1]} samples but {name} has "
                                 f"{'none' if arr.ndim == 0 else len(arr)}")
            parts = [arr[offsets[i]:offsets[i + 1]] for i in range(len(rows))]
            sample_shape, dtype = arr.shape[1:], arr.dtype
        if name == "y":
            y_info = (tuple(sample_shape), np.dtype(dtype))
        columns.append(parts)
    # One Delayed per block computes its x, y and w together, so that they land on one worker.
    parts = [dask.delayed(tuple)([cx, cy, cw]) for cx, cy, cw in zip(*columns)]
    # Empty blocks (a filtered DataFrame's partitions) hold nothing to train on; leave them out.
    numbers = np.flatnonzero(rows)
    if len(numbers) == 0:
        raise ValueError("x is empty: it has no samples")
    return Blocks([parts[i] for i in numbers], rows[numbers], tuple(xa.shape[1:]), np.dtype(xa.dtype),
                  y_info[0], y_info[1], names, numbers)


def windows(rows: np.ndarray, rng: np.random.Generator, shuffle: bool,
            window: int) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
    """Per window: its block ids, and the permutation of its rows (None: in order). The random draws
    come in the order they are consumed, so every reader of the plan sees the same rows."""
    order = rng.permutation(len(rows)) if shuffle else np.arange(len(rows))
    for start in range(0, len(order), window):
        ids = order[start:start + window]
        yield ids, (rng.permutation(int(rows[ids].sum())) if shuffle else None)


def prepare_block(model: Any, part: tuple, block: int, data: Blocks,
                  class_weight: dict | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A computed block (x, y, w) as the model trains on it: converted and checked."""
    x, y, w = part
    lo = int(data.offsets[block])
    try:
        features = model._features(x)
        targets = model.head.check_targets(y, len(features), model.dtype)
        weights = model._sample_weights(targets, w, class_weight)
    except ValueError as err:
        number = block if data.numbers is None else int(data.numbers[block])
        raise ValueError(f"block {number} (rows {lo} to {lo + len(x) - 1}): {err}") from None
    return features, targets, weights
