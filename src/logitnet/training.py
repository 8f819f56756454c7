"""fit's training loop: validation data, callbacks, epochs and batches, divergence, resuming.

`Sequential.fit` checks its arguments and holds the model's training lock, then calls `fit` here;
the loop uses the model's own steps (`_prepare`, `_train_step`, `_evaluate`).
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import numpy as np

from . import callbacks as callbacks_mod
from .ops._core import blas_threads_at_most

# Training steps below this many FLOPs (6 x parameters x batch) run their GEMMs on one BLAS thread:
# measured on 2 cores, W2a (784-128-64-10, batch 32: 2e7) gained 11%, W2b (batch 256: 1.7e8) lost.
_SMALL_STEP_FLOPS = 5e7


class DivergenceWarning(RuntimeWarning):
    """Training stopped because a loss or an update was not finite; the weights were kept finite."""


def fit(model: Any, x: object, y: object, batch_size: int, epochs: int, verbose: str | int,
        callbacks: list | None, validation_split: float, validation_data: tuple | None, shuffle: bool,
        class_weight: dict | None, sample_weight: object, initial_epoch: int) -> callbacks_mod.History:
    """Train `model` as Keras' fit does (arguments already checked); returns its History."""
    x_all, y_all, w_all = model._prepare(x, y, sample_weight, class_weight)
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be (x_val, y_val) or (x_val, y_val, sample_weight)")
        val = model._prepare(*validation_data)
    elif validation_split:
        split = int(len(x_all) * (1 - validation_split))  # Keras keeps the last part, unshuffled
        if split == 0 or split == len(x_all):
            raise ValueError(f"validation_split={validation_split} leaves no training or no "
                             f"validation samples out of {len(x_all)}")
        val = (x_all[split:], y_all[split:], None if w_all is None else w_all[split:])
        x_all, y_all, w_all = x_all[:split], y_all[:split], None if w_all is None else w_all[:split]
    n = len(x_all)
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
    # Small GEMMs: one BLAS thread (a second spins between calls and slows the rest of the step).
    small = 6 * model.params.size * min(batch_size, n) < _SMALL_STEP_FLOPS
    with blas_threads_at_most(1) if small else contextlib.nullcontext():
        _train_epochs(model, x_all, y_all, w_all, val, cb, range(initial_epoch, epochs), batch_size, shuffle)
    cb.on_train_end()
    return model.history


def _train_epochs(model: Any, x_all: np.ndarray, y_all: np.ndarray, w_all: np.ndarray | None, val: tuple | None,
                  cb: callbacks_mod.CallbackList, epochs: range, batch_size: int, shuffle: bool) -> None:
    """fit()'s loop over epochs and batches, with the callbacks' hooks and the epoch logs."""
    n = len(x_all)
    steps = -(-n // batch_size)
    train_metrics = model._make_metrics()
    batch_begin, batch_end = cb.on_train_batch_begin, cb.on_train_batch_end
    for epoch in epochs:
        cb.on_epoch_begin(epoch)
        order = model.shuffle_rng.permutation(n) if shuffle else np.arange(n)
        for m in train_metrics:
            m.reset_state()
        loss_sum = 0.0
        for step in range(steps):
            idx = order[step * batch_size:(step + 1) * batch_size]
            batch_begin(step)
            wb = None if w_all is None else w_all[idx]
            model.diverged = None
            loss, z = model._train_step(x_all[idx], y_all[idx], wb)
            if model.diverged:
                message = (f"training stopped at epoch {epoch + 1}, batch {step + 1}: {model.diverged}; "
                           "the weights are those from before that batch (lower the learning rate, "
                           "or check the data's scale)")
                warnings.warn(message, DivergenceWarning, stacklevel=4)  # at the caller of model.fit()
                model.stop_training = True
                break
            loss_sum += loss * len(idx)
            for m in train_metrics:
                m.update_state(y_all[idx], model.head.metric_values(z), wb)
            batch_end(step, {"loss": loss})
            if model.stop_training:
                break
        if model.diverged:
            break  # the epoch is incomplete: no epoch-end logs, callbacks or checkpoints
        logs = {"loss": loss_sum / n, **{m.name: m.result() for m in train_metrics}}
        if val is not None:
            logs.update({f"val_{k}": v for k, v in model._evaluate(*val, batch_size).items()})
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
