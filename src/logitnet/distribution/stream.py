"""Training, evaluating and predicting on Dask collections, one block at a time.

The driver holds a window of blocks (and the next window, loading in a thread meanwhile), never the
whole data: peak memory is a few blocks plus the model. Each block is checked as it arrives, with
the same checks and messages as in-memory data, prefixed by the block it came from; a bad block
puts the weights and optimizer state back as they were when fit began.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from . import blocks as blocks_mod
from .api import Streaming

DEFAULT = Streaming()


def _check_model(model: Any, data: blocks_mod.Blocks) -> None:
    """Build the model for the data's sample shape and check it fits, before any block is read."""
    model._require_compiled()
    model._features(np.zeros((1, *data.sample_shape), data.x_dtype))
    model.optimizer.build(model.params.size, model.dtype)


class _Window:
    """A window's blocks of (x, targets, weights), its rows in the plan's order: batches gather their
    rows from the blocks themselves, as in memory from x (joining the blocks first cost a copy of the
    window, and page faults on every fresh buffer, more than the gathers)."""

    def __init__(self, parts: list[tuple], order: np.ndarray | None) -> None:
        self.parts, self.order = parts, order
        self.starts = np.concatenate([[0], np.cumsum([len(p[0]) for p in parts])])
        self.n = int(self.starts[-1])
        if order is not None and len(parts) > 1:
            self._block = np.searchsorted(self.starts, order, side="right") - 1
            self._row = order - self.starts[self._block]

    def take(self, lo: int, hi: int) -> list:
        """Columns of the rows at positions lo..hi of the window's order (views where they are slices)."""
        if self.order is None:
            first, last = np.searchsorted(self.starts, [lo, hi - 1], side="right") - 1
            pieces = [[None if c is None else c[max(lo - self.starts[b], 0):hi - self.starts[b]]
                       for c in self.parts[b]] for b in range(first, last + 1)]
            if len(pieces) == 1:
                return pieces[0]
            return [None if c[0] is None else np.concatenate(c) for c in zip(*pieces)]
        if len(self.parts) == 1:
            rows = self.order[lo:hi]
            return [None if c is None else c[rows] for c in self.parts[0]]
        block, row = self._block[lo:hi], self._row[lo:hi]
        spans = [np.flatnonzero(block == b) for b in range(len(self.parts))]
        out = []
        for k, first in enumerate(self.parts[0]):
            if first is None:
                out.append(None)
                continue
            column = np.empty((hi - lo, *first.shape[1:]), first.dtype)
            for b, at in enumerate(spans):
                if len(at):
                    column[at] = self.parts[b][k][row[at]]
            out.append(column)
        return out


