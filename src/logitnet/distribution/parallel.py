"""Data-parallel training on a Dask cluster (`DataParallel`).

Blocks are computed on the workers a window at a time (the next window meanwhile) and checked
there; the driver never holds the data. The model is sent once, as a task (so that Dask can make it
again should a worker die); each step sends the weights (n_params,) out and gets gradients back.

sync_every=1: a global batch's rows are grouped by the block they come from; each group's gradient,
scaled by the whole batch's size, is computed where its block lives; the driver sums them in block
order, adds the regularizers' gradients, and takes one optimizer step. The grouping depends on the
data's blocks, not on the workers, so 1, 2 or N workers give the same weights, bit for bit, and
the same as one process up to rounding (the sums run in another order).

sync_every=k: each worker (replica) takes k optimizer steps on its share of k global batches,
then the weights and optimizer state are averaged (local SGD; fewer, larger messages).
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np

from . import blocks as blocks_mod

_REPLICAS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_REPLICAS_LOCK = threading.Lock()


def _replica(shared: Any) -> Any:
    """This worker thread's own copy of the shared model (layers keep work buffers per call)."""
    with _REPLICAS_LOCK:
        copies = _REPLICAS.setdefault(shared, {})
        model = copies.get(threading.get_ident())
        if model is None:
            model = copies[threading.get_ident()] = copy.deepcopy(shared)
            model._make_locks()
        return model


def _same(model: Any) -> Any:
    return model


def _load(shared: Any, part: tuple, block: int, data: blocks_mod.Blocks, class_weight: dict | None) -> tuple:
    return blocks_mod.prepare_block(_replica(shared), part, block, data, class_weight)


def _gradient(shared: Any, params: np.ndarray, groups: list, n_batch: int, seed: list[int]) -> tuple:
    """Loss part, gradient, logits, targets and weights of rows `groups` = [(block data, rows)],
    scaled by the batch's size n_batch. Regularizers are left to the driver."""
    model = _replica(shared)
    np.copyto(model.params, params)
    x = np.concatenate([b[0][rows] for b, rows in groups])
    t = np.concatenate([b[1][rows] for b, rows in groups])
    w = None if groups[0][0][2] is None else np.concatenate([b[2][rows] for b, rows in groups])
    for i, layer in enumerate(model.layers):
        if hasattr(layer, "set_rng") and hasattr(layer, "rate"):  # Dropout: masks seeded per step and part
            layer.set_rng([*seed, i])
    z = model._logits(x)
    loss, grad_z = model.head.batch(z, t, w, need_grad=True, n_batch=n_batch)
    saved = [getattr(layer, "kernel_regularizer", None) for layer in model.layers]
    for layer in model.layers:
        if hasattr(layer, "kernel_regularizer"):
            layer.kernel_regularizer = None
    try:
        model._backward(grad_z)
    finally:
        for layer, reg in zip(model.layers, saved):
            if hasattr(layer, "kernel_regularizer"):
                layer.kernel_regularizer = reg
    return loss, model.grads.copy(), z.copy(), t, w


def _local_steps(shared: Any, params: np.ndarray, state: dict, steps: list) -> tuple:
    """k optimizer steps on this replica's share of k batches, from (params, optimizer state)."""
    model = _replica(shared)
    np.copyto(model.params, params)
    model.optimizer.set_state(state)
    results = []
    for groups in steps:
        x = np.concatenate([b[0][rows] for b, rows in groups])
        t = np.concatenate([b[1][rows] for b, rows in groups])
        w = None if groups[0][0][2] is None else np.concatenate([b[2][rows] for b, rows in groups])
        model.diverged = None
        loss, z = model._train_step(x, t, w)
        results.append((loss, z.copy(), t, w, model.diverged))
        if model.diverged:
            break
    return model.params.copy(), model.optimizer.get_state(), results


