"""Keras' `models` namespace: `Sequential`, `load_model` and `save_model`."""

from __future__ import annotations

import os

from . import saving
from .model import Sequential
from .saving import save_model


def _build(saved: saving.SavedModel, compile: bool) -> Sequential:
    """The model a checked file describes (the file was checked whole: this fails only through a bug)."""
    plan, spec = saved.plan, saved.plan.model
    model = Sequential(saved.layers(), name=spec["name"], seed=spec["seed"], dtype=spec["dtype"])
    model.build((None, *spec["input_shape"]))
    model.set_weights(saved.weights)
    model.metadata = plan.metadata
    if compile and plan.loss is not None:
        model.compile(optimizer=plan.optimizer, loss=plan.loss, metrics=plan.metrics)
        if saved.state:
            model.optimizer.set_state(saved.state)
    return model


def load_model(filepath: str | os.PathLike, compile: bool = True) -> Sequential:
    """Read a model written by `save` / `save_model`: same architecture, weights and settings.

    Raises FileNotFoundError for a missing file (and the system's OSError for one it cannot open),
    and `saving.ModelFileError` for anything that is not a complete, valid logitnet model file;
    the whole file is checked before the model is built. Files of every earlier format version load.
    """
    return saving.load(filepath, lambda saved: _build(saved, compile))


__all__ = ["Sequential", "load_model", "save_model"]
