"""Keras-style callbacks: History, EarlyStopping, ModelCheckpoint, TerminateOnNaN, ProgbarLogger."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np

from . import metrics


class Callback:
    """Hooks called by `fit`; `self.model` is the model being trained."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None: ...


class History(Callback):
    """Records every epoch's logs: `history` maps 'loss', 'val_loss' and metric names to lists."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def _monitor_mode(monitor: str, mode: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    return "max" if metrics.higher_is_better(monitor) else "min"


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs."""

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__()
        if patience < 0 or start_from_epoch < 0:
            raise ValueError("patience and start_from_epoch must be >= 0")
        self.monitor, self.patience, self.verbose = monitor, int(patience), verbose
        self.min_delta = abs(float(min_delta))
        self.mode = _monitor_mode(monitor, mode)
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.stopped_epoch = 0

    def _improved(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.wait, self.stopped_epoch, self.best_epoch = 0, 0, 0
        self.best: float | None = None
        self.best_weights: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which is not among the logged "
                             f"values {sorted(logs)}")
        if epoch < self.start_from_epoch:
            return
        value = float(logs[self.monitor])
        self.wait += 1
        if self._improved(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)  # as Keras: only when it stops training

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.stopped_epoch and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping (best {self.monitor} "
                  f"{self.best:.6g} at epoch {self.best_epoch + 1})")


class ModelCheckpoint(Callback):
    """Save the model (or its weights) after each epoch, or only when `monitor` improves.

    `filepath` may hold format fields such as '{epoch:02d}' or '{val_loss:.3f}'. A full checkpoint
    also records the epoch and the shuffling generator's state: `load_model(path)` then
    `fit(..., initial_epoch=epoch)` continues exactly as the uninterrupted run would have.
    """

    def __init__(self, filepath: str, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False, mode: str = "auto") -> None:
        super().__init__()
        self.filepath, self.monitor, self.verbose = str(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.mode = _monitor_mode(monitor, mode)
        self.best: float | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            if self.monitor not in logs:
                raise ValueError(f"ModelCheckpoint monitors {self.monitor!r}, which is not among the "
                                 f"logged values {sorted(logs)}")
            value = float(logs[self.monitor])
            better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
            if not better or math.isnan(value):
                return
            self.best = value
        if not self.save_weights_only:  # all that resuming at the next epoch needs, bit for bit
            self.model.metadata["training_state"] = {
                "epoch": epoch + 1, "shuffle_rng": self.model.shuffle_rng.bit_generator.state,
                "layer_rngs": {layer.name: layer._rng.bit_generator.state
                               for layer in self.model.layers if hasattr(layer, "_rng")}}
        self.model.save(path, include_optimizer=not self.save_weights_only)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved model to {path}")


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss is NaN or infinite."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True


def format_value(value: Any) -> str:
    """A logged number as Keras' progress bar writes it: '0.1234' when |v| > 1e-3, else '3.1416e-06'
    (so a tiny loss never shows as 0.0000); NaN and inf as 'nan', 'inf'; a non-number as str(v)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.4f}" if abs(number) > 1e-3 else f"{number:.4e}"


class ProgbarLogger(Callback):
    """Keras-like progress: a bar per epoch (verbose=1, redrawn in place) or one line (verbose=2).
    Values are written by `format_value`."""

    def __init__(self, verbose: int = 1, stream: Any = None) -> None:
        super().__init__()
        self.verbose = verbose
        self.stream = stream or sys.stdout

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()
        self._epoch = epoch
        if self.verbose == 1:
            self.stream.write(f"Epoch {epoch + 1}/{self.params.get('epochs', '?')}\n")

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.verbose != 1 or not getattr(self.stream, "isatty", lambda: False)():
            return
        steps = self.params.get("steps") or 1
        done = int(30 * (batch + 1) / steps)
        bar = "=" * done + ("" if done >= 30 else ">") + "." * max(0, 29 - done)
        loss = (logs or {}).get("loss", float("nan"))
        self.stream.write(f"\r{batch + 1}/{steps} [{bar}] - loss: {format_value(loss)}")
        self.stream.flush()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - self._start
        values = " - ".join(f"{k}: {format_value(v)}" for k, v in (logs or {}).items())
        steps = self.params.get("steps", "?")
        if self.verbose == 1:
            self.stream.write(f"\r{steps}/{steps} - {seconds:.2f}s - {values}\n")
        else:
            self.stream.write(f"Epoch {epoch + 1}/{self.params.get('epochs', '?')} - "
                              f"{seconds:.2f}s - {values}\n")
        self.stream.flush()


class CallbackList:
    """Calls each hook on every callback, in order."""

    def __init__(self, callbacks: list[Callback], model: Any, params: dict[str, Any]) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be logitnet.callbacks.Callback instances, got {cb!r}")
            cb.set_model(model)
            cb.set_params(params)

    def __getattr__(self, hook: str):
        if not hook.startswith("on_"):
            raise AttributeError(hook)
        # Only the callbacks that override this hook: the per-batch hooks run at every step.
        methods = [getattr(cb, hook) for cb in self.callbacks
                   if getattr(type(cb), hook) is not getattr(Callback, hook)]

        def call(*args: Any) -> None:
            for method in methods:
                method(*args)

        setattr(self, hook, call)  # found once; later lookups skip __getattr__
        return call
