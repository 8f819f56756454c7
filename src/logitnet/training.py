"""fit's training loop: validation data, callbacks, epochs and batches, divergence, resuming.

`Sequential.fit` checks its arguments and holds the model's training lock, then calls `fit` here;
the loop uses the model's own steps (`_prepare`, `_train_step`, `_evaluate`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import callbacks as callbacks_mod
from .ops._core import blas_threads_at_most, free_cores, threads_at_most

# Training steps below this many FLOPs (6 x parameters x batch) run their GEMMs on one BLAS thread:
# measured on 2 cores, W2a (784-128-64-10, batch 32: 2e7) gained 11%, W2b (batch 256: 1.7e8) lost.
_SMALL_STEP_FLOPS = 5e7


class DivergenceWarning(RuntimeWarning):
    """Training stopped because a loss or an update was not finite; the weights were kept finite."""


def fit(model: Any, x: object, y: object, batch_size: int, epochs: int, verbose: str | int,
        callbacks: list | None, validation_split: float, validation_data: tuple | None, shuffle: bool,
        class_weight: dict | None, sample_weight: object, initial_epoch: int,
        distribution: object = None) -> callbacks_mod.History:
    """Train `model` as Keras' fit does (arguments already checked); returns its History.

    Dask collections are streamed block by block (`logitnet.distribution`), on a cluster when a
    distribution is set; everything else is trained in memory.
    """
    if distribution is None:
        distribution = current_distribution()
    # NumPy data trains in memory under Streaming; DataParallel needs Dask data (and says so).
    if is_dask(x) or is_dask(y) or hasattr(distribution, "client"):
        from .distribution import stream  # imports Dask: only for Dask data

        train, evaluate_val = stream.training_sources(model, x, y, sample_weight, class_weight, validation_split,
                                                      validation_data, batch_size, distribution)
    else:
        train, evaluate_val = _array_sources(model, x, y, sample_weight, class_weight, validation_split,
                                             validation_data, batch_size)
    n = train.n
    steps = -(-n // batch_size)
    verbose = 1 if verbose == "auto" else int(verbose)
    model.history = callbacks_mod.History()
    cbs = [model.history] + list(callbacks or [])
    if verbose:
        cbs.append(callbacks_mod.ProgbarLogger(verbose))
    cb = callbacks_mod.CallbackList(cbs, model, {"epochs": epochs, "steps": steps, "verbose": verbose})
    model.stop_training = False
    _resume_state(model, initial_epoch)
    cb.on_train_begin()
    threads = _Threads(small=6 * model.params.size * min(batch_size, n) < _SMALL_STEP_FLOPS)
    try:
        _train_epochs(model, train, evaluate_val, cb, range(initial_epoch, epochs), batch_size, shuffle, threads)
    finally:
        threads.close()
        train.close()
    cb.on_train_end()
    return model.history


class _Threads:
    """fit's thread counts, chosen again at each epoch's start so that they never oversubscribe:
    BLAS and the ops use at most the cores that other processes left free in the last epoch (a
    two-thread GEMM with one thread on a busy core waits for it: measured 784-1024-1024-10, 0.44 s
    an epoch against 0.375 on one thread); small steps' GEMMs run on one BLAS thread (a second
    spins between the calls and slows the rest of the step)."""

    def __init__(self, small: bool) -> None:
        self.small, self.limits = small, (None, None)
        self._stack = contextlib.ExitStack()

    def update(self) -> None:
        free = free_cores()
        busy = free is not None and free < (os.cpu_count() or 1)
        limits = (1 if self.small else free if busy else None, free if busy else None)  # (BLAS, ops)
        if limits == self.limits:
            return
        self._stack.close()
        self._stack, self.limits = contextlib.ExitStack(), limits
        if limits[0] is not None:
            self._stack.enter_context(blas_threads_at_most(limits[0]))
        if limits[1] is not None:
            self._stack.enter_context(threads_at_most(limits[1]))

    def close(self) -> None:
        self._stack.close()


_NO_POLICY = contextlib.nullcontext()


def inference_threads(model: Any, rows: int) -> contextlib.AbstractContextManager:
    """Inference on `rows` rows: BLAS and the ops at most the cores that other processes leave
    free, as in fit, when the GEMMs are large enough for BLAS to use several threads."""
    return _NO_POLICY if 2 * model.params.size * rows < _SMALL_STEP_FLOPS else _inference_threads()


@contextlib.contextmanager
def _inference_threads() -> Iterator[None]:
    threads = _Threads(small=False)
    threads.update()
    try:
        yield
    finally:
        threads.close()


def is_dask(value: object) -> bool:
    """Whether `value` is a Dask collection (array, DataFrame, Series), without importing Dask."""
    return hasattr(value, "__dask_graph__") and type(value).__module__.startswith("dask")


def current_distribution() -> object:
    """The distribution set by `logitnet.distribution.set_distribution` (None if that module was
    never imported, hence never set)."""
    module = sys.modules.get("logitnet.distribution")
    return None if module is None else module.distribution()


class ArraySource:
    """Training data held in memory: x (n, ...), targets (n, ...), weights (n,) or None."""

    def __init__(self, x: np.ndarray, targets: np.ndarray, weights: np.ndarray | None) -> None:
        self.x, self.targets, self.weights = x, targets, weights
        self.n = len(x)

    def train_steps(self, model: Any, batch_size: int, shuffle: bool, last: bool = True) -> Iterator[tuple]:
        """Per step, after training on it: (loss, logits, targets, weights) of the batch. `last`
        says whether another epoch follows (a streaming source starts loading it)."""
        order = model.shuffle_rng.permutation(self.n) if shuffle else np.arange(self.n)
        for start in range(0, self.n, batch_size):
            idx = order[start:start + batch_size]
            targets = self.targets[idx]
            wb = None if self.weights is None else self.weights[idx]
            loss, z = model._train_step(self.x[idx], targets, wb)
            yield loss, z, targets, wb

    def close(self) -> None:
        pass


def _array_sources(model: Any, x: object, y: object, sample_weight: object, class_weight: dict | None,
                   validation_split: float, validation_data: tuple | None,
                   batch_size: int) -> tuple[ArraySource, Callable[[], dict] | None]:
    x_all, y_all, w_all = model._prepare(x, y, sample_weight, class_weight)
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight)")
        if any(is_dask(v) for v in validation_data):
            from .distribution import stream

            return ArraySource(x_all, y_all, w_all), stream.validation(model, validation_data, batch_size)
        val = model._prepare(*validation_data)
    elif validation_split:
        split = int(len(x_all) * (1 - validation_split))  # Keras keeps the last part, unshuffled
        if split == 0 or split == len(x_all):
            raise ValueError(f"validation_split={validation_split} leaves no training or no "
                             f"validation samples out of {len(x_all)}")
        val = (x_all[split:], y_all[split:], None if w_all is None else w_all[split:])
        x_all, y_all, w_all = x_all[:split], y_all[:split], None if w_all is None else w_all[:split]
    evaluate_val = None if val is None else (lambda: model._evaluate(*val, batch_size))
    return ArraySource(x_all, y_all, w_all), evaluate_val


def _train_epochs(model: Any, train: Any, evaluate_val: Callable[[], dict] | None,
                  cb: callbacks_mod.CallbackList, epochs: range, batch_size: int, shuffle: bool,
                  threads: _Threads) -> None:
    """fit()'s loop over epochs and batches, with the callbacks' hooks and the epoch logs."""
    n = train.n
    steps = -(-n // batch_size)
    train_metrics = model._make_metrics()
    batch_begin, batch_end = cb.on_train_batch_begin, cb.on_train_batch_end
    for epoch in epochs:
        threads.update()
        cb.on_epoch_begin(epoch)
        for m in train_metrics:
            m.reset_state()
        loss_sum = 0.0
        batches = train.train_steps(model, batch_size, shuffle, last=epoch == epochs[-1])
        try:
            for step in range(steps):
                batch_begin(step)
                model.diverged = None
                loss, z, targets, wb = next(batches)
                if model.diverged:
                    message = (f"training stopped at epoch {epoch + 1}, batch {step + 1}: {model.diverged}; "
                               "the weights are those from before that batch (lower the learning rate, "
                               "or check the data's scale)")
                    warnings.warn(message, DivergenceWarning, stacklevel=4)  # at the caller of model.fit()
                    model.stop_training = True
                    break
                loss_sum += loss * len(z)
                for m in train_metrics:
                    m.update_state(targets, model.head.metric_values(z), wb)
                batch_end(step, {"loss": loss})
                if model.stop_training:
                    break
        finally:
            batches.close()
        if model.diverged:
            break  # the epoch is incomplete: no epoch-end logs, callbacks or checkpoints
        logs = {"loss": loss_sum / n, **{m.name: m.result() for m in train_metrics}}
        if evaluate_val is not None:
            logs.update({f"val_{k}": v for k, v in evaluate_val().items()})
        cb.on_epoch_end(epoch, logs)
        if model.stop_training:
            break


def _resume_state(model: Any, initial_epoch: int) -> None:
    """Restore the shuffling (and Dropout) generators saved by ModelCheckpoint when resuming from its epoch."""
    state = model.metadata.pop("training_state", None)
    if initial_epoch and isinstance(state, dict) and state.get("epoch") == initial_epoch:
        try:
            model.shuffle_rng.bit_generator.state = state["shuffle_rng"]
            for name, rng_state in state.get("layer_rngs", {}).items():  # Dropout's masks go on alike
                model.get_layer(name)._rng.bit_generator.state = rng_state
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"the checkpoint's random generator state is unusable ({err})") from None