class DataParallelSource:
    """fit's training source on a cluster; see the module's docstring."""

    def __init__(self, model: Any, data: blocks_mod.Blocks, class_weight: dict | None, options: Any) -> None:
        self.model, self.data, self.class_weight = model, data, class_weight
        self.client, self.window, self.sync_every = options.client, options.window, options.sync_every
        self.n = data.n
        try:
            workers = self.client.scheduler_info()["workers"]
        except (OSError, RuntimeError, ValueError) as err:  # a closed client or a lost scheduler
            raise RuntimeError(f"the Dask client cannot reach its scheduler ({err})") from None
        if not workers:
            raise RuntimeError("the Dask cluster has no workers")
        self.n_replicas = len(workers)
        self._start = (model.params.copy(), model.optimizer.get_state())
        # A task rather than scattered data: should the worker holding it die, Dask can make it again.
        self._shared = self.client.submit(_same, model, pure=False)
        self._raw: dict[int, Any] = {}

    def close(self) -> None:
        """Let the cluster forget the model copies."""
        self._shared.release()

    def _submit_window(self, ids: np.ndarray) -> dict[int, Any]:
        futures = self.client.compute([self.data.parts[int(i)] for i in ids])
        # The raw blocks' futures are kept too: should a worker die, Dask recomputes from them.
        self._raw.update({int(i): f for i, f in zip(ids, futures)})
        return {int(i): self.client.submit(_load, self._shared, f, int(i), self.data, self.class_weight,
                                           pure=False) for i, f in zip(ids, futures)}

    def _batches(self, batch_size: int, shuffle: bool) -> Iterator[list[tuple[Any, np.ndarray]]]:
        """Per global batch, its rows as [(block future, local rows)] in block order."""
        plan = blocks_mod.windows(self.data.rows, self.model.shuffle_rng, shuffle, self.window)
        upcoming = next(plan, None)
        pending = None if upcoming is None else self._submit_window(upcoming[0])
        carry_block = np.empty(0, np.int64)
        carry_row = np.empty(0, np.int64)
        live: dict[int, Any] = {}
        while upcoming is not None:
            ids, perm = upcoming
            live.update(pending)
            upcoming = next(plan, None)
            pending = None if upcoming is None else self._submit_window(upcoming[0])
            block = np.concatenate([np.full(self.data.rows[i], i, np.int64) for i in ids] or [carry_block])
            row = np.concatenate([np.arange(self.data.rows[i]) for i in ids] or [carry_row])
            if perm is not None:
                block, row = block[perm], row[perm]
            block, row = np.concatenate([carry_block, block]), np.concatenate([carry_row, row])
            full = len(block) - len(block) % batch_size
            for start in range(0, full, batch_size):
                yield self._groups(live, block[start:start + batch_size], row[start:start + batch_size])
            carry_block, carry_row = block[full:], row[full:]
            keep = set(carry_block.tolist()) | ({int(i) for i in upcoming[0]} if upcoming is not None else set())
            live = {i: f for i, f in live.items() if i in keep}
            self._raw = {i: f for i, f in self._raw.items() if i in keep}
        if len(carry_block):
            yield self._groups(live, carry_block, carry_row)

    @staticmethod
    def _groups(live: dict[int, Any], block: np.ndarray, row: np.ndarray) -> list[tuple[Any, np.ndarray]]:
        return [(live[int(b)], row[block == b]) for b in np.unique(block)]

    def train_steps(self, model: Any, batch_size: int, shuffle: bool, last: bool = True) -> Iterator[tuple]:
        try:
            if self.sync_every == 1:
                yield from self._synchronous(model, batch_size, shuffle)
            else:
                yield from self._local_sgd(model, batch_size, shuffle)
        except ValueError:
            np.copyto(model.params, self._start[0])
            model.optimizer.set_state(self._start[1])
            raise

    def _synchronous(self, model: Any, batch_size: int, shuffle: bool) -> Iterator[tuple]:
        for groups in self._batches(batch_size, shuffle):
            n_batch = sum(len(rows) for _, rows in groups)
            params = model.params.copy()
            step = model.optimizer.iterations
            # Each block's part runs where the block is (it is the task's one large input).
            tasks = [self.client.submit(_gradient, self._shared, params, [(f, rows)], n_batch,
                                        [step, int(k)], pure=False) for k, (f, rows) in enumerate(groups)]
            parts = self.client.gather(tasks)
            grads = model.grads
            np.copyto(grads, parts[0][1])
            for part in parts[1:]:
                grads += part[1]
            loss = sum(p[0] for p in parts) + model._penalty()
            z, t = np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts])
            w = None if parts[0][4] is None else np.concatenate([p[4] for p in parts])
            if not np.isfinite(loss):
                model.diverged = f"the loss is {loss}"
                yield loss, z, t, w
                return
            for layer in model.layers:
                reg = getattr(layer, "kernel_regularizer", None)
                if reg is not None:
                    reg.add_gradient(layer.kernel, layer.kernel_grad)
            model._apply_gradients()
            yield loss, z, t, w

    def _local_sgd(self, model: Any, batch_size: int, shuffle: bool) -> Iterator[tuple]:
        batches = self._batches(batch_size, shuffle)
        while True:
            round_ = [b for _, b in zip(range(self.sync_every), batches)]
            if not round_:
                return
            shares: list[list] = [[] for _ in range(self.n_replicas)]
            for groups in round_:  # each replica takes a contiguous share of every batch's rows
                rows = [(f, r) for f, rs in groups for r in rs]
                for k, part in enumerate(np.array_split(np.arange(len(rows)), self.n_replicas)):
                    if len(part):
                        shares[k].append(_regroup([rows[i] for i in part]))
            params, state = model.params.copy(), model.optimizer.get_state()
            tasks = [self.client.submit(_local_steps, self._shared, params, state, share, pure=False)
                     for share in shares if share]
            done = self.client.gather(tasks)
            diverged = next((r[4] for _, _, results in done for r in results if r[4]), None)
            per_step = [[results[s] for _, _, results in done if s < len(results)] for s in range(len(round_))]
            if diverged is None:
                np.copyto(model.params, _mean([p for p, _, _ in done]))
                averaged = {key: _mean([s[key] for _, s, _ in done]) for key in state if key != "iterations"}
                model.optimizer.set_state({**averaged, "iterations": done[0][1]["iterations"]})
            for results in per_step:
                if not results:
                    continue
                n = sum(len(r[1]) for r in results)
                loss = sum(r[0] * len(r[1]) for r in results) / n
                z = np.concatenate([r[1] for r in results])
                t = np.concatenate([r[2] for r in results])
                w = None if results[0][3] is None else np.concatenate([r[3] for r in results])
                if diverged is not None:
                    model.diverged = diverged
                    yield loss, z, t, w
                    return
                yield loss, z, t, w


def _mean(arrays: list[np.ndarray]) -> np.ndarray:
    """The replicas' mean, summed in replica order (a fixed order: the same bits every run)."""
    total = arrays[0].copy()
    for a in arrays[1:]:
        total += a
    total /= len(arrays)
    return total


def _regroup(rows: list[tuple[Any, int]]) -> list[tuple[Any, np.ndarray]]:
    """[(block future, row)] -> [(block future, rows)], one group per block, in first-seen order."""
    groups: dict[str, tuple[Any, list[int]]] = {}
    for future, r in rows:
        groups.setdefault(future.key, (future, []))[1].append(r)
    return [(f, np.array(rs, np.int64)) for f, rs in groups.values()]