class StreamSource:
    """Training batches streamed from Dask blocks on the driver, as `training.ArraySource` serves them."""

    def __init__(self, model: Any, data: blocks_mod.Blocks, class_weight: dict | None, options: Streaming) -> None:
        self.model, self.data, self.class_weight, self.window = model, data, class_weight, options.window
        self.n = data.n
        self._start = (model.params.copy(), model.optimizer.get_state())
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="logitnet-prefetch")
        # When every block fits in one window the driver holds the whole data anyway: keep it
        # between epochs rather than compute and check it again.
        self._kept: dict[int, tuple] | None = {} if len(data.rows) <= self.window else None
        self._ahead: tuple | None = None

    def _load(self, ids: np.ndarray) -> list[tuple]:
        if self._kept is not None and all(int(i) in self._kept for i in ids):
            return [self._kept[int(i)] for i in ids]
        parts = self.data.load([int(i) for i in ids])
        loaded = [blocks_mod.prepare_block(self.model, part, int(i), self.data, self.class_weight)
                  for part, i in zip(parts, ids)]
        if self._kept is not None:
            self._kept.update(zip((int(i) for i in ids), loaded))
        return loaded

    def _assemble(self, ids: np.ndarray, perm: np.ndarray | None) -> _Window:
        """A window's loaded blocks and the order of its rows (None: as they are)."""
        return _Window(self._load(ids), perm)

    def _windows(self, shuffle: bool, ahead: bool) -> Iterator[_Window]:
        """Each window's columns and row order; the next window is loaded in a thread while this one
        trains (the random draws stay in the main thread, in the plan's order), and with `ahead` the
        next epoch's first window while the last one trains."""
        rng = self.model.shuffle_rng
        plan = blocks_mod.windows(self.data.rows, rng, shuffle, self.window)
        upcoming = next(plan, None)
        pending = self._early(rng, upcoming)
        if pending is None and upcoming is not None:
            pending = self._pool.submit(self._assemble, *upcoming)
        while upcoming is not None:
            window = pending.result()
            upcoming = next(plan, None)
            pending = None if upcoming is None else self._pool.submit(self._assemble, *upcoming)
            if upcoming is None and ahead:
                self._look_ahead(rng, shuffle)
            yield window

    def _look_ahead(self, rng: np.random.Generator, shuffle: bool) -> None:
        """Start loading the next epoch's first window now, from a copy of the generator, so that it
        loads during validation; the generator itself is not advanced (a checkpoint saves it)."""
        first = next(blocks_mod.windows(self.data.rows, copy.deepcopy(rng), shuffle, self.window), None)
        self._ahead = None if first is None else (first, self._pool.submit(self._assemble, *first))

    def _early(self, rng: np.random.Generator, upcoming: tuple | None) -> Future | None:
        """The look-ahead's window when this epoch's first window is the one it loaded (the plan is
        compared, not the generator's state: the same rows are the same window)."""
        ahead, self._ahead = self._ahead, None
        if ahead is None or upcoming is None:
            return None
        (ids, perm), future = ahead
        if ids.tolist() == upcoming[0].tolist() and (
                (perm is None and upcoming[1] is None)
                or (perm is not None and upcoming[1] is not None and np.array_equal(perm, upcoming[1]))):
            return future
        future.cancel()
        return None

    def batches(self, batch_size: int, shuffle: bool, ahead: bool = False) -> Iterator[tuple]:
        """(x, targets, weights) batches in the plan's order (blocks.windows)."""
        carry: list | None = None  # the rows of a batch that straddles two windows
        for window in self._windows(shuffle, ahead):
            n, start = window.n, 0
            if carry is not None:
                start = min(batch_size - len(carry[0]), n)
                head = window.take(0, start)
                carry = [None if p is None else np.concatenate([p, h]) for p, h in zip(carry, head)]
                if len(carry[0]) < batch_size:
                    continue
                yield tuple(carry)
                carry = None
            full = start + (n - start) // batch_size * batch_size
            for lo in range(start, full, batch_size):
                yield tuple(window.take(lo, lo + batch_size))
            if full < n:
                carry = window.take(full, n)
        if carry is not None:
            yield tuple(carry)

    def train_steps(self, model: Any, batch_size: int, shuffle: bool, last: bool = True) -> Iterator[tuple]:
        try:
            for xb, tb, wb in self.batches(batch_size, shuffle, ahead=not last):
                loss, z = model._train_step(xb, tb, wb)
                yield loss, z, tb, wb
        except ValueError:
            self.restore()
            raise

    def restore(self) -> None:
        """Weights and optimizer state as when fit began."""
        np.copyto(self.model.params, self._start[0])
        self.model.optimizer.set_state(self._start[1])

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def training_sources(model: Any, x: object, y: object, sample_weight: object, class_weight: dict | None,
                     validation_split: float, validation_data: tuple | None, batch_size: int,
                     distribution: Any) -> tuple[Any, Callable[[], dict] | None]:
    """fit's training source and validation for Dask data (or any data under a distribution)."""
    if not blocks_mod.is_dask(x):
        raise TypeError(f"a distribution trains on Dask collections (dask.array, dask.dataframe); x is a "
                        f"{type(x).__name__}: wrap it, e.g. dask.array.from_array(x, chunks=10_000)")
    if y is None:
        raise ValueError("y is missing: fit needs targets (a Dask array or Series like x, or a NumPy array)")
    if validation_split:
        raise ValueError("validation_split is not supported for Dask data (Keras refuses it for datasets "
                         "too); pass validation_data=(x_val, y_val)")
    data = blocks_mod.from_collections(x, y, sample_weight)
    _check_model(model, data)
    evaluate_val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight)")
        evaluate_val = validation(model, validation_data, batch_size)
    options = DEFAULT if distribution is None else distribution
    if isinstance(options, Streaming) and not hasattr(options, "client"):
        return StreamSource(model, data, class_weight, options), evaluate_val
    from . import parallel

    return parallel.DataParallelSource(model, data, class_weight, options), evaluate_val


def validation(model: Any, validation_data: tuple | list, batch_size: int) -> Callable[[], dict]:
    """The evaluation of validation data at each epoch's end: streamed when it is Dask data."""
    if not any(blocks_mod.is_dask(v) for v in validation_data):
        val = model._prepare(*validation_data)
        return lambda: model._evaluate(*val, batch_size)
    return lambda: evaluate(model, *validation_data, batch_size=batch_size)


def evaluate(model: Any, x: object, y: object, sample_weight: object = None, batch_size: int = 32) -> dict:
    """Loss and metrics on Dask (x, y), block by block, as model.evaluate on the same rows."""
    data = blocks_mod.from_collections(x, y, sample_weight)
    _check_model(model, data)
    source = StreamSource(model, data, None, DEFAULT)
    try:
        return model._evaluate(source.batches(batch_size, shuffle=False))
    finally:
        source.close()


def predict(model: Any, x: object, logits: bool = False) -> Any:
    """Outputs (n, units) for Dask x as a Dask array, computed block by block where the blocks are;
    the model enters the graph once."""
    import dask

    xa, _ = blocks_mod._as_array(x, "x", None)
    model._features(np.zeros((1, *xa.shape[1:]), xa.dtype))  # builds and checks the shape first
    units = model.predict_logits(np.zeros((1, *xa.shape[1:]), xa.dtype)).shape[1]
    shared = dask.delayed(model, pure=True, traverse=False)
    return xa.map_blocks(_predict_block, shared, logits, dtype=model.dtype,
                         chunks=(xa.chunks[0], (units,)), drop_axis=list(range(2, xa.ndim)) or None,
                         meta=np.empty((0, units), model.dtype))


def _predict_block(block: np.ndarray, model: Any, logits: bool) -> np.ndarray:
    if len(block) == 0:
        return np.empty((0, model.predict_logits(np.zeros((1, *block.shape[1:]))).shape[1]), model.dtype)
    z = model.predict_logits(block, batch_size=max(len(block), 1))
    return z if logits else model.outputs_from_logits(z)
