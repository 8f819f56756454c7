"""Training, evaluating and predicting on Dask collections, one block at a time.

The driver holds a window of blocks (and the next window, loading in a thread meanwhile), never the
whole data: peak memory is a few blocks plus the model. Each block is checked as it arrives, with
the same checks and messages as in-memory data, prefixed by the block it came from; a bad block
puts the weights and optimizer state back as they were when fit began.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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


class StreamSource:
    """Training batches streamed from Dask blocks on the driver, as `training.ArraySource` serves them."""

    def __init__(self, model: Any, data: blocks_mod.Blocks, class_weight: dict | None, options: Streaming) -> None:
        self.model, self.data, self.class_weight, self.window = model, data, class_weight, options.window
        self.n = data.n
        self._start = (model.params.copy(), model.optimizer.get_state())
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="logitnet-prefetch")

    def _load(self, ids: np.ndarray) -> list[tuple]:
        parts = self.data.load([int(i) for i in ids])
        return [blocks_mod.prepare_block(self.model, part, int(i), self.data, self.class_weight) for part, i in zip(parts, ids)]

    def _windows(self, shuffle: bool) -> Iterator[tuple[np.ndarray, np.ndarray | None, list]]:
        """Each window's rows, loaded; the next window loads while this one trains."""
        plan = blocks_mod.windows(self.data.rows, self.model.shuffle_rng, shuffle, self.window)
        upcoming = next(plan, None)
        pending = None if upcoming is None else self._pool.submit(self._load, upcoming[0])
        while upcoming is not None:
            ids, perm = upcoming
            loaded = pending.result()
            upcoming = next(plan, None)
            pending = None if upcoming is None else self._pool.submit(self._load, upcoming[0])
            yield ids, perm, loaded

    def batches(self, batch_size: int, shuffle: bool) -> Iterator[tuple]:
        """(x, targets, weights) batches in the plan's order (blocks.windows)."""
        carry: list | None = None
        for _, perm, loaded in self._windows(shuffle):
            columns = [_concat([part[k] for part in loaded]) for k in range(3)]
            if perm is not None:
                columns = [None if c is None else c[perm] for c in columns]
            if carry is not None:
                columns = [None if c is None else np.concatenate([p, c]) for p, c in zip(carry, columns)]
            n = 0 if columns[0] is None else len(columns[0])
            full = n - n % batch_size
            for start in range(0, full, batch_size):
                yield tuple(None if c is None else c[start:start + batch_size] for c in columns)
            carry = [None if c is None else c[full:] for c in columns]
        if carry is not None and len(carry[0]):
            yield tuple(carry)

    def train_steps(self, model: Any, batch_size: int, shuffle: bool) -> Iterator[tuple]:
        try:
            for xb, tb, wb in self.batches(batch_size, shuffle):
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


def _concat(arrays: list) -> np.ndarray | None:
    if arrays[0] is None:
        return None
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


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
